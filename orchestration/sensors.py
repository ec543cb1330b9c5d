"""Sensors.

- `landing_files_sensor`: start nightly_refresh when new files land (off by default: the 02:00
  schedule is the norm). Turn it on in the UI (Automation -> landing_files_sensor) where
  upstream systems deliver during the day and the watchlist should follow within minutes.
- `run_failure_alert_sensor`: a failed nightly_refresh or model_backtest raises an alert
  (`assets/alerts.py`); on by default, it runs wherever `dagster-daemon` runs. `risk refresh`
  raises the same alert itself (once per run: the alert log remembers).
"""

import hashlib
import json
import logging
from datetime import date
from pathlib import Path

import duckdb
from dagster import (
    AssetCheckSeverity,
    DagsterEventType,
    DagsterInstance,
    DefaultSensorStatus,
    RunFailureSensorContext,
    RunRequest,
    SensorEvaluationContext,
    SkipReason,
    run_failure_sensor,
    sensor,
)

from assets import alerts
from assets.contract import LOAD_ORDER
from assets.core import publish, settings
from assets.core.partitions import beijing_today
from assets.core.resources import default_resources
from assets.ingestion import landing_files
from orchestration.jobs import model_backtest, nightly_refresh


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
    as_of = beijing_today().isoformat()  # a delivery during the day: today's partition
    return RunRequest(run_key=run_key, partition_key=as_of,
                      tags={"trigger": "landing_files_sensor",
                            "changed_files": str(len(changed)),
                            settings.WAREHOUSE_RUN_TAG: "write", "risk/as_of_date": as_of})


# ---------------------------------------------------------------------------------------------
# Alerts on failed runs


def _run_warehouse(run) -> tuple[Path, Path]:
    """(published file, file the run wrote) of a run, from its resource config or defaults."""
    cfg = ((run.run_config or {}).get("resources", {}).get("warehouse", {}) or {}).get(
        "config", {}
    ) or {}
    default = default_resources()["warehouse"]
    published = Path(cfg.get("warehouse") or default.warehouse)
    aside = cfg.get("build_aside", default.build_aside)
    return published, publish.build_path(published) if aside else published


def _run_as_of(run) -> date | None:
    cfg = ((run.run_config or {}).get("resources", {}).get("warehouse", {}) or {}).get(
        "config", {}
    ) or {}
    try:
        return date.fromisoformat(cfg["as_of"]) if cfg.get("as_of") else None
    except ValueError:
        return None


def failure_alert_for_run(instance: DagsterInstance, run) -> alerts.Alert:
    """What failed in a run, read from its event log: blocking checks, steps, the error."""
    steps, checks, error = [], [], ""
    for entry in instance.all_logs(run.run_id):
        event = entry.dagster_event
        if event is None:
            continue
        if event.event_type == DagsterEventType.STEP_FAILURE and event.step_key:
            steps.append(event.step_key)
            if not error and event.step_failure_data and event.step_failure_data.error:
                error = event.step_failure_data.error.message
        elif event.event_type == DagsterEventType.ASSET_CHECK_EVALUATION:
            ev = event.event_specific_data
            if not ev.passed and ev.severity == AssetCheckSeverity.ERROR:
                key = ev.asset_check_key
                checks.append(f"{key.asset_key.to_user_string()}:{key.name}")
        elif event.event_type == DagsterEventType.RUN_FAILURE and not error:
            error = event.message or ""
    return alerts.failure_alert(
        run_id=run.run_id, job_name=run.job_name, as_of=_run_as_of(run),
        failed_steps=sorted(set(steps)), failed_blocking_checks=sorted(set(checks)),
        error=error,
    )


def raise_failure_alert(instance: DagsterInstance, run, *, lock_wait: float = 5.0,
                        log=None) -> alerts.Alert | None:
    """Record the failed run's alert in the warehouse it wrote (marts.alert_log, under the
    run lock) and POST it to RISK_ALERT_WEBHOOK; once per run and kind. A warehouse that is
    busy or unwritable costs a warning, never an exception; the POST still goes out."""
    log = log or logging.getLogger(__name__)
    alert = failure_alert_for_run(instance, run)
    published, target = _run_warehouse(run)
    new = True
    try:
        with publish.run_lock(published, wait=lock_wait, what=f"alert for run {run.run_id}"):
            if target.parent.is_dir():
                with duckdb.connect(str(target)) as con:
                    new = alerts.record(con, alert)
    except Exception as exc:  # the alert still goes out
        log.warning(f"alert not recorded in {target}: {exc}")
    if not new:
        return None  # already raised (by `risk refresh` or an earlier tick)
    log.warning(alert.content())
    webhook = settings.alert_webhook()
    if webhook:
        alerts.post(webhook, alert)
    return alert


@run_failure_sensor(
    monitored_jobs=[nightly_refresh, model_backtest],
    default_status=DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=30,
    description="Raises an alert (marts.alert_log, RISK_ALERT_WEBHOOK) when nightly_refresh or "
    "model_backtest fails, naming a blocking check that stopped publication.",
)
def run_failure_alert_sensor(context: RunFailureSensorContext) -> None:
    raise_failure_alert(context.instance, context.dagster_run, log=context.log)
