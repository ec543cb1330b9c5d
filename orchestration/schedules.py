"""Schedules: the nightly refresh at 02:00 Beijing time (after upstream systems deliver) and
the monthly scorecard refit and back-test."""

from dagster import DefaultScheduleStatus, ScheduleDefinition

from orchestration.jobs import model_backtest, nightly_refresh

nightly_refresh_schedule = ScheduleDefinition(
    name="nightly_refresh_0200_shanghai",
    job=nightly_refresh,
    cron_schedule="0 2 * * *",
    execution_timezone="Asia/Shanghai",
    default_status=DefaultScheduleStatus.RUNNING,
    description="Runs nightly_refresh every day at 02:00 Asia/Shanghai.",
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
