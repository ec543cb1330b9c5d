"""The first-load path (raw table empty: append each batch, keep the newest row of each key
once at the end) gives exactly what the upsert gives: raw rows, quarantine and manifest."""

from __future__ import annotations

import os
from pathlib import Path

import duckdb
import pytest
from conftest import write_csv

from assets import ingestion
from assets.contract import LOAD_ORDER

HEADER = ["payment_id", "loan_id", "payment_date", "amount"]


@pytest.fixture(autouse=True)
def pseudonym_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RISK_PSEUDONYM_KEY", "test-ingestion-key")


def _deliveries(landing: Path) -> None:
    """Repayments delivered several times: newer files, equal mtimes (name decides), a newer
    quarantined version, a quarantined key later delivered clean, a duplicate in one file."""
    t = 1_800_000_000
    write_csv(landing, "repayments", "r1.csv", HEADER, [
        ["P9001", "L1", "2024-03-01", "1"], ["P9002", "L1", "2024-03-02", "1"],
        ["P9003", "L1", "2024-13-01", "1"], ["P9004", "L1", "2024-03-04", "1"],
    ], mtime=t)
    write_csv(landing, "repayments", "r2.csv", HEADER, [
        ["P9001", "L1", "2024-03-01", "2"], ["P9002", "L1", "2024-03-02", "-5"],
        ["P9005", "L1", "2024-03-05", "2"], ["P9005", "L1", "2024-03-05", "3"],
    ], mtime=t + 100)
    write_csv(landing, "repayments", "r3_a.csv", HEADER, [
        ["P9001", "L1", "2024-03-01", "4"], ["P9003", "L1", "2024-03-03", "4"],
    ], mtime=t + 200)
    write_csv(landing, "repayments", "r3_b.csv", HEADER, [
        ["P9001", "L1", "2024-03-01", "5"], ["P9004", "L1", "2024-03-04", "5"],
    ], mtime=t + 200)
    write_csv(landing, "repayments", "r0_old.csv", HEADER, [
        ["P9004", "L1", "2024-03-04", "0"],
    ], mtime=t - 100)


def _state(warehouse: Path) -> dict[str, list[tuple]]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        out = {t: con.execute(f"SELECT * FROM raw.{t} ORDER BY ALL").fetchall()
               for t in LOAD_ORDER}
        out["rejected_rows"] = con.execute(
            "SELECT * EXCLUDE (rejected_at) FROM raw.rejected_rows ORDER BY ALL").fetchall()
        out["load_manifest"] = con.execute(
            "SELECT * EXCLUDE (loaded_at) FROM raw.load_manifest ORDER BY ALL").fetchall()
    return out


def _load(warehouse: Path, landing: Path, batch_bytes: int = 1) -> None:
    """batch_bytes=1: one file per batch, every batch a transaction of its own."""
    with duckdb.connect(str(warehouse)) as con:
        ingestion.ensure_raw_schema(con)
        for table in LOAD_ORDER:
            ingestion.load_table(con, landing.resolve(), table, batch_bytes=batch_bytes)


def _as_parquet(landing: Path) -> None:
    """Each delivered CSV as a Parquet file of text columns (same name stem and mtime)."""
    with duckdb.connect() as con:
        for path in (landing / "repayments").glob("r*.csv"):
            dest = path.with_suffix(".parquet")
            con.execute(f"COPY (SELECT * FROM read_csv('{path}', all_varchar = true)) "
                        f"TO '{dest}' (FORMAT parquet)")
            stat = path.stat()
            os.utime(dest, ns=(stat.st_atime_ns, stat.st_mtime_ns))
            path.unlink()


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
@pytest.mark.parametrize("batch_bytes", [1, 1 << 30])
def test_first_load_equals_the_upsert(
    landing: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, batch_bytes: int, fmt: str
) -> None:
    _deliveries(landing)
    if fmt == "parquet":
        _as_parquet(landing)
    removed: list[int] = []
    dedup = ingestion._deduplicate
    monkeypatch.setattr(ingestion, "_deduplicate",
                        lambda con, table: removed.append(dedup(con, table)) or removed[-1])
    _load(tmp_path / "first.duckdb", landing, batch_bytes)
    # P9001 clean in 4 files, P9004 in 2 (amount 0 in r0_old is quarantined), P9005 twice in
    # one file (the earlier row quarantined): the 4 older rows of P9001 and P9004 are appended,
    # in one batch or several, then removed once at the end.
    assert sum(removed) == 4
    monkeypatch.setattr(ingestion, "_is_empty", lambda con, name: False)  # always upsert
    _load(tmp_path / "upsert.duckdb", landing, batch_bytes)
    first, upsert = _state(tmp_path / "first.duckdb"), _state(tmp_path / "upsert.duckdb")
    assert first == upsert
    amounts = {r[0]: str(r[3]) for r in first["repayments"] if r[0].startswith("P90")}
    assert amounts == {"P9001": "5.00", "P9002": "1.00", "P9003": "4.00", "P9004": "5.00",
                       "P9005": "3.00"}
    assert {row[4] for row in first["load_manifest"]} == {"loaded"}  # status


def test_a_first_load_stopped_between_batches_is_deduplicated_on_the_next(
    landing: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _deliveries(landing)
    real = ingestion._publish

    def crash_on_r3_b(con, table, staged, rejected, now):
        if any(f.source_file.endswith("r3_b.csv") for f in staged):
            raise RuntimeError("killed during the first load")
        return real(con, table, staged, rejected, now)

    monkeypatch.setattr(ingestion, "_publish", crash_on_r3_b)
    with pytest.raises(RuntimeError):
        _load(tmp_path / "w.duckdb", landing)
    monkeypatch.undo()
    monkeypatch.setenv("RISK_PSEUDONYM_KEY", "test-ingestion-key")
    _load(tmp_path / "w.duckdb", landing)
    _load(tmp_path / "clean.duckdb", landing)
    assert _state(tmp_path / "w.duckdb") == _state(tmp_path / "clean.duckdb")
