"""Alerts: the alert log, the WeCom/DingTalk webhook (a local HTTP server stands in for the bot),
new or escalated red firms, and failed runs read from Dagster's event log."""

from __future__ import annotations

import json
import threading
import time
from datetime import date
from http.server import BaseHTTPRequestHandler, HTTPServer, ThreadingHTTPServer
from pathlib import Path

import duckdb
import pytest

from assets import alerts


class Bot(BaseHTTPRequestHandler):
    received: list[dict] = []
    delay = 0.0
    answer = b'{"errcode": 0, "errmsg": "ok"}'

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Bot.received.append({"json": json.loads(body), "type": self.headers["Content-Type"]})
        time.sleep(Bot.delay)
        try:
            self.send_response(200)
            self.end_headers()
            self.wfile.write(Bot.answer)
        except OSError:  # the client gave up (timeout test)
            pass

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def bot():
    Bot.received, Bot.delay, Bot.answer = [], 0.0, b'{"errcode": 0, "errmsg": "ok"}'
    server = ThreadingHTTPServer(("127.0.0.1", 0), Bot)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/cgi-bin/webhook/send?key=test"
    server.shutdown()
    server.server_close()


ALERT = alerts.Alert(alerts.RED_FIRMS, "run-1", date(2024, 12, 31), "2 red firm(s) 企业")


def test_post_sends_the_text_message_group_bots_accept(bot: str) -> None:
    assert alerts.post(bot, ALERT)
    (got,) = Bot.received
    assert got["json"] == {"msgtype": "text", "text": {"content": "[SME early warning] 2 red "
                                                                   "firm(s) 企业"}}
    assert got["type"].startswith("application/json")


def test_a_webhook_that_is_down_slow_or_refusing_never_raises(
    bot: str, caplog: pytest.LogCaptureFixture
) -> None:
    with HTTPServer(("127.0.0.1", 0), Bot) as closed:
        port = closed.server_port  # closed again: nothing listens there
    assert not alerts.post(f"http://127.0.0.1:{port}/x", ALERT)
    Bot.delay = 2.0
    started = time.monotonic()
    assert not alerts.post(bot, ALERT, timeout=0.3)
    assert time.monotonic() - started < 1.5
    Bot.delay, Bot.answer = 0.0, b'{"errcode": 310000, "errmsg": "keywords not in content"}'
    assert not alerts.post(bot, ALERT)
    assert not alerts.post("not a url", ALERT)
    assert sum("alert webhook" in r.getMessage() for r in caplog.records) == 4


def test_the_alert_log_keeps_one_row_per_kind_and_run(tmp_path: Path) -> None:
    with duckdb.connect(str(tmp_path / "w.duckdb")) as con:
        assert not alerts.already_raised(con, alerts.RED_FIRMS, "run-1")
        assert alerts.record(con, ALERT)
        assert not alerts.record(con, ALERT)
        assert alerts.already_raised(con, alerts.RED_FIRMS, "run-1")
        assert alerts.record(con, alerts.Alert(alerts.RUN_FAILED, "run-1", None, "failed"))
        rows = con.execute(
            "SELECT kind, run_id, as_of_date, message, details FROM marts.alert_log ORDER BY kind"
        ).fetchall()
    assert [r[0] for r in rows] == [alerts.RED_FIRMS, alerts.RUN_FAILED]
    assert rows[0][2] == date(2024, 12, 31) and json.loads(rows[0][4]) == {}


def test_new_and_escalated_red_firms_raise_one_alert_continuing_ones_none() -> None:
    con = duckdb.connect()
    con.execute("CREATE SCHEMA marts")
    con.execute(
        "CREATE TABLE marts.watchlist AS SELECT * FROM (VALUES "
        "('E1', 'red', 'new', ['loan defaulted']), ('E2', 'red', 'escalated', ['tax arrears']), "
        "('E3', 'red', 'continuing', ['x']), ('E4', 'amber', 'new', ['y'])) "
        "t(enterprise_id, tier, status, reasons)"
    )
    alert = alerts.red_firms_alert(con, "run-9", date(2024, 12, 31))
    assert alert is not None and alert.kind == alerts.RED_FIRMS
    assert [f["enterprise_id"] for f in alert.details["firms"]] == ["E1", "E2"]
    assert "2 red firm(s) as of 2024-12-31: 1 new, 1 escalated" in alert.message
    assert "E1 (new): loan defaulted" in alert.message and "E3" not in alert.message
    con.execute("DELETE FROM marts.watchlist WHERE status <> 'continuing'")
    assert alerts.red_firms_alert(con, "run-9", date(2024, 12, 31)) is None


def test_a_failed_blocking_check_names_itself_a_plain_failure_its_steps() -> None:
    blocked = alerts.failure_alert(
        run_id="r", job_name="nightly_refresh", as_of=date(2024, 12, 31),
        failed_steps=["loan_mart_checks"], failed_blocking_checks=["marts/x:no_negative_dpd"],
    )
    assert blocked.kind == alerts.BLOCKING_CHECK
    assert "not published" in blocked.message and "marts/x:no_negative_dpd" in blocked.message
    failed = alerts.failure_alert(run_id="r", job_name="nightly_refresh", as_of=None,
                                  failed_steps=["raw__loans"], failed_blocking_checks=[])
    assert failed.kind == alerts.RUN_FAILED and "raw__loans" in failed.message


def test_the_run_failure_sensor_alerts_once_per_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bot: str
) -> None:
    """A failed run read from a real instance: the sensor's alert is recorded in the build file
    and POSTed; a second look at the same run raises nothing."""
    from dagster import (
        AssetCheckResult,
        AssetCheckSeverity,
        DagsterInstance,
        Definitions,
        asset,
        asset_check,
        define_asset_job,
    )

    from orchestration.sensors import raise_failure_alert

    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dh"))
    monkeypatch.setenv("RISK_ALERT_WEBHOOK", bot)
    (tmp_path / "dh").mkdir()

    @asset
    def loans():
        return None

    @asset_check(asset=loans, blocking=True)
    def no_negative_dpd():
        return AssetCheckResult(passed=False, severity=AssetCheckSeverity.ERROR)

    @asset(deps=[loans])
    def watchlist():
        return None

    job = Definitions(
        assets=[loans, watchlist], asset_checks=[no_negative_dpd],
        jobs=[define_asset_job("nightly_refresh")],
    ).resolve_job_def("nightly_refresh")
    warehouse = tmp_path / "w.duckdb"
    with DagsterInstance.get() as instance:
        result = job.execute_in_process(
            instance=instance, raise_on_error=False,
            run_config={"resources": {}},
        )
        assert not result.success
        run = instance.get_run_by_id(result.run_id)
        monkeypatch.setenv("RISK_WAREHOUSE", str(warehouse))  # the run has no warehouse config
        first = raise_failure_alert(instance, run)
        again = raise_failure_alert(instance, run)
    assert first is not None and first.kind == alerts.BLOCKING_CHECK
    assert again is None
    assert len(Bot.received) == 1
    assert "loans:no_negative_dpd" in Bot.received[0]["json"]["text"]["content"]
    with duckdb.connect(str(tmp_path / "w.build.duckdb"), read_only=True) as con:
        assert con.execute("SELECT kind FROM marts.alert_log").fetchall() == [
            (alerts.BLOCKING_CHECK,)
        ]
