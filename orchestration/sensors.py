"""Start nightly_refresh when new files land (off by default: the 02:00 schedule is the norm).

Turn it on in the UI (Automation -> landing_files_sensor) where upstream systems deliver during
the day and the watchlist should follow within minutes.
"""

import hashlib
import json

from dagster import DefaultSensorStatus, RunRequest, SensorEvaluationContext, SkipReason, sensor

from assets.contract import LOAD_ORDER
from assets.core import settings
from assets.ingestion import landing_files
from orchestration.jobs import nightly_refresh


def landing_fingerprint() -> dict[str, int]:
    """{file path: mtime_ns} of every landing file the contract reads."""
    root = settings.landing_dir()
    return {
        str(p): p.stat().st_mtime_ns for table in LOAD_ORDER for p in landing_files(root, table)
    }


@sensor(
    job=nightly_refresh,
    minimum_interval_seconds=300,
    default_status=DefaultSensorStatus.STOPPED,
    description="Runs nightly_refresh when files in the landing directory are new or changed.",
)
def landing_files_sensor(context: SensorEvaluationContext):
    current = landing_fingerprint()
    previous = json.loads(context.cursor) if context.cursor else {}
    changed = sorted(p for p, mtime in current.items() if previous.get(p) != mtime)
    if not changed:
        return SkipReason("no new or changed landing files")
    context.update_cursor(json.dumps(current))
    run_key = hashlib.sha256(json.dumps(current, sort_keys=True).encode()).hexdigest()[:16]
    return RunRequest(run_key=run_key, tags={"trigger": "landing_files_sensor",
                                             "changed_files": str(len(changed))})
