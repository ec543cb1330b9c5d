"""Schedules: the nightly refresh at 02:00 Beijing time (after upstream systems deliver) and
the monthly scorecard refit and back-test."""

from zoneinfo import ZoneInfo

from dagster import (
    DefaultScheduleStatus,
    RunRequest,
    ScheduleDefinition,
    ScheduleEvaluationContext,
    SkipReason,
    schedule,
)

from assets.core import settings
from assets.refresh_plan import decide_refresh
from orchestration.jobs import model_backtest, nightly_refresh

SHANGHAI = ZoneInfo("Asia/Shanghai")


@schedule(
    name="nightly_refresh_0200_shanghai",
    job=nightly_refresh,
    cron_schedule="0 2 * * *",
    execution_timezone="Asia/Shanghai",
    default_status=DefaultScheduleStatus.RUNNING,
    description="Runs nightly_refresh every day at 02:00 Asia/Shanghai, as of that day.",
)
def nightly_refresh_schedule(context: ScheduleEvaluationContext) -> RunRequest | SkipReason:
    """Each run is the as-of partition of the Beijing date it was scheduled for, and is tagged
    with it, so the UI shows which date a run was for. Nothing new since the publish: skipped
    (refresh_plan); a full rebuild is launched from the UI with the run tag
    `risk/full_refresh`."""
    as_of = context.scheduled_execution_time.astimezone(SHANGHAI).date()
    plan = decide_refresh(settings.warehouse_path(), settings.landing_dir(), as_of)
    if not plan.rebuild:
        return SkipReason(plan.reason)
    return RunRequest(
        partition_key=as_of.isoformat(),
        tags={"risk/as_of_date": as_of.isoformat(), "trigger": "schedule"},
    )

model_backtest_schedule = ScheduleDefinition(
    name="model_backtest_monthly_shanghai",
    job=model_backtest,
    cron_schedule="0 5 2 * *",
    execution_timezone="Asia/Shanghai",
    default_status=DefaultScheduleStatus.RUNNING,
    description="Refits the PD scorecard and back-tests the early warning on the 2nd of every "
    "month at 05:00 Asia/Shanghai, after the month's first nightly refresh.",
)
