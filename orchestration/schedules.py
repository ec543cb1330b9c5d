"""The nightly schedule: 02:00 Beijing time, after upstream systems deliver their files."""

from dagster import DefaultScheduleStatus, ScheduleDefinition

from orchestration.jobs import nightly_refresh

nightly_refresh_schedule = ScheduleDefinition(
    name="nightly_refresh_0200_shanghai",
    job=nightly_refresh,
    cron_schedule="0 2 * * *",
    execution_timezone="Asia/Shanghai",
    default_status=DefaultScheduleStatus.RUNNING,
    description="Runs nightly_refresh every day at 02:00 Asia/Shanghai.",
)
