"""The contract examples night after night, end to end, as `risk refresh` and the schedule run
them: the first refresh builds every mart and records its run; a second with nothing new
skips; a run for a past date writes that date's history rows and export folder and leaves the
current marts as they were; a backfill over a range is one run that writes every date; runs
carry the as-of date.

The tests share the first night's refresh (a minute of marts) and run in file order: the
ones that only read it first, then the nothing-new night, then those that add past dates."""

from __future__ import annotations

import io
import os
import shutil
from collections.abc import Iterator
from contextlib import redirect_stdout
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb
import pytest
from conftest import CONTRACT_EXAMPLES, RefreshFolder, refresh_run_id
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


@dataclass(frozen=True)
class FirstNight(RefreshFolder):
    """The contract examples after one `risk refresh` as of LATEST (in this process, as the
    schedule's job runs), with what the run printed and recorded right after it. RISK_*
    and DAGSTER_HOME point at `root` for the whole module (`mp`)."""

    mp: pytest.MonkeyPatch
    printed: str
    job_names: list[str]  # the runs in DAGSTER_HOME after the refresh
    decision_dbt_log: str  # the dbt log of the run's last dbt step


@pytest.fixture(scope="module")
def first_night(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FirstNight]:
    """One refresh for the module's tests: building the marts is what costs (about a minute)."""
    from assets.core.dbt_project import dbt_project

    folder = RefreshFolder(tmp_path_factory.mktemp("first_night"))
    shutil.copytree(CONTRACT_EXAMPLES / "landing", folder.landing)
    mp = pytest.MonkeyPatch()
    for name, value in folder.risk_env(LATEST).items():
        mp.setenv(name, value)
    printed = io.StringIO()
    try:
        with redirect_stdout(printed):
            assert cli.main(["refresh"]) == 0
        with DagsterInstance.get() as instance:  # recorded where `make ui` looks
            job_names = [r.job_name for r in instance.get_runs()]
        run_id = refresh_run_id(printed.getvalue())
        target = Path(dbt_project.project_dir) / "target"
        decision_log = next(target.glob(f"decision_dbt_models-{run_id[:7]}-*/dbt.log"))
        yield FirstNight(folder.root, mp, printed.getvalue(), job_names,
                         decision_log.read_text())
    finally:
        mp.undo()


def test_refresh_builds_every_mart_and_records_the_run(first_night: FirstNight) -> None:
    warehouse = first_night.warehouse
    printed = first_night.printed
    assert "risk refresh succeeded" in printed and str(warehouse) in printed
    # what a person needs: the watchlist in numbers, where the report is, how to look further
    assert f"watchlist as of {LATEST}:" in printed and "report.html" in printed
    assert "--verbose" in printed and "\n step " not in printed  # timings only with --verbose
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
            "SELECT count(*) FROM marts.fct_loan_month_end WHERE month_end = ?", [LATEST]
        ).fetchone()[0]
    expected = CONTRACT_EXAMPLES / f"expected_fct_loan_month_end_as_of_{LATEST}.csv"
    assert built == sum(f",{LATEST}," in line for line in expected.read_text().splitlines())
    assert (first_night.exports / LATEST / "watchlist.csv").exists()
    # Built aside, published in one piece: the published file says which refresh it holds and
    # carries no personal data; the build file beside it keeps everything for the next night.
    assert first_night.build.exists()
    with duckdb.connect(str(warehouse), read_only=True) as con:
        assert con.execute("SELECT as_of_date FROM main.published_refresh").fetchone()[0] \
            .isoformat() == LATEST
        assert not con.execute(
            "SELECT list(column_name) FROM duckdb_columns() WHERE column_name IN "
            "('legal_rep_name', 'legal_rep_id_number')"
        ).fetchone()[0]
    assert first_night.job_names == ["nightly_refresh"]
    # The run's last dbt step started from the earlier steps' parse state (same vars).
    assert "Partial parsing enabled" in first_night.decision_dbt_log


def test_refresh_runs_the_partition_of_its_as_of_date(first_night: FirstNight) -> None:
    with DagsterInstance.get() as instance:
        run = instance.get_runs(filters=RunsFilter(job_name="nightly_refresh"))[-1]
    assert run.tags["dagster/partition"] == LATEST
    assert run.tags[partitions.AS_OF_TAG] == LATEST


def test_a_second_refresh_with_nothing_new_skips_and_the_schedule_skips_too(
    first_night: FirstNight, capsys
) -> None:
    """A night with nothing new: the schedule and `risk refresh` share one decision
    (assets/refresh_plan.py) and skip the rebuild; anything that would change the published
    warehouse makes them rebuild."""
    from dagster import SkipReason, build_schedule_context

    from assets.refresh_plan import decide_refresh, refresh_facts
    from orchestration.schedules import nightly_refresh_schedule

    warehouse, landing, day = first_night.warehouse, first_night.landing, date.fromisoformat(LATEST)
    published_at = warehouse.stat().st_mtime_ns

    assert cli.main(["refresh"]) == 0
    printed = capsys.readouterr().out.strip().splitlines()
    assert len(printed) == 1 and "nothing to do" in printed[0]
    assert warehouse.stat().st_mtime_ns == published_at  # not republished
    with DagsterInstance.get() as instance:
        assert len(instance.get_runs()) == len(first_night.job_names)  # no second run
        night = datetime(2024, 12, 31, 2, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
        tick = nightly_refresh_schedule(build_schedule_context(
            instance=instance, scheduled_execution_time=night))
    assert isinstance(tick, SkipReason) and "nothing to do" in tick.skip_message

    # The next day, a re-delivered file, a refit written to the build file: rebuild.
    assert decide_refresh(warehouse, landing, date(2025, 1, 1)).rebuild
    assert decide_refresh(warehouse, landing, day, full=True).rebuild
    some_file = next(p for p in sorted((landing / "repayments").iterdir()) if p.is_file())
    stamp = some_file.stat()
    os.utime(some_file, ns=(stamp.st_atime_ns, stamp.st_mtime_ns + 10**9))
    plan = decide_refresh(warehouse, landing, day)
    assert plan.rebuild and plan.changed_files == (str(some_file.resolve()),)
    os.utime(some_file, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))
    assert not decide_refresh(warehouse, landing, day).rebuild
    with duckdb.connect(str(first_night.build)) as con:
        con.execute("CREATE TABLE main.refit_marker AS SELECT 1 AS x")
    try:
        assert refresh_facts(warehouse, landing, day).build_written_after_publish
        assert decide_refresh(warehouse, landing, day).rebuild
    finally:
        with duckdb.connect(str(first_night.build)) as con:
            con.execute("DROP TABLE main.refit_marker")


def test_past_date_run_writes_its_rows_and_leaves_the_current_marts(
    first_night: FirstNight, capsys
) -> None:
    night, mp = first_night, first_night.mp
    build, exports = night.build, night.exports
    before, published_before = _tables(build), _tables(night.warehouse)
    latest_history = {t: _rows_of(build, t, LATEST) for t in PER_DATE}
    latest_export = (exports / LATEST / "watchlist.csv").read_bytes()
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
    assert _tables(night.warehouse) == published_before
    # ... the latest date's history rows and files are untouched ...
    assert {t: _rows_of(build, t, LATEST) for t in PER_DATE} == latest_history
    assert (exports / LATEST / "watchlist.csv").read_bytes() == latest_export
    # ... and the past date has its own rows and export folder, published too.
    for table in HISTORY:
        assert PAST in _dates(night.warehouse, table), table
    assert _rows_of(build, "enterprise_risk_profile_history", PAST)
    assert (exports / PAST / "watchlist.csv").exists()
    assert (exports / PAST / "report.html").exists()


def test_backfill_over_a_range_is_one_run_that_writes_every_date(
    first_night: FirstNight,
) -> None:
    """What the UI launches for a single-run backfill: one run tagged with the range."""
    from orchestration.definitions import defs

    build = first_night.build
    before = _tables(build)
    job = defs.resolve_job_def("nightly_refresh")
    with DagsterInstance.get() as instance:
        n_runs = len(instance.get_runs())
        result = job.execute_in_process(
            instance=instance,
            run_config={"resources": {"warehouse": {"config": {
                "warehouse": str(first_night.warehouse),
                "landing_dir": str(first_night.landing),
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
        assert (first_night.exports / d / "watchlist.csv").exists()
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
