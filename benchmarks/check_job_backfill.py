"""What the daemon submits for a backfill of `nightly_refresh` launched from the job page.

    .venv/bin/python benchmarks/check_job_backfill.py [--start 2026-09-28 --end 2026-09-30]

Creates a job backfill (a PartitionBackfill over the job's partition set, what the UI's
"Launch backfill" on the job page creates) in a temporary DagsterInstance whose runs are only
queued (QueuedRunCoordinator: nothing executes), runs the backfill daemon's iterations on it
with the real code location (orchestration.definitions, loaded in a gRPC server like
`dagster dev`), and prints the runs it submitted and their partition tags: one run tagged
with the range when the job's single-run backfill policy applies, one run per date if not.
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
    args = parser.parse_args()

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


if __name__ == "__main__":
    main()
