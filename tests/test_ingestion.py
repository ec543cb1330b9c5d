"""Every landing-zone rule of contract section 1, each fed its bad case with the exact outcome."""

from __future__ import annotations

import gzip
import json
import shutil
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
from conftest import read_rows, write_csv

from assets import ingestion
from assets.contract import MONEY_MAX, TABLES, is_valid_uscc, uscc_check_char
from assets.ingestion import REASON_MAX, LandingError, cap, ingest_all

E1 = "91330102EFPX14RX7K"  # enterprises of the contract examples
E2 = "913301029TD8R7CKHP"
LOAN_HEADER = list(TABLES["loans"].column_names)


def loan_row(loan_id: str, **overrides: object) -> list[object]:
    base = dict(
        loan_id=loan_id,
        enterprise_id=E1,
        branch_id="B001",
        product="working_capital_loan",
        purpose="working_capital",
        contract_date="2024-01-10",
        disbursement_date="2024-01-15",
        maturity_date="2024-07-15",
        principal="6000",
        annual_rate="0.06",
        repayment_method="equal_installment",
        collateral_type="none",
        collateral_value="",
        guarantee_type="none",
        guarantee_ratio="0",
        officer_id="",
    )
    base.update(overrides)
    return [base[c] for c in LOAN_HEADER]


@pytest.fixture(autouse=True)
def pseudonym_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """Ingestion hashes legal representatives' id numbers: a test key, no key file."""
    monkeypatch.setenv("RISK_PSEUDONYM_KEY", "test-ingestion-key")


def q(wh: Path, sql: str, params: list | None = None) -> list[tuple]:
    with duckdb.connect(str(wh), read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


def rejected(wh: Path, table: str) -> dict[int, str]:
    return dict(
        q(wh, "SELECT row_number, reason FROM raw.rejected_rows WHERE table_name = ?", [table])
    )


# --- the happy path ---------------------------------------------------------------------------


def test_contract_examples_load_without_rejections(landing: Path, warehouse: Path) -> None:
    results = ingest_all(warehouse, landing)
    assert results["loans"].row_count == 6
    assert results["repayment_schedule"].row_count == 60
    assert results["repayments"].row_count == 41
    assert results["registry_events"].row_count == 0  # a missing folder is an empty table
    assert q(warehouse, "SELECT count(*) FROM raw.rejected_rows") == [(0,)]
    assert q(warehouse, "SELECT count(*) FROM raw.rejected_files") == [(0,)]
    # Money is exact DECIMAL, dates are dates.
    principal, disbursed = q(
        warehouse, "SELECT principal, disbursement_date FROM raw.loans WHERE loan_id = 'L4'"
    )[0]
    assert principal == Decimal("5000.00") and str(disbursed) == "2024-06-05"
    types = dict(
        q(
            warehouse,
            """SELECT column_name, data_type FROM information_schema.columns
                                WHERE table_schema = 'raw' AND table_name = 'repayments'""",
        )
    )
    assert types["amount"] == "DECIMAL(18,2)" and types["payment_date"] == "DATE"


def test_second_load_changes_nothing_and_reads_no_file(landing: Path, warehouse: Path) -> None:
    ingest_all(warehouse, landing)
    snapshot = q(warehouse, "SELECT * FROM raw.repayments ORDER BY payment_id")
    second = ingest_all(warehouse, landing)
    assert all(f.status == "unchanged" for r in second.values() for f in r.files)
    assert q(warehouse, "SELECT * FROM raw.repayments ORDER BY payment_id") == snapshot
    # Even a forced re-read of every file leaves every row as it was.
    ingest_all(warehouse, landing, force=True)
    assert q(warehouse, "SELECT * FROM raw.repayments ORDER BY payment_id") == snapshot


def test_only_new_files_are_read_on_a_later_refresh(landing: Path, warehouse: Path) -> None:
    ingest_all(warehouse, landing)
    write_csv(
        landing,
        "repayments",
        "late.csv",
        ["payment_id", "loan_id", "payment_date", "amount"],
        [["P9001", "L1", "2024-06-01", "10.50"]],
    )
    result = ingest_all(warehouse, landing)["repayments"]
    assert [Path(f.source_file).name for f in result.files_loaded] == ["late.csv"]
    assert [Path(f.source_file).name for f in result.files if f.status == "unchanged"] == [
        "data.csv"
    ]
    assert result.row_count == 42


def test_parquet_loads_like_csv(landing: Path, warehouse: Path, tmp_path: Path) -> None:
    csv_path = landing / "repayments" / "data.csv"
    _, rows = read_rows(csv_path)
    expected_total = sum(Decimal(r[3]) for r in rows)
    with duckdb.connect() as con:
        con.execute(f"""COPY (SELECT payment_id, loan_id, payment_date::DATE AS payment_date,
                                    amount::DOUBLE AS amount FROM read_csv('{csv_path}'))
                        TO '{landing / "repayments" / "data.parquet"}' (FORMAT parquet)""")
    csv_path.unlink()
    ingest_all(warehouse, landing)
    assert q(warehouse, "SELECT count(*), sum(amount) FROM raw.repayments") == [
        (len(rows), expected_total)
    ]
    assert q(warehouse, "SELECT count(*) FROM raw.rejected_rows") == [(0,)]


# --- encodings ---------------------------------------------------------------------------------


def test_utf8_bom_and_gb18030_load_and_other_encodings_are_rejected(
    landing: Path, warehouse: Path
) -> None:
    header, rows = read_rows(landing / "enterprises" / "data.csv")
    (landing / "enterprises" / "data.csv").unlink()
    rows[0][1] = "杭州示例制造有限公司"
    write_csv(landing, "enterprises", "bom.csv", header, rows[:1], encoding="utf-8-sig")
    rows[1][1] = "宁波样本贸易有限公司"
    write_csv(landing, "enterprises", "gbk.csv", header, rows[1:2], encoding="gb18030")
    utf16 = write_csv(landing, "enterprises", "utf16.csv", header, rows[2:], encoding="utf-16")
    result = ingest_all(warehouse, landing)["enterprises"]
    names = dict(q(warehouse, "SELECT enterprise_id, name FROM raw.enterprises"))
    assert names == {E1: "杭州示例制造有限公司", E2: "宁波样本贸易有限公司"}
    assert {Path(f.source_file).name: f.encoding for f in result.files_loaded} == {
        "bom.csv": "utf-8",
        "gbk.csv": "gb18030",
    }
    assert q(warehouse, "SELECT source_file, reason FROM raw.rejected_files") == [
        (str(utf16), "encoding is neither UTF-8 nor GB18030/GBK")
    ]


# --- row rules ---------------------------------------------------------------------------------


def test_each_column_rule_quarantines_the_row_with_its_reason(
    landing: Path, warehouse: Path
) -> None:
    bad_check = E1[:17] + ("A" if E1[17] != "A" else "B")
    rows = [
        loan_row("X1", enterprise_id=bad_check),
        loan_row("X2", product="credit_card"),
        loan_row("X3", principal="0"),
        loan_row("X4", annual_rate="0.36"),
        loan_row("X5", contract_date="2024/01/10"),
        loan_row("X6", disbursement_date="2024-01-01"),  # before the contract date
        loan_row("X7", principal="lots"),
        loan_row("X8", branch_id=""),
        loan_row("X9", guarantee_ratio="1.5"),
        loan_row("OK1"),
    ]
    path = write_csv(landing, "loans", "bad.csv", LOAN_HEADER, rows)
    result = ingest_all(warehouse, landing)["loans"]
    reasons = rejected(warehouse, "loans")
    assert reasons == {
        1: f"enterprise_id: '{bad_check}' is not an 18-character USCC with a valid check "
        f"character; enterprise_id: no enterprises row with this enterprise_id",
        2: "product: 'credit_card' is not one of tax_credit_loan/guarantee_fund_loan/"
        "mortgage_loan/working_capital_loan/equipment_loan",
        3: "principal: '0' is not a decimal number > 0",
        4: "annual_rate: '0.36' is not a decimal number > 0 and < 0.36",
        5: "contract_date: '2024/01/10' is not an ISO date YYYY-MM-DD",
        6: "loan_date_order: contract_date <= disbursement_date <= maturity_date",
        7: "principal: 'lots' is not a decimal number > 0",
        8: "branch_id: required value missing",
        9: "guarantee_ratio: '1.5' is not a decimal number >= 0 and <= 1",
    }
    assert q(warehouse, "SELECT DISTINCT source_file FROM raw.rejected_rows") == [(str(path),)]
    bad = next(f for f in result.files if f.source_file == str(path))
    assert (bad.rows_read, bad.rows_loaded, bad.rows_quarantined) == (10, 1, 9)
    assert q(
        warehouse, "SELECT loan_id FROM raw.loans WHERE loan_id LIKE 'X%' OR loan_id = 'OK1'"
    ) == [("OK1",)]
    # The quarantined record keeps what was delivered, for the upstream team to fix.
    record = json.loads(
        q(warehouse, "SELECT record FROM raw.rejected_rows WHERE row_number = 2")[0][0]
    )
    assert record["product"] == "credit_card" and record["loan_id"] == "X2"


def test_orphans_are_quarantined(landing: Path, warehouse: Path) -> None:
    write_csv(
        landing,
        "repayments",
        "orphan.csv",
        ["payment_id", "loan_id", "payment_date", "amount"],
        [["P8001", "NO_SUCH_LOAN", "2024-03-01", "5"], ["P8002", "L1", "2024-03-01", "5"]],
    )
    ingest_all(warehouse, landing)
    assert rejected(warehouse, "repayments") == {1: "loan_id: no loans row with this loan_id"}
    assert q(warehouse, "SELECT count(*) FROM raw.repayments WHERE payment_id LIKE 'P800%'") == [
        (1,)
    ]


def test_enterprise_uscc_check_character_rule() -> None:
    first17 = "91330102EFPX14RX7"
    assert uscc_check_char(first17) == "K"
    assert is_valid_uscc(first17 + "K") and not is_valid_uscc(first17 + "0")
    assert not is_valid_uscc("91330102EFPX14RX7I")  # I is not in the alphabet
    assert not is_valid_uscc(first17)


def test_malformed_csv_line_is_quarantined_and_counts_still_add_up(
    landing: Path, warehouse: Path
) -> None:
    path = landing / "repayments" / "extra.csv"
    path.write_text(
        "payment_id,loan_id,payment_date,amount\n"
        "P7001,L1,2024-03-01,5\nP7002,L1,2024-03-01\nP7003,L1,2024-03-02,6\n"
    )
    result = ingest_all(warehouse, landing)["repayments"]
    reasons = rejected(warehouse, "repayments")
    assert list(reasons) == [2] and reasons[2].startswith("malformed CSV line")
    f = next(f for f in result.files if f.source_file == str(path))
    assert (f.rows_read, f.rows_loaded, f.rows_quarantined) == (3, 2, 1)
    assert q(
        warehouse,
        "SELECT payment_id, _source_row FROM raw.repayments WHERE _source_file = ? ORDER BY 1",
        [str(path)],
    ) == [("P7001", 1), ("P7003", 3)]


def test_duplicate_key_within_a_file_keeps_the_later_row(landing: Path, warehouse: Path) -> None:
    write_csv(
        landing,
        "repayments",
        "dup.csv",
        ["payment_id", "loan_id", "payment_date", "amount"],
        [["P6001", "L1", "2024-03-01", "5"], ["P6001", "L1", "2024-03-01", "7"]],
    )
    ingest_all(warehouse, landing)
    assert q(warehouse, "SELECT amount FROM raw.repayments WHERE payment_id = 'P6001'") == [
        (Decimal("7.00"),)
    ]
    assert list(rejected(warehouse, "repayments")) == [1]


# --- file-level rules ----------------------------------------------------------------------


def test_missing_required_column_rejects_only_that_file(landing: Path, warehouse: Path) -> None:
    bad = write_csv(
        landing,
        "repayments",
        "no_amount.csv",
        ["payment_id", "loan_id", "payment_date"],
        [["P5001", "L1", "2024-03-01"]],
    )
    results = ingest_all(warehouse, landing)
    assert q(warehouse, "SELECT table_name, source_file, reason FROM raw.rejected_files") == [
        ("repayments", str(bad), "missing required column(s): amount")
    ]
    assert results["repayments"].row_count == 41  # data.csv still loaded


def test_extra_columns_are_ignored_and_reported_absent_nullable_is_null(
    landing: Path, warehouse: Path
) -> None:
    path = write_csv(
        landing,
        "fund_flows",
        "flows.csv",
        ["flow_id", "loan_id", "txn_date", "amount", "counterparty_type", "memo"],
        [["F1", "L1", "2024-01-20", "100.10", "supplier", "hello"]],
    )
    result = ingest_all(warehouse, landing)["fund_flows"]
    assert result.files_loaded[0].ignored_columns == ["memo"]
    assert q(
        warehouse,
        "SELECT ignored_columns FROM raw.load_manifest WHERE source_file = ?",
        [str(path)],
    ) == [(["memo"],)]
    assert q(warehouse, "SELECT counterparty_id, amount FROM raw.fund_flows") == [
        (None, Decimal("100.10"))
    ]


def test_empty_and_header_only_files_load_zero_rows(landing: Path, warehouse: Path) -> None:
    (landing / "tax_ratings").mkdir()
    (landing / "tax_ratings" / "empty.csv").write_bytes(b"")
    write_csv(landing, "tax_ratings", "header_only.csv", ["enterprise_id", "year", "rating"], [])
    result = ingest_all(warehouse, landing)["tax_ratings"]
    assert sorted((Path(f.source_file).name, f.status, f.rows_read) for f in result.files) == [
        ("empty.csv", "loaded", 0),
        ("header_only.csv", "loaded", 0),
    ]
    assert q(warehouse, "SELECT count(*) FROM raw.rejected_files") == [(0,)]


# --- re-delivery ---------------------------------------------------------------------------


def test_redelivery_newest_file_wins_by_mtime_then_name(landing: Path, warehouse: Path) -> None:
    header = ["payment_id", "loan_id", "payment_date", "amount"]
    write_csv(
        landing,
        "repayments",
        "b_old.csv",
        header,
        [["P4001", "L1", "2024-03-01", "1"]],
        mtime=1_700_000_000,
    )
    write_csv(
        landing,
        "repayments",
        "a_new.csv",
        header,
        [["P4001", "L1", "2024-03-01", "2"]],
        mtime=1_700_000_100,
    )
    ingest_all(warehouse, landing)
    assert q(warehouse, "SELECT amount FROM raw.repayments WHERE payment_id='P4001'") == [
        (Decimal("2.00"),)
    ]
    # An older file arriving later does not override the newer delivery ...
    write_csv(
        landing,
        "repayments",
        "c_older.csv",
        header,
        [["P4001", "L1", "2024-03-01", "3"]],
        mtime=1_600_000_000,
    )
    ingest_all(warehouse, landing)
    assert q(warehouse, "SELECT amount FROM raw.repayments WHERE payment_id='P4001'") == [
        (Decimal("2.00"),)
    ]
    # ... a newer one does; same mtime: the later file name wins.
    write_csv(
        landing,
        "repayments",
        "z_same.csv",
        header,
        [["P4001", "L1", "2024-03-01", "4"]],
        mtime=1_700_000_100,
    )
    ingest_all(warehouse, landing)
    assert q(warehouse, "SELECT amount FROM raw.repayments WHERE payment_id='P4001'") == [
        (Decimal("4.00"),)
    ]


def test_quarantine_is_kept_until_redelivered(landing: Path, warehouse: Path) -> None:
    header = ["payment_id", "loan_id", "payment_date", "amount"]
    write_csv(
        landing,
        "repayments",
        "x.csv",
        header,
        [["P3001", "L1", "2024-13-01", "5"]],
        mtime=1_700_000_000,
    )
    ingest_all(warehouse, landing)
    ingest_all(warehouse, landing)  # a plain re-run keeps it
    assert list(rejected(warehouse, "repayments")) == [1]
    write_csv(
        landing,
        "repayments",
        "fix.csv",
        header,
        [["P3001", "L1", "2024-12-01", "5"]],
        mtime=1_700_000_500,
    )
    ingest_all(warehouse, landing)
    assert rejected(warehouse, "repayments") == {}
    assert q(
        warehouse, "SELECT payment_date::VARCHAR FROM raw.repayments WHERE payment_id='P3001'"
    ) == [("2024-12-01",)]


def test_loaded_plus_quarantined_equals_rows_read_for_every_file(
    landing: Path, warehouse: Path
) -> None:
    write_csv(
        landing,
        "loans",
        "mixed.csv",
        LOAN_HEADER,
        [loan_row("M1"), loan_row("M2", principal="-1"), loan_row("M3", purpose="fun")],
    )
    ingest_all(warehouse, landing)
    for source_file, read, loaded, quarantined in q(
        warehouse,
        "SELECT source_file, rows_read, rows_loaded, rows_quarantined "
        "FROM raw.load_manifest WHERE status = 'loaded'",
    ):
        _, rows = read_rows(Path(source_file))
        assert read == len(rows) and loaded + quarantined == read
        in_quarantine = q(
            warehouse, "SELECT count(*) FROM raw.rejected_rows WHERE source_file = ?", [source_file]
        )[0][0]
        assert in_quarantine == quarantined


def test_a_failure_while_publishing_loses_nothing(
    landing: Path, warehouse: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ingest_all(warehouse, landing)
    before = q(warehouse, "SELECT * FROM raw.repayments ORDER BY payment_id")
    write_csv(
        landing,
        "repayments",
        "new.csv",
        ["payment_id", "loan_id", "payment_date", "amount"],
        [["P2001", "L1", "2024-03-01", "5"]],
    )

    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(ingestion, "_record_manifest", boom)
    with pytest.raises(RuntimeError):
        ingest_all(warehouse, landing)
    assert q(warehouse, "SELECT * FROM raw.repayments ORDER BY payment_id") == before
    monkeypatch.undo()
    assert ingest_all(warehouse, landing)["repayments"].row_count == 42


def test_batches_commit_one_by_one_and_newest_still_wins(
    landing: Path, warehouse: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With one file per batch, a failure in a later batch keeps the earlier ones loaded."""
    header = ["payment_id", "loan_id", "payment_date", "amount"]
    write_csv(
        landing,
        "repayments",
        "b1.csv",
        header,
        [["P1001", "L1", "2024-03-01", "1"]],
        mtime=1_800_000_000,
    )
    write_csv(
        landing,
        "repayments",
        "b2.csv",
        header,
        [["P1001", "L1", "2024-03-01", "2"]],
        mtime=1_800_000_100,
    )
    real_publish = ingestion._publish

    def fail_on_b2(con, table, staged, rejected, now):
        if any(f.source_file.endswith("b2.csv") for f in staged):
            raise RuntimeError("crash in the last batch")
        return real_publish(con, table, staged, rejected, now)

    monkeypatch.setattr(ingestion, "_publish", fail_on_b2)
    with duckdb.connect(str(warehouse)) as con:
        ingestion.ensure_raw_schema(con)
        ingestion.load_table(con, landing, "enterprises")
        ingestion.load_table(con, landing, "loans")
        with pytest.raises(RuntimeError):
            ingestion.load_table(con, landing, "repayments", batch_bytes=1)
    # data.csv and b1.csv (older batches) are in; b2.csv is not, and is not in the manifest.
    assert q(warehouse, "SELECT amount FROM raw.repayments WHERE payment_id = 'P1001'") == [
        (Decimal("1.00"),)
    ]
    assert q(
        warehouse, "SELECT count(*) FROM raw.load_manifest WHERE source_file LIKE '%b2.csv'"
    ) == [(0,)]
    monkeypatch.undo()
    with duckdb.connect(str(warehouse)) as con:
        result = ingestion.load_table(con, landing, "repayments", batch_bytes=1)
    assert [Path(f.source_file).name for f in result.files_loaded] == ["b2.csv"]
    assert q(warehouse, "SELECT amount FROM raw.repayments WHERE payment_id = 'P1001'") == [
        (Decimal("2.00"),)
    ]


# --- the landing zone itself (safe to run every night) ------------------------------------------

REPAYMENT_HEADER = ["payment_id", "loan_id", "payment_date", "amount"]


def test_missing_or_empty_landing_root_fails_naming_the_path(tmp_path: Path) -> None:
    typo = tmp_path / "landnig"
    with pytest.raises(LandingError, match=f"landing root {typo} does not exist"):
        ingest_all(tmp_path / "w.duckdb", typo)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(LandingError, match=f"landing root {empty} is empty"):
        ingest_all(tmp_path / "w.duckdb", empty)
    assert q(tmp_path / "w.duckdb", "SELECT count(*) FROM raw.load_manifest") == [(0,)]


@pytest.mark.parametrize("how", ["folder removed", "folder emptied"])
def test_folder_that_had_files_and_has_none_today_fails(
    landing: Path, warehouse: Path, how: str
) -> None:
    ingest_all(warehouse, landing)
    before = q(warehouse, "SELECT * FROM raw.repayments ORDER BY payment_id")
    folder = landing / "repayments"
    if how == "folder removed":
        shutil.rmtree(folder)
    else:
        (folder / "data.csv").unlink()
        (folder / "notes.txt").write_text("not a landing file")
    with pytest.raises(LandingError, match=f"{folder} (does not exist|has no landing file)"):
        ingest_all(warehouse, landing)
    assert q(warehouse, "SELECT * FROM raw.repayments ORDER BY payment_id") == before
    # A folder that never had files stays an empty table, load after load.
    assert not (landing / "registry_events").exists()
    assert q(warehouse, "SELECT count(*) FROM raw.registry_events") == [(0,)]


def test_a_file_gone_since_an_earlier_load_is_reported_and_its_rows_stay(
    landing: Path, warehouse: Path
) -> None:
    """Archiving a delivered file is normal, so its rows stay; but the load names it."""
    write_csv(landing, "repayments", "extra.csv", REPAYMENT_HEADER,
              [["P9201", "L1", "2024-03-01", "5"]])
    ingest_all(warehouse, landing)
    before = q(warehouse, "SELECT * FROM raw.repayments ORDER BY payment_id")
    (landing / "repayments" / "extra.csv").unlink()
    with duckdb.connect(str(warehouse)) as con:
        result = ingestion.load_table(con, landing, "repayments")
    gone = [f for f in result.files if f.status == "gone"]
    assert [Path(f.source_file).name for f in gone] == ["extra.csv"]
    assert "no longer in the landing folder: its rows stay loaded" in gone[0].reason
    assert not result.files_loaded
    assert q(warehouse, "SELECT * FROM raw.repayments ORDER BY payment_id") == before
    # Delivered again unchanged: loaded as a new file (it left the manifest's view), nothing
    # gone, and the table holds the same rows.
    write_csv(landing, "repayments", "extra.csv", REPAYMENT_HEADER,
              [["P9201", "L1", "2024-03-01", "5"]])
    with duckdb.connect(str(warehouse)) as con:
        again = ingestion.load_table(con, landing, "repayments")
    assert not [f for f in again.files if f.status == "gone"]
    rows = "SELECT payment_id, loan_id, payment_date, amount FROM raw.repayments ORDER BY 1"
    assert q(warehouse, rows) == [r[:4] for r in before]


def test_file_names_are_read_literally_never_as_glob_patterns(
    tmp_path: Path, warehouse: Path
) -> None:
    from conftest import CONTRACT_EXAMPLES

    landing = tmp_path / "land[1]*"  # even the landing root may look like a pattern
    shutil.copytree(CONTRACT_EXAMPLES / "landing", landing)
    star = write_csv(
        landing, "repayments", "*.csv", REPAYMENT_HEADER, [["P9101", "L1", "2024-03-01", "1"]]
    )
    brackets = write_csv(
        landing, "repayments", "a[1].csv", REPAYMENT_HEADER, [["P9102", "L1", "2024-03-01", "2"]]
    )
    result = ingest_all(warehouse, landing)["repayments"]
    read = {Path(f.source_file).name: f.rows_read for f in result.files_loaded}
    assert read == {"data.csv": 41, "*.csv": 1, "a[1].csv": 1}
    assert result.row_count == 43
    assert q(
        warehouse,
        "SELECT _source_file, payment_id FROM raw.repayments WHERE payment_id LIKE 'P91%' "
        "ORDER BY 2",
    ) == [(str(star), "P9101"), (str(brackets), "P9102")]


def test_entries_that_are_not_landing_files_are_reported_not_read(
    landing: Path, warehouse: Path, tmp_path: Path
) -> None:
    folder = landing / "repayments"
    outside = write_csv(
        tmp_path / "elsewhere",
        "x",
        "secret.csv",
        REPAYMENT_HEADER,
        [["P9201", "L1", "2024-03-01", "1"]],
    )
    (folder / "outside.csv").symlink_to(outside)
    inside = write_csv(
        landing, "spare", "ok.csv", REPAYMENT_HEADER, [["P9202", "L1", "2024-03-01", "2"]]
    )
    (folder / "inside.csv").symlink_to(inside)  # a link within the landing root is read
    (folder / "x.csv").mkdir()
    (folder / "x.csv" / "part.csv").write_text(",".join(REPAYMENT_HEADER) + "\n")
    (folder / "book.xlsx").write_bytes(b"PK\x03\x04")
    (folder / "readme.txt").write_text("hello")
    (folder / "gone.csv").symlink_to(tmp_path / "nowhere.csv")
    (folder / "loop.csv").symlink_to(folder / "loop.csv")
    (folder / ".upload-in-progress.csv").write_text("partial")
    result = ingest_all(warehouse, landing)["repayments"]
    reasons = dict(
        q(
            warehouse,
            "SELECT source_file, reason FROM raw.rejected_files WHERE table_name = 'repayments'",
        )
    )
    by_name = {Path(f): r for f, r in reasons.items()}
    assert set(by_name) == {
        folder / n
        for n in ("outside.csv", "x.csv", "book.xlsx", "readme.txt", "gone.csv", "loop.csv")
    }
    assert by_name[folder / "outside.csv"].startswith("symbolic link leaving the landing root")
    assert by_name[folder / "gone.csv"].startswith("symbolic link leaving the landing root")
    assert by_name[folder / "x.csv"].startswith("a directory, not a file")
    assert by_name[folder / "book.xlsx"].startswith("not a landing file type")
    assert by_name[folder / "readme.txt"].startswith("not a landing file type")
    assert by_name[folder / "loop.csv"].startswith(("symbolic link loop", "broken symbolic"))
    assert len(result.files_rejected) == 6
    assert q(warehouse, "SELECT payment_id FROM raw.repayments WHERE payment_id LIKE 'P92%'") == [
        ("P9202",)
    ]
    # What is no longer there is no longer reported; what still is, still is.
    (folder / "book.xlsx").unlink()
    ingest_all(warehouse, landing)
    assert q(
        warehouse,
        "SELECT count(*) FROM raw.rejected_files WHERE table_name = 'repayments'",
    ) == [(5,)]


def test_gzip_compressed_csv_loads_like_csv(landing: Path, warehouse: Path) -> None:
    plain = landing / "repayments" / "data.csv"
    (landing / "repayments" / "data.csv.gz").write_bytes(gzip.compress(plain.read_bytes()))
    plain.unlink()
    header, rows = read_rows(landing / "loans" / "data.csv")
    gbk = landing / "loans" / "data.csv"
    (landing / "loans" / "data.csv.gz").write_bytes(
        gzip.compress(gbk.read_text().encode("gb18030"))
    )
    gbk.unlink()
    (landing / "repayments" / "broken.csv.gz").write_bytes(b"\x1f\x8b\x08\x00garbage")
    results = ingest_all(warehouse, landing)
    assert results["repayments"].row_count == 41 and results["loans"].row_count == len(rows)
    assert q(warehouse, "SELECT count(*) FROM raw.rejected_rows") == [(0,)]
    ((source_file, reason),) = q(warehouse, "SELECT source_file, reason FROM raw.rejected_files")
    assert source_file.endswith("broken.csv.gz") and reason.startswith("unreadable gzip file")


def test_money_above_the_plausibility_bound_is_quarantined(landing: Path, warehouse: Path) -> None:
    path = write_csv(
        landing,
        "loans",
        "huge.csv",
        LOAN_HEADER,
        [
            loan_row("H1", principal="6000000000000000"),  # 6e15: fits DECIMAL(18,2), alone
            loan_row("H2", principal="6e15"),
            loan_row("H3", principal="1e20", collateral_value="-2000000000000"),
            loan_row("H4", principal=str(MONEY_MAX)),  # the bound itself is allowed
            loan_row("H5", principal="1000000000000.01"),
        ],
    )
    result = ingest_all(warehouse, landing)["loans"]
    bound = f"is beyond the plausibility bound of {MONEY_MAX} CNY"
    assert rejected(warehouse, "loans") == {
        1: f"principal: '6000000000000000' {bound}",
        2: f"principal: '6e15' {bound}",
        3: f"principal: '1e20' {bound}; collateral_value: '-2000000000000' {bound}; "
        "collateral_value: '-2000000000000' is not a decimal number >= 0",
        5: f"principal: '1000000000000.01' {bound}",
    }
    f = next(f for f in result.files if f.source_file == str(path))
    assert (f.rows_read, f.rows_loaded, f.rows_quarantined) == (5, 1, 4)
    # Sums in raw are DECIMAL(38,2): no delivery the bound allows can overflow them.
    _, examples = read_rows(landing / "loans" / "data.csv")
    expected = MONEY_MAX + sum(Decimal(r[LOAN_HEADER.index("principal")]) for r in examples)
    assert q(warehouse, "SELECT typeof(sum(principal)), sum(principal) FROM raw.loans") == [
        ("DECIMAL(38,2)", expected)
    ]


def test_implausible_dates_are_quarantined(landing: Path, warehouse: Path) -> None:
    write_csv(
        landing,
        "loans",
        "dates.csv",
        LOAN_HEADER,
        [
            loan_row("D1", contract_date="1949-09-30"),
            loan_row("D2", maturity_date="2101-01-01"),
            loan_row("D3", contract_date="0001-01-01", disbursement_date="9999-12-31"),
            loan_row("D4", contract_date="1949-10-01", maturity_date="2100-12-31"),
        ],
    )
    ingest_all(warehouse, landing)
    rng = "is outside the plausible dates 1949-10-01 to 2100-12-31"
    reasons = rejected(warehouse, "loans")
    assert reasons[1] == f"contract_date: '1949-09-30' {rng}"
    assert reasons[2] == f"maturity_date: '2101-01-01' {rng}"
    assert reasons[3].startswith(
        f"contract_date: '0001-01-01' {rng}; disbursement_date: '9999-12-31' {rng}"
    )
    assert 4 not in reasons
    assert q(warehouse, "SELECT count(*) FROM raw.loans WHERE loan_id = 'D4'") == [(1,)]


def test_reasons_and_records_are_capped(landing: Path, warehouse: Path) -> None:
    folder = landing / "repayments"
    # A file that is one 10 MB line: a header of 5 million columns, every one repeated.
    (folder / "one_line.csv").write_text("a," * 5_000_000)
    # A value of 1.5 MB (under DuckDB's line limit) and a 10 MB line (over it).
    write_csv(
        landing,
        "repayments",
        "long_value.csv",
        REPAYMENT_HEADER,
        [["P9301", "L1", "x" * 1_500_000, "1"], ["P9302", "L1", "2024-03-01", "2"]],
    )
    (folder / "long_line.csv").write_text(
        ",".join(REPAYMENT_HEADER) + "\nP9303,L1,2024-03-01," + "9" * 10_000_000 + "\n"
    )
    result = ingest_all(warehouse, landing)["repayments"]
    files = dict(q(warehouse, "SELECT source_file, reason FROM raw.rejected_files"))
    assert len(files[str(folder / "one_line.csv")]) < 600
    rows = q(
        warehouse,
        "SELECT source_file, row_number, reason, CAST(record AS VARCHAR) "
        "FROM raw.rejected_rows ORDER BY 1, 2",
    )
    assert {(Path(f).name, n) for f, n, _, _ in rows} == {
        ("long_value.csv", 1),
        ("long_line.csv", 1),
    }
    for _, _, reason, record in rows:
        assert len(reason) <= REASON_MAX + 40 and len(record) <= REASON_MAX + 80
        json.loads(record)  # still JSON
    long_value = next(r for r in rows if r[0].endswith("long_value.csv"))
    assert "characters cut" in long_value[2] and "characters cut" in long_value[3]
    counts = {Path(f.source_file).name: f for f in result.files_loaded}
    assert (counts["long_value.csv"].rows_loaded, counts["long_value.csv"].rows_quarantined) == (
        1,
        1,
    )
    assert cap("x" * 2500) == "x" * REASON_MAX + "... (500 characters cut)"


def test_the_asset_fails_on_a_wrong_landing_root_and_shows_no_personal_data(
    landing: Path, warehouse: Path, tmp_path: Path
) -> None:
    from dagster import materialize

    from assets.core.resources import RiskWarehouse
    from assets.ingestion_assets import ingestion_assets

    enterprises = next(a for a in ingestion_assets if a.key.path == ["raw", "enterprises"])
    typo = tmp_path / "landnig"
    wrong = materialize(
        [enterprises],
        resources={"warehouse": RiskWarehouse(warehouse=str(warehouse), landing_dir=str(typo))},
        raise_on_error=False,
    )
    assert not wrong.success
    failure = next(e for e in wrong.all_events if e.is_step_failure)
    assert f"landing root {typo} does not exist" in str(failure.step_failure_data.error)

    right = materialize(
        [enterprises],
        resources={"warehouse": RiskWarehouse(warehouse=str(warehouse), landing_dir=str(landing))},
    )
    materialized = right.asset_materializations_for_node(enterprises.op.name)[0]
    preview = materialized.metadata["preview"].value
    assert "enterprise_id" in preview and E1 in preview
    assert "legal_rep" not in preview and "330102198001010000" not in preview
