"""The `risk` command end to end: what the nightly schedule and an operator run headless."""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pytest
from conftest import CONTRACT_EXAMPLES

from assets.ingestion import ingest_all
from orchestration import cli


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    monkeypatch.setenv("RISK_EXPORTS_DIR", str(tmp_path / "exports"))
    return tmp_path


def test_generate_writes_every_table_and_truth_beside(env: Path, capsys) -> None:
    out = env / "landing"
    assert cli.main(["generate", "--enterprises", "60", "--seed", "3", "--out", str(out)]) == 0
    assert {p.name for p in out.iterdir()} >= {
        "enterprises",
        "loans",
        "tax_filings",
        "utility_bills",
        "loan_applications",
    }
    assert (env / "landing_truth" / "enterprises.parquet").exists()
    assert not (out / "landing_truth").exists()  # ground truth is never inside the landing zone


def test_generated_data_loads_clean_and_a_second_load_changes_no_row(env: Path) -> None:
    out = env / "landing"
    cli.main(
        ["generate", "--enterprises", "80", "--seed", "5", "--out", str(out), "--format", "parquet"]
    )
    warehouse = env / "w.duckdb"
    first = ingest_all(warehouse, out)
    assert sum(r.rows_quarantined for r in first.values()) == 0
    with duckdb.connect(str(warehouse), read_only=True) as con:
        before = {t: con.execute(f"SELECT * FROM raw.{t} ORDER BY ALL").fetchall() for t in first}
    ingest_all(warehouse, out, force=True)  # re-read every file, not just the manifest's word
    with duckdb.connect(str(warehouse), read_only=True) as con:
        after = {t: con.execute(f"SELECT * FROM raw.{t} ORDER BY ALL").fetchall() for t in first}
    assert after == before


def test_refresh_builds_every_mart_and_records_the_run(
    env: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    landing = env / "landing"
    shutil.copytree(CONTRACT_EXAMPLES / "landing", landing)
    warehouse = env / "w.duckdb"
    monkeypatch.setenv("RISK_LANDING_DIR", str(landing))
    monkeypatch.setenv("RISK_WAREHOUSE", str(warehouse))
    monkeypatch.setenv("RISK_AS_OF", "2024-12-31")
    assert cli.main(["refresh"]) == 0
    printed = capsys.readouterr().out
    assert "risk refresh succeeded" in printed and str(warehouse) in printed
    with duckdb.connect(str(warehouse), read_only=True) as con:
        marts = {
            r[0]
            for r in con.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'marts'"
            ).fetchall()
        }
        assert marts >= {
            "fct_loan_month_end",
            "enterprise_risk_profile",
            "watchlist",
            "watchlist_history",
            "application_screening",
            "portfolio_monthly",
        }
        built = con.execute(
            "SELECT count(*) FROM marts.fct_loan_month_end WHERE month_end = '2024-12-31'"
        ).fetchone()[0]
    expected = CONTRACT_EXAMPLES / "expected_fct_loan_month_end_as_of_2024-12-31.csv"
    assert built == sum(",2024-12-31," in line for line in expected.read_text().splitlines())
    assert (env / "exports" / "2024-12-31" / "watchlist.csv").exists()
    from dagster import DagsterInstance

    with DagsterInstance.get() as instance:  # recorded where `make ui` looks
        runs = instance.get_runs()
    assert [r.job_name for r in runs] == ["nightly_refresh"]


def test_refresh_exits_non_zero_when_a_step_fails(
    env: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    blocker = env / "not_a_directory"
    blocker.write_text("a file where the warehouse folder should be")
    monkeypatch.setenv("RISK_LANDING_DIR", str(CONTRACT_EXAMPLES / "landing"))
    monkeypatch.setenv("RISK_WAREHOUSE", str(blocker / "w.duckdb"))
    monkeypatch.setenv("RISK_AS_OF", "2024-12-31")
    assert cli.main(["refresh"]) == 1
    assert "risk refresh FAILED" in capsys.readouterr().err
