"""Parquet deliveries through the fast paths of the ingestion: read in place (not copied),
typed values checked without turning every value into text, in-file duplicate keys found
through key hashes, the trim that skips values with printable ends."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from assets import ingestion
from assets.contract import MONEY_MAX
from assets.ingestion import ingest_all

REPAYMENT_SCHEMA = pa.schema([
    ("payment_id", pa.string()), ("loan_id", pa.string()), ("payment_date", pa.date32()),
    ("amount", pa.float64()),
])


@pytest.fixture(autouse=True)
def pseudonym_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RISK_PSEUDONYM_KEY", "test-ingestion-key")


def _write_parquet(landing: Path, table: str, name: str, rows: list[tuple],
                   schema: pa.Schema = REPAYMENT_SCHEMA) -> Path:
    path = landing / table / name
    records = [dict(zip(schema.names, r, strict=True)) for r in rows]
    pq.write_table(pa.Table.from_pylist(records, schema), path)
    return path


def _q(wh: Path, sql: str, params: list | None = None) -> list[tuple]:
    with duckdb.connect(str(wh), read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


def test_typed_parquet_values_break_each_rule_with_file_row_and_reason(
    landing: Path, warehouse: Path
) -> None:
    d = date(2024, 3, 1)
    path = _write_parquet(landing, "repayments", "typed.parquet", [
        ("\u3000Q1\u00a0", " L1 ", d, 5.0),  # Unicode and ASCII spaces trimmed
        ("Q2", "L1", None, 5.0),
        ("Q3", "L1", d, -1.5),
        ("Q4", "L1", d, float(MONEY_MAX) * 10),
        ("Q5", "NO_SUCH_LOAN", d, 5.0),
        ("Q6", "L1", d, 1.0),
        ("Q6", "L1", d, 2.0),
        ("Q8", "L1", date(1800, 1, 1), 3.0),
        (None, "L1", d, 3.0),
    ])
    result = ingest_all(warehouse, landing)["repayments"]
    reasons = dict(_q(warehouse, "SELECT row_number, reason FROM raw.rejected_rows "
                                 "WHERE source_file = ?", [str(path)]))
    assert reasons == {
        2: "payment_date: required value missing",
        3: "amount: '-1.5' is not a decimal number > 0",
        4: f"amount: '{float(MONEY_MAX) * 10}' is beyond the plausibility bound of "
           f"{MONEY_MAX} CNY",
        5: "loan_id: no loans row with this loan_id",
        6: "duplicate primary key in this file: a later row with the same key is kept",
        8: "payment_date: '1800-01-01' is outside the plausible dates 1949-10-01 to 2100-12-31",
        9: "payment_id: required value missing",
    }
    assert _q(warehouse, "SELECT payment_id, loan_id, amount::VARCHAR, _source_row "
                         "FROM raw.repayments WHERE _source_file = ? ORDER BY 4",
              [str(path)]) == [("Q1", "L1", "5.00", 1), ("Q6", "L1", "2.00", 7)]
    record = json.loads(_q(warehouse, "SELECT record FROM raw.rejected_rows "
                                      "WHERE row_number = 3")[0][0])
    assert record == {"payment_id": "Q3", "loan_id": "L1", "payment_date": "2024-03-01",
                      "amount": "-1.5"}
    loaded = next(f for f in result.files if f.source_file == str(path))
    assert (loaded.rows_read, loaded.rows_loaded, loaded.rows_quarantined) == (9, 2, 7)


def test_a_damaged_parquet_file_is_rejected_and_the_others_load(
    landing: Path, warehouse: Path
) -> None:
    good = _write_parquet(landing, "repayments", "good.parquet",
                          [("Q1", "L1", date(2024, 3, 1), 5.0)])
    damaged = landing / "repayments" / "damaged.parquet"
    damaged.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    result = ingest_all(warehouse, landing)["repayments"]
    [rejected] = result.files_rejected
    assert rejected.source_file == str(damaged)
    assert rejected.reason.startswith("unreadable Parquet file")
    assert _q(warehouse, "SELECT payment_id FROM raw.repayments WHERE _source_file = ?",
              [str(good)]) == [("Q1",)]
    assert _q(warehouse, "SELECT count(*) FROM raw.rejected_files WHERE source_file = ?",
              [str(damaged)]) == [(1,)]


def test_a_parquet_column_named_like_the_readers_row_number_is_an_ignored_column(
    landing: Path, warehouse: Path
) -> None:
    schema = REPAYMENT_SCHEMA.append(pa.field("file_row_number", pa.int64()))
    path = _write_parquet(landing, "repayments", "odd.parquet", [
        ("Q1", "L1", date(2024, 3, 1), 5.0, 99), ("Q2", "L1", date(2024, 3, 1), -5.0, 98),
    ], schema)
    result = ingest_all(warehouse, landing)["repayments"]
    loaded = next(f for f in result.files if f.source_file == str(path))
    assert loaded.ignored_columns == ["file_row_number"]
    assert _q(warehouse, "SELECT payment_id, _source_row FROM raw.repayments "
                         "WHERE _source_file = ?", [str(path)]) == [("Q1", 1)]
    assert _q(warehouse, "SELECT row_number FROM raw.rejected_rows") == [(2,)]


def test_fast_trim_is_trim() -> None:
    values = [" a", "a ", "\u3000a\u00a0", "\ta\n", "", " ", "abc", "!x~", "é", "é ",
              "\u2003x", "x\u202f", "a b", "~", "\x7f", None]
    with duckdb.connect() as con:
        got = con.execute(
            f"SELECT {ingestion._trim_sql('v')} IS NOT DISTINCT FROM trim(v) "
            "FROM unnest(?) t(v)", [values]
        ).fetchall()
    assert got == [(True,)] * len(values)


def test_in_file_duplicates_are_found_when_key_hashes_collide(
    landing: Path, warehouse: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Hash collisions (forced: every key hashes alike) only cost the exact check."""
    real = ingestion._file_has_repeated_keys
    calls: list[bool] = []

    def colliding(con, table, cols, types):
        calls.append(real(con, table, cols, types))
        return True

    monkeypatch.setattr(ingestion, "_file_has_repeated_keys", colliding)
    path = _write_parquet(landing, "repayments", "keys.parquet", [
        ("Q1", "L1", date(2024, 3, 1), 5.0), ("Q2", "L1", date(2024, 3, 1), 6.0),
    ])
    ingest_all(warehouse, landing)
    assert False in calls  # no repeated key in the files, but checked exactly anyway
    assert _q(warehouse, "SELECT payment_id FROM raw.repayments WHERE _source_file = ? "
                         "ORDER BY 1", [str(path)]) == [("Q1",), ("Q2",)]
    assert _q(warehouse, "SELECT count(*) FROM raw.rejected_rows") == [(0,)]
