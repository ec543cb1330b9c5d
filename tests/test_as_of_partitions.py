"""As-of partitions end to end: a run for a past date writes that date's history rows and
export folder and leaves the current marts as they were; a backfill over a range is one run
that writes every date; runs carry the as-of date."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import duckdb
import pytest
from conftest import CONTRACT_EXAMPLES
from dagster import DagsterInstance, MaterializeResult, RunsFilter, asset, materialize

from assets.core import partitions
from assets.core.resources import RiskWarehouse
from orchestration import cli

LATEST = "2024-12-31"
PAST = "2024-10-31"
RANGE = ("2024-11-28", "2024-11-30")

#: The current marts: what an analyst reads as "now". A past-date run must not move them.
CURRENT = ("signal_hits", "enterprise_risk_profile", "watchlist", "loan_ifrs9_stage",
           "fct_loan_month_end", "fct_enterprise_month_end", "application_screening")
#: Per-date tables keyed by as_of_date.
HISTORY = ("signal_hits_history", "enterprise_risk_profile_history", "watchlist_history",
           "watchlist_refreshes", "loan_ifrs9_stage_history")
#: History tables with one row per firm or loan and date (watchlist_refreshes has one a date).
PER_DATE = tuple(t for t in HISTORY if t != "watchlist_refreshes")


def _tables(path: Path) -> dict[str, list]:
    with duckdb.connect(str(path), read_only=True) as con:
        return {t: con.execute(f"SELECT * FROM marts.{t} ORDER BY ALL").fetchall()
                for t in CURRENT}


def _dates(path: Path, table: str) -> set[str]:
    with duckdb.connect(str(path), read_only=True) as con:
        return {str(r[0]) for r in con.execute(
            f"SELECT DISTINCT as_of_date FROM marts.{table}").fetchall()}


def _rows_of(path: Path, table: str, d: str) -> list:
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(
            f"SELECT * FROM marts.{table} WHERE as_of_date = ? ORDER BY ALL", [d]
        ).fetchall()


@pytest.fixture(scope="module")
def refreshed(tmp_path_factory: pytest.TempPathFactory):
    """A warehouse refreshed as of LATEST by `risk refresh` (the partition of RISK_AS_OF)."""
    env = tmp_path_factory.mktemp("asof")
    mp = pytest.MonkeyPatch()
    mp.setenv("DAGSTER_HOME", str(env / "dagster_home"))
    mp.setenv("RISK_EXPORTS_DIR", str(env / "exports"))
    landing = env / "landing"
    shutil.copytree(CONTRACT_EXAMPLES / "landing", landing)
    mp.setenv("RISK_LANDING_DIR", str(landing))
    mp.setenv("RISK_WAREHOUSE", str(env / "w.duckdb"))
    mp.setenv("RISK_AS_OF", LATEST)
    assert cli.main(["refresh"]) == 0
    yield env, mp
    mp.undo()


def test_refresh_runs_the_partition_of_its_as_of_date(refreshed) -> None:
    env, _ = refreshed
    with DagsterInstance.get() as instance:
        run = instance.get_runs(filters=RunsFilter(job_name="nightly_refresh"))[-1]
    assert run.tags["dagster/partition"] == LATEST
    assert run.tags[partitions.AS_OF_TAG] == LATEST


def test_past_date_run_writes_its_rows_and_leaves_the_current_marts(refreshed, capsys) -> None:
    env, mp = refreshed
    build = env / "w.build.duckdb"
    before, published_before = _tables(build), _tables(env / "w.duckdb")
    latest_history = {t: _rows_of(build, t, LATEST) for t in PER_DATE}
    latest_export = (env / "exports" / LATEST / "watchlist.csv").read_bytes()
    mp.setenv("RISK_AS_OF", PAST)
    capsys.readouterr()
    try:
        assert cli.main(["refresh"]) == 0
    finally:
        mp.setenv("RISK_AS_OF", LATEST)
    printed = capsys.readouterr().out
    assert f"watchlist as of {PAST}:" in printed
    assert f"a past date: the current marts stay as of {LATEST}" in printed
    # The current marts (built and published) are exactly as they were ...
    assert _tables(build) == before
    assert _tables(env / "w.duckdb") == published_before
    # ... the latest date's history rows and files are untouched ...
    assert {t: _rows_of(build, t, LATEST) for t in PER_DATE} == latest_history
    assert (env / "exports" / LATEST / "watchlist.csv").read_bytes() == latest_export
    # ... and the past date has its own rows and export folder, published too.
    for table in HISTORY:
        assert PAST in _dates(env / "w.duckdb", table), table
    assert _rows_of(build, "enterprise_risk_profile_history", PAST)
    assert (env / "exports" / PAST / "watchlist.csv").exists()
    assert (env / "exports" / PAST / "report.html").exists()


def test_backfill_over_a_range_is_one_run_that_writes_every_date(refreshed) -> None:
    """What the UI launches for a single-run backfill: one run tagged with the range."""
    env, _ = refreshed
    from orchestration.definitions import defs

    build = env / "w.build.duckdb"
    before = _tables(build)
    job = defs.resolve_job_def("nightly_refresh")
    with DagsterInstance.get() as instance:
        n_runs = len(instance.get_runs())
        result = job.execute_in_process(
            instance=instance,
            run_config={"resources": {"warehouse": {"config": {
                "warehouse": str(env / "w.duckdb"), "landing_dir": str(env / "landing"),
                "as_of": "", "build_aside": True}}}},
            tags={partitions.RANGE_START_TAG: RANGE[0], partitions.RANGE_END_TAG: RANGE[1]},
        )
        assert result.success
        assert len(instance.get_runs()) == n_runs + 1
        run = instance.get_run_by_id(result.run_id)
    assert run.tags[partitions.AS_OF_TAG] == RANGE[1]
    days = [d.isoformat() for d in partitions.dates_of_run(run.tags)]
    assert days == ["2024-11-28", "2024-11-29", "2024-11-30"]
    for table in HISTORY:
        assert set(days) <= _dates(build, table), table
    for d in days:
        assert (env / "exports" / d / "watchlist.csv").exists()
    assert _tables(build) == before  # all three dates are before LATEST
    # Each date is decided as of itself: the profile of a date reads features up to it.
    for d in days:
        assert {r[1] for r in _rows_of(build, "enterprise_risk_profile_history", d)} == {
            date.fromisoformat(d)
        }


def test_partition_helpers() -> None:
    assert partitions.dates_of_run({"dagster/partition": "2024-01-02"}) == [date(2024, 1, 2)]
    assert partitions.dates_of_run({}) == []
    assert partitions.partition_problem(date(2014, 12, 31)) is not None
    assert partitions.partition_problem(date(2099, 1, 1), today=date(2026, 1, 1)) is not None
    assert partitions.partition_problem(date(2026, 1, 1), today=date(2026, 1, 1)) is None


def test_refresh_refuses_an_as_of_date_with_no_partition(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dh"))
    landing = tmp_path / "landing"
    shutil.copytree(CONTRACT_EXAMPLES / "landing", landing)
    monkeypatch.setenv("RISK_LANDING_DIR", str(landing))
    monkeypatch.setenv("RISK_WAREHOUSE", str(tmp_path / "w.duckdb"))
    monkeypatch.setenv("RISK_AS_OF", "2099-01-01")
    assert cli.main(["refresh"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("risk refresh: RISK_AS_OF='2099-01-01': after today")


def test_current_as_of_date_follows_the_latest_decided_date(tmp_path: Path) -> None:
    """Which date the current marts are built as of, by kind of run (no dbt: a probe asset)."""
    path = tmp_path / "w.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE SCHEMA marts")
        con.execute("CREATE TABLE marts.watchlist_refreshes AS SELECT DATE '2024-12-31' "
                    "AS as_of_date")

    seen = {}

    def probe_body(warehouse: RiskWarehouse) -> MaterializeResult:
        seen.update(current=warehouse.as_of_date.isoformat(),
                    dates=[d.isoformat() for d in warehouse.as_of_dates])
        return MaterializeResult()

    partitioned = asset(name="probe", partitions_def=partitions.AS_OF_PARTITIONS)(probe_body)
    plain = asset(name="probe")(probe_body)

    def run(assets_def, as_of: str = "", **kwargs) -> dict:
        wh = RiskWarehouse(warehouse=str(path), landing_dir=str(tmp_path), as_of=as_of)
        assert materialize([assets_def], resources={"warehouse": wh}, **kwargs).success
        return dict(seen)

    # A past partition decides its date; the current marts stay on the latest decided date.
    assert run(partitioned, partition_key="2024-10-31") == {
        "current": "2024-12-31", "dates": ["2024-10-31"]}
    # A later partition moves the current date forward.
    assert run(partitioned, partition_key="2025-01-05")["current"] == "2025-01-05"
    # An unpartitioned run (current marts after an asset-graph backfill) keeps the latest
    # decided date rather than today; a configured date wins.
    assert run(plain)["current"] == "2024-12-31"
    assert run(plain, as_of="2024-06-30")["current"] == "2024-06-30"
