"""Schedules: the nightly refresh at 02:00 Beijing time (after upstream systems deliver) and
the monthly scorecard refit and back-test."""

from zoneinfo import ZoneInfo

from dagster import (
    DefaultScheduleStatus,
    RunRequest,
    ScheduleDefinition,
    ScheduleEvaluationContext,
    schedule,
)

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
def nightly_refresh_schedule(context: ScheduleEvaluationContext) -> RunRequest:
    """Each run is the as-of partition of the Beijing date it was scheduled for, and is tagged
    with it, so the UI shows which date a run was for."""
    as_of = context.scheduled_execution_time.astimezone(SHANGHAI).date()
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
