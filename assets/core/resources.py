"""Resources shared by every asset: where the landing zone and the warehouse are, and as of when."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import duckdb
from dagster import ConfigurableResource, DagsterRunStatus, InitResourceContext, RunsFilter
from pydantic import Field, PrivateAttr

from assets.core import partitions, publish, settings
from assets.core.dbt_project import dbt_resource

#: Run tag `host:pid:start` of the process that executes a run: a run left STARTED whose
#: process is gone is marked failed by the next run (fail_orphaned_runs).
PROCESS_TAG = "risk/process"


class RiskWarehouse(ConfigurableResource):
    """The DuckDB warehouse, the landing root and the as-of date of this run.

    Defaults come from RISK_WAREHOUSE / RISK_LANDING_DIR / RISK_AS_OF when the definitions
    load; a run may override them in its resource config. DuckDB allows one writer, so each
    step opens and closes its own connection and the job runs steps one at a time.

    With `build_aside` (what `risk refresh`, the schedule and the UI use) every step works on
    the build file beside the published one (`warehouse_path`), and only the publish step
    (`exports/published_warehouse`) replaces `published_path`. For the whole run the resource
    holds the warehouse's run lock: a second run on the same warehouse waits briefly, then
    fails naming the holder.
    """

    warehouse: str = Field(description="Path of the published DuckDB file (RISK_WAREHOUSE).")
    landing_dir: str = Field(description="Landing root with one folder per table.")
    as_of: str = Field(default="", description="As-of date YYYY-MM-DD; empty means today.")
    build_aside: bool = Field(
        default=False,
        description="Build in `<name>.build.duckdb` and publish `warehouse` atomically at the "
        "end (on for the nightly job); off: build `warehouse` in place (unit tests).",
    )
    _locked: bool = PrivateAttr(default=False)
    _run_dates: list = PrivateAttr(default_factory=list)
    _latest_decided: date | None = PrivateAttr(default=None)

    @property
    def published_path(self) -> Path:
        """The file analysts open (RISK_WAREHOUSE)."""
        return Path(self.warehouse)

    @property
    def warehouse_path(self) -> Path:
        """The file this run's steps read and write: the build file when building aside."""
        published = self.published_path
        return publish.build_path(published) if self.build_aside else published

    def setup_for_execution(self, context: InitResourceContext) -> None:
        """Take the run lock for the whole run, tag the run with its process, mark runs left
        STARTED by a dead process failed, and seed the build file from a warehouse that was
        built in place."""
        try:
            self.published_path.parent.mkdir(parents=True, exist_ok=True)
        except OSError:
            return  # the first step that opens the warehouse fails with the reason
        run_id = context.run.run_id if context.run is not None else ""
        publish.acquire(
            self.published_path, wait=settings.lock_wait_seconds(), what=f"dagster run {run_id}"
        )
        self._locked = True
        instance = context.instance
        if instance is not None and run_id:
            try:
                instance.add_run_tags(run_id, {PROCESS_TAG: publish.process_tag()})
                fail_orphaned_runs(instance)
            except Exception as exc:  # bookkeeping only: never stops the run
                if context.log is not None:
                    context.log.warning(f"could not check for orphaned runs: {exc}")
        if self.build_aside and publish.seed_build_file(self.published_path):
            if context.log is not None:
                context.log.info(
                    f"seeded the build file {self.warehouse_path} from {self.published_path}"
                )
        run = context.run
        self._run_dates = partitions.dates_of_run(run.tags if run is not None else {})
        if self._run_dates or not self.as_of:
            self._latest_decided = latest_decided_as_of(self.warehouse_path)
        if self._run_dates:
            if instance is not None and run_id and partitions.AS_OF_TAG not in run.tags:
                # Launchpad and backfill runs: the as-of date as a tag, as the CLI and the
                # schedule set it (a range is tagged with its last date).
                try:
                    instance.add_run_tags(
                        run_id, {partitions.AS_OF_TAG: max(self._run_dates).isoformat()}
                    )
                except Exception as exc:  # bookkeeping only: never stops the run
                    if context.log is not None:
                        context.log.warning(f"could not tag the run's as-of date: {exc}")

    def teardown_after_execution(self, context: InitResourceContext) -> None:
        if self._locked:
            publish.release(self.published_path)
            self._locked = False

    @property
    def landing_path(self) -> Path:
        return Path(self.landing_dir)

    @property
    def requested_as_of(self) -> date:
        """The as-of date of the resource config (RISK_AS_OF), else today in Beijing."""
        return date.fromisoformat(self.as_of) if self.as_of else partitions.beijing_today()

    @property
    def as_of_dates(self) -> list[date]:
        """The dates this run decides: its partition, or every date of its partition range
        (single-run backfill); an unpartitioned run decides its configured date."""
        return list(self._run_dates) or [self.requested_as_of]

    @property
    def as_of_date(self) -> date:
        """The current as-of date: what the unpartitioned ("current") marts are built as of.
        In a partitioned run it is the latest of the run's dates and the latest date this
        warehouse has already decided, so a run for a past date leaves them as they were. An
        unpartitioned run (e.g. the current marts after a backfill launched from the asset
        graph) uses its configured date, else the latest decided date, else today."""
        decided = self._latest_decided
        if self._run_dates:
            latest = max(self._run_dates)
            return max(latest, decided) if decided is not None else latest
        if not self.as_of and decided is not None:
            return decided
        return self.requested_as_of

    def is_current(self, d: date) -> bool:
        """Whether D's decisions are the current ones (D is the current as-of date)."""
        return d == self.as_of_date

    @contextmanager
    def connect(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        self.warehouse_path.parent.mkdir(parents=True, exist_ok=True)
        con = duckdb.connect(str(self.warehouse_path), read_only=read_only)
        try:
            # the steps' own queries (early warning, screening, scorecard, exports) keep to the
            # cap dbt and ingestion keep to: DuckDB's default is 80% of RAM, and at 1M the
            # decision window took 12.6 GiB under a 9 GB cap set for the rest
            con.execute(f"SET memory_limit = '{settings.duckdb_memory_limit()}'")
            yield con
        finally:
            con.close()


#: Tables whose as_of_date column says which dates this warehouse has decided.
DECIDED_TABLES = ("watchlist_refreshes", "enterprise_risk_profile_history", "signal_hits_history")


def latest_decided_as_of(path: Path) -> date | None:
    """The latest as-of date decided in the warehouse file at `path`, or None (no file, or no
    decision yet)."""
    if not path.exists():
        return None
    with duckdb.connect(str(path), read_only=True) as con:
        present = {r[0] for r in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'marts'"
        ).fetchall()}
        tables = [t for t in DECIDED_TABLES if t in present]
        if not tables:
            return None
        union = " UNION ALL ".join(f"SELECT max(as_of_date) AS d FROM marts.{t}" for t in tables)
        return con.execute(f"SELECT max(d) FROM ({union})").fetchone()[0]


def fail_orphaned_runs(instance) -> list[str]:
    """Runs of this instance still STARTED whose process (tag risk/process) is gone, e.g.
    killed with -9, are reported failed so the UI does not show them running forever. Runs
    without the tag are left alone (their process cannot be checked). Returns their ids."""
    failed = []
    for run in instance.get_runs(filters=RunsFilter(statuses=[DagsterRunStatus.STARTED])):
        tag = run.tags.get(PROCESS_TAG)
        if tag and not publish.process_alive(tag):
            instance.report_run_failed(
                run, message=f"the process that ran it ({tag}) is gone (killed or crashed)"
            )
            failed.append(run.run_id)
    return failed


def default_resources() -> dict:
    """Resources configured from the environment (read when the definitions load)."""
    try:
        as_of = settings.as_of_date().isoformat() if os.environ.get("RISK_AS_OF") else ""
    except ValueError:  # the definitions still load; the run fails naming the value
        as_of = os.environ["RISK_AS_OF"]
    return {
        "warehouse": RiskWarehouse(
            warehouse=str(settings.warehouse_path()),
            landing_dir=str(settings.landing_dir()),
            as_of=as_of,
            build_aside=True,
        ),
        "dbt": dbt_resource(),
    }
