"""Alerts: a failed nightly run, a blocking check that stopped publication, new or escalated
red firms.

Each alert is one row of `marts.alert_log` in the warehouse (raised_at, kind, run_id,
as_of_date, message, details JSON; one row per kind and run) and, when RISK_ALERT_WEBHOOK is
set, a POST of the JSON that WeCom and DingTalk group bots accept:
`{"msgtype": "text", "text": {"content": "..."}}`. The POST has a short timeout and never
raises: a webhook that is down costs a warning in the log, not the run.

Plain Python and DuckDB; the Dagster wiring is in assets/publish_assets.py (red firms) and
orchestration/sensors.py (failed runs).
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

import duckdb

from assets.core.sql import transaction

log = logging.getLogger(__name__)

ALERT_LOG = "marts.alert_log"
ALERT_LOG_DDL = f"""CREATE TABLE IF NOT EXISTS {ALERT_LOG} (
    raised_at TIMESTAMP, kind VARCHAR, run_id VARCHAR, as_of_date DATE, message VARCHAR,
    details JSON)"""

RUN_FAILED = "run_failed"
BLOCKING_CHECK = "blocking_check_failed"
RED_FIRMS = "red_firms"
KINDS = (RUN_FAILED, BLOCKING_CHECK, RED_FIRMS)

#: Seconds a webhook gets to answer.
WEBHOOK_TIMEOUT = 5.0
#: Firms named in a red-firms message (all of them are in `details`).
MAX_FIRMS_IN_MESSAGE = 10
PREFIX = "[SME early warning]"


@dataclass(frozen=True)
class Alert:
    kind: str
    run_id: str
    as_of_date: date | None
    message: str
    details: dict = field(default_factory=dict)
    raised_at: datetime = field(default_factory=lambda: datetime.now(UTC).replace(tzinfo=None))

    def content(self) -> str:
        """The text a group bot shows."""
        return f"{PREFIX} {self.message}"


def record(con: duckdb.DuckDBPyConnection, alert: Alert) -> bool:
    """Append the alert to marts.alert_log unless this kind was already raised for this run
    (the run-failure sensor and `risk refresh` may both see the same failure). True if added."""
    with transaction(con):
        con.execute("CREATE SCHEMA IF NOT EXISTS marts")
        con.execute(ALERT_LOG_DDL)
        seen = con.execute(
            f"SELECT count(*) FROM {ALERT_LOG} WHERE kind = ? AND run_id = ?",
            [alert.kind, alert.run_id],
        ).fetchone()[0]
        if seen:
            return False
        con.execute(
            f"INSERT INTO {ALERT_LOG} VALUES (?, ?, ?, ?, ?, ?)",
            [alert.raised_at, alert.kind, alert.run_id, alert.as_of_date, alert.message,
             json.dumps(alert.details, default=str, ensure_ascii=False)],
        )
    return True


def already_raised(con: duckdb.DuckDBPyConnection, kind: str, run_id: str) -> bool:
    exists = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE database_name = current_database() "
        "AND schema_name = 'marts' AND table_name = 'alert_log'"
    ).fetchone()[0]
    return bool(exists) and bool(con.execute(
        f"SELECT count(*) FROM {ALERT_LOG} WHERE kind = ? AND run_id = ?", [kind, run_id]
    ).fetchone()[0])


def post(url: str, alert: Alert, *, timeout: float = WEBHOOK_TIMEOUT) -> bool:
    """POST the alert as a WeCom/DingTalk text message; False (and a warning) when the
    webhook is unreachable, slow or answers with an error."""
    body = json.dumps(
        {"msgtype": "text", "text": {"content": alert.content()}}, ensure_ascii=False
    ).encode("utf-8")
    try:
        req = urllib.request.Request(
            url, data=body, method="POST",
            headers={"Content-Type": "application/json; charset=utf-8"},
        )
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 (configured URL)
            answer = resp.read(4096).decode("utf-8", "replace")
    except (urllib.error.URLError, OSError, ValueError) as exc:
        log.warning("alert webhook %s failed: %s (alert %s kept in %s)", url, exc, alert.kind,
                    ALERT_LOG)
        return False
    try:  # both bots answer 200 with {"errcode": 0, ...}; anything else is an error
        errcode = json.loads(answer).get("errcode", 0)
    except (ValueError, AttributeError):
        errcode = 0
    if errcode:
        log.warning("alert webhook %s refused the alert: %s", url, answer[:200])
        return False
    return True


def red_firms_alert(con: duckdb.DuckDBPyConnection, run_id: str, as_of: date) -> Alert | None:
    """New or escalated red firms on this refresh's marts.watchlist, or None."""
    rows = con.execute(
        "SELECT enterprise_id, status, reasons FROM marts.watchlist "
        "WHERE tier = 'red' AND status IN ('new', 'escalated') ORDER BY status DESC, enterprise_id"
    ).fetchall()
    if not rows:
        return None
    firms = [{"enterprise_id": e, "status": s, "reasons": r} for e, s, r in rows]
    new = sum(f["status"] == "new" for f in firms)
    lines = [f"- {f['enterprise_id']} ({f['status']}): {_reasons(f['reasons'])}"
             for f in firms[:MAX_FIRMS_IN_MESSAGE]]
    more = len(firms) - len(lines)
    message = (
        f"{len(firms)} red firm(s) as of {as_of.isoformat()}: {new} new, "
        f"{len(firms) - new} escalated from amber.\n" + "\n".join(lines)
        + (f"\n... and {more} more (marts.watchlist)" if more > 0 else "")
    )
    return Alert(RED_FIRMS, run_id, as_of, message, {"firms": firms})


def _reasons(reasons: object) -> str:
    if isinstance(reasons, list | tuple):
        return "; ".join(map(str, reasons))
    return str(reasons or "")


def failure_alert(
    *, run_id: str, job_name: str, as_of: date | None, failed_steps: list[str],
    failed_blocking_checks: list[str], error: str = "",
) -> Alert:
    """The alert of a failed run: a blocking check that stopped publication, or a failure."""
    when = f" as of {as_of.isoformat()}" if as_of else ""
    details = {"job": job_name, "failed_steps": failed_steps,
               "failed_blocking_checks": failed_blocking_checks, "error": error[:2000]}
    if failed_blocking_checks:
        return Alert(
            BLOCKING_CHECK, run_id, as_of,
            f"{job_name}{when}: blocking check(s) failed, the warehouse was not published "
            f"(analysts still see the previous refresh): {', '.join(failed_blocking_checks)}. "
            f"Run {run_id}.",
            details,
        )
    steps = ", ".join(failed_steps) or "see the run log"
    return Alert(
        RUN_FAILED, run_id, as_of,
        f"{job_name}{when} FAILED (run {run_id}); failed steps: {steps}. The published "
        "warehouse still holds the previous refresh.",
        details,
    )
