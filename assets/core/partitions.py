"""As-of partitions: one Dagster partition per as-of date D, in Beijing time.

The decision assets (signal hits and risk profile per date, the decision window, the watchlist
history, the export folder) are partitioned by D; a run for a past D writes D's rows and files
only. The "current" marts (signal_hits, enterprise_risk_profile, watchlist, loan_ifrs9_stage,
the fact marts) are unpartitioned and always show the latest as-of date this warehouse has
decided (`current_as_of`), so a past-date run never moves them.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from dagster import BackfillPolicy, BetaWarning, DailyPartitionsDefinition

# `backfill_policy` is beta in Dagster 1.13: the warning would print on every `risk` command
# and import; the policy's behaviour is covered by tests/test_nights.py.
warnings.filterwarnings("ignore", category=BetaWarning, message=".*backfill_policy.*")

SHANGHAI = ZoneInfo("Asia/Shanghai")

#: First as-of date a partition exists for (the contract's data start well after it).
START_DATE = "2015-01-01"

#: Daily partitions in Beijing time; `end_offset=1` makes today's date a partition (the 02:00
#: run decides as of the day it runs, not yesterday).
AS_OF_PARTITIONS = DailyPartitionsDefinition(
    start_date=START_DATE, timezone="Asia/Shanghai", end_offset=1, fmt="%Y-%m-%d"
)

#: A backfill over a range of dates runs as one run: the fact marts are built once and the
#: dates are decided in that run.
SINGLE_RUN = BackfillPolicy.single_run()

#: Run tag of the as-of date (the range's last date for a backfill): filter runs by date.
AS_OF_TAG = "risk/as_of_date"
PARTITION_TAG = "dagster/partition"
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"


def beijing_today(now: datetime | None = None) -> date:
    """Today's date in Asia/Shanghai (the bank's calendar), whatever the machine's zone."""
    return (now or datetime.now(SHANGHAI)).astimezone(SHANGHAI).date()


def partition_key(d: date) -> str:
    """The partition key of as-of date D."""
    return d.isoformat()


def partition_problem(d: date, today: date | None = None) -> str | None:
    """Why D cannot be an as-of partition (before the first or after today in Beijing)."""
    today = today or beijing_today()
    if d < date.fromisoformat(START_DATE):
        return f"before the first as-of partition {START_DATE}"
    if d > today:
        return f"after today in Asia/Shanghai ({today})"
    return None


def dates_of_run(tags: Mapping[str, str]) -> list[date]:
    """The as-of dates a run was launched for: its partition, or every day of its partition
    range (single-run backfill); [] for an unpartitioned run."""
    if tags.get(PARTITION_TAG):
        return [date.fromisoformat(tags[PARTITION_TAG])]
    start, end = tags.get(RANGE_START_TAG), tags.get(RANGE_END_TAG)
    if start and end:
        first, last = date.fromisoformat(start), date.fromisoformat(end)
        return [first + timedelta(days=i) for i in range((last - first).days + 1)]
    return []
