"""What the daemon submits for a backfill of `nightly_refresh` launched from the job page.

    .venv/bin/python benchmarks/check_job_backfill.py [--start 2026-09-28 --end 2026-09-30]

Creates a job backfill (a PartitionBackfill over the job's partition set, what the UI's
"Launch backfill" on the job page creates) in a temporary DagsterInstance whose runs are only
queued (QueuedRunCoordinator: nothing executes), runs the backfill daemon's iterations on it
with the real code location (orchestration.definitions, loaded in a gRPC server like
`dagster dev`), and prints the runs it submitted and their partition tags: one run tagged
with the range when the job's single-run backfill policy applies, one run per date if not.

With --execute LANDING, the run queue daemon's iteration then dequeues the run and the
instance's run launcher executes it (a run worker subprocess through the gRPC server, as
under `dagster-daemon`), on that landing directory and a fresh warehouse; the script waits for
the run and prints its status and the rows and export folder each date got.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--start", default="2026-09-28")
    parser.add_argument("--end", default="2026-09-30")
    parser.add_argument("--execute", metavar="LANDING", help="also run it on this landing")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds to wait for it")
    args = parser.parse_args()
    work = None
    if args.execute:  # before the code server starts: it inherits this environment
        import os
        import tempfile

        work = Path(tempfile.mkdtemp(prefix="job_backfill_"))
        os.environ.update(RISK_LANDING_DIR=str(Path(args.execute).resolve()),
                          RISK_WAREHOUSE=str(work / "warehouse.duckdb"),
                          RISK_EXPORTS_DIR=str(work / "exports"))

    from dagster import DagsterInstance  # noqa: F401  (the daemon's types)
    from dagster._core.execution.backfill import BulkActionStatus, PartitionBackfill
    from dagster._core.storage.dagster_run import DagsterRun, RunsFilter
    from dagster._core.test_utils import create_test_daemon_workspace_context, instance_for_test
    from dagster._core.workspace.load_target import ModuleTarget
    from dagster._daemon.backfill import execute_backfill_iteration

    from assets.core.partitions import AS_OF_PARTITIONS

    dates = [d for d in AS_OF_PARTITIONS.get_partition_keys() if args.start <= d <= args.end]
    target = ModuleTarget(module_name="orchestration.definitions", attribute="defs",
                          working_directory=str(ROOT), location_name="risk")
    overrides = {"run_coordinator": {"module": "dagster._core.run_coordinator",
                                     "class": "QueuedRunCoordinator"}}
    with instance_for_test(overrides=overrides) as instance, \
            create_test_daemon_workspace_context(target, instance) as context:
        location = next(iter(context.create_request_context().get_code_location_entries()
                             .values())).code_location
        assert location is not None, "the code location did not load"
        repo = next(iter(location.get_repositories().values()))
        partition_set = next(p for p in repo.get_partition_sets()
                             if p.job_name == "nightly_refresh")
        backfill = PartitionBackfill(
            backfill_id="jobpage", status=BulkActionStatus.REQUESTED, from_failure=False,
            tags={}, backfill_timestamp=time.time(),
            partition_set_origin=partition_set.get_remote_origin(), partition_names=dates,
        )
        instance.add_backfill(backfill)
        logger = logging.getLogger("backfill")
        for _ in range(3):
            list(execute_backfill_iteration(context, logger))
        runs = instance.get_runs(RunsFilter(tags=DagsterRun.tags_for_backfill_id("jobpage")))
        print(f"job-page backfill of nightly_refresh over {len(dates)} dates "
              f"({dates[0]} .. {dates[-1]}): {len(runs)} run(s) submitted")
        for run in runs:
            tags = {k: v for k, v in run.tags.items() if "partition" in k}
            print(f"  run {run.run_id[:8]} {run.status.value}: {tags}")
        if work is not None:
            execute(context, instance, [r.run_id for r in runs], work, args.timeout)


def execute(context, instance, run_ids: list[str], work: Path, timeout: float) -> None:
    """Dequeue and launch the queued runs as the daemon would, wait, and show what they wrote."""
    import duckdb
    from dagster._daemon.run_coordinator.queued_run_coordinator_daemon import (
        QueuedRunCoordinatorDaemon,
    )

    started = time.perf_counter()
    with QueuedRunCoordinatorDaemon(interval_seconds=1) as daemon:
        list(daemon.run_iteration(context))
    while True:
        runs = [instance.get_run_by_id(i) for i in run_ids]
        if all(r.is_finished for r in runs) or time.perf_counter() - started > timeout:
            break
        time.sleep(5)
    for run in runs:
        print(f"  run {run.run_id[:8]} {run.status.value} after "
              f"{time.perf_counter() - started:.0f} s")
    build = work / "warehouse.build.duckdb"
    if build.exists():
        with duckdb.connect(str(build), read_only=True) as con:
            for d, n in con.execute("SELECT as_of_date, count(*) FROM "
                                    "marts.enterprise_risk_profile_history GROUP BY 1 ORDER BY 1"
                                    ).fetchall():
                print(f"  {d}: {n} risk profiles")
    folders = sorted(p.name for p in (work / "exports").glob("*") if p.is_dir())
    print(f"  export folders: {folders}")
    print(f"  work directory: {work}")


if __name__ == "__main__":
    main()
