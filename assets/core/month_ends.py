"""Month-end arithmetic: the facts' clock (every mart row sits at a month end)."""

from __future__ import annotations

import calendar
from datetime import date


def month_end(d: date) -> date:
    """The last day of d's month."""
    return d.replace(day=calendar.monthrange(d.year, d.month)[1])


def last_month_end(d: date) -> date:
    """The latest month end on or before d."""
    end = month_end(d)
    return end if end == d else add_months(d, -1)


def add_months(d: date, months: int) -> date:
    """The month end `months` months after d's month (negative: before)."""
    idx = d.year * 12 + d.month - 1 + months
    return month_end(date(idx // 12, idx % 12 + 1, 1))


def months_between(start: date, end: date) -> int:
    """Whole months from start's month to end's month (negative when end is earlier)."""
    return (end.year - start.year) * 12 + end.month - start.month
