"""The `risk` command end to end: what the nightly schedule and an operator run headless."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import duckdb
import pytest
from conftest import CONTRACT_EXAMPLES

from assets.core import settings
from assets.ingestion import ingest_all
from orchestration import cli

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    monkeypatch.setenv("RISK_EXPORTS_DIR", str(tmp_path / "exports"))
    return tmp_path


def test_generate_writes_every_table_and_truth_beside(env: Path, capsys) -> None:
    out = env / "landing"
    assert cli.main(["generate", "--enterprises", "60", "--seed", "3", "--out", str(out)]) == 0
    assert {p.name for p in out.iterdir()} >= {
        "enterprises",
        "loans",
        "tax_filings",
        "utility_bills",
        "loan_applications",
    }
    assert (env / "landing_truth" / "enterprises.parquet").exists()
    assert not (out / "landing_truth").exists()  # ground truth is never inside the landing zone


def test_generated_data_loads_clean_and_a_second_load_changes_no_row(env: Path) -> None:
    out = env / "landing"
    cli.main(
        ["generate", "--enterprises", "80", "--seed", "5", "--out", str(out), "--format", "parquet"]
    )
    warehouse = env / "w.duckdb"
    first = ingest_all(warehouse, out)
    assert sum(r.rows_quarantined for r in first.values()) == 0
    with duckdb.connect(str(warehouse), read_only=True) as con:
        before = {t: con.execute(f"SELECT * FROM raw.{t} ORDER BY ALL").fetchall() for t in first}
    ingest_all(warehouse, out, force=True)  # re-read every file, not just the manifest's word
    with duckdb.connect(str(warehouse), read_only=True) as con:
        after = {t: con.execute(f"SELECT * FROM raw.{t} ORDER BY ALL").fetchall() for t in first}
    assert after == before


class _Bot(BaseHTTPRequestHandler):
    received: list[dict] = []

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Bot.received.append(json.loads(body))
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b'{"errcode": 0, "errmsg": "ok"}')

    def log_message(self, *args) -> None:
        pass


def test_refresh_exits_non_zero_when_a_step_fails_and_alerts(
    env: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    warehouse = env / "w.duckdb"
    (env / "w.build.duckdb").mkdir()  # the build file cannot be opened: the first step fails
    server = HTTPServer(("127.0.0.1", 0), _Bot)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _Bot.received.clear()
    monkeypatch.setenv("RISK_ALERT_WEBHOOK", f"http://127.0.0.1:{server.server_port}/bot")
    monkeypatch.setenv("RISK_LANDING_DIR", str(CONTRACT_EXAMPLES / "landing"))
    monkeypatch.setenv("RISK_WAREHOUSE", str(warehouse))
    monkeypatch.setenv("RISK_AS_OF", "2024-12-31")
    try:
        assert cli.main(["refresh"]) == 1
    finally:
        server.shutdown()
    err = capsys.readouterr().err
    assert "risk refresh FAILED" in err and "published warehouse unchanged" in err
    assert not warehouse.exists()  # nothing was published
    assert len(_Bot.received) == 1
    message = _Bot.received[0]
    assert message["msgtype"] == "text" and "nightly_refresh as of 2024-12-31 FAILED" in (
        message["text"]["content"]
    )


BAD_SETTINGS = [
    ("refresh", {"RISK_AS_OF": "2025-13-01"}, "RISK_AS_OF='2025-13-01'"),
    ("refresh", {"RISK_WAREHOUSE": "{env}/missing/w.duckdb"}, "RISK_WAREHOUSE="),
    ("refresh", {"RISK_WAREHOUSE": "{env}/a_file/w.duckdb"}, "RISK_WAREHOUSE="),
    ("refresh", {"RISK_LANDING_DIR": "{env}/nowhere"}, "RISK_LANDING_DIR="),
    ("refresh", {"RISK_LANDING_DIR": "{env}/empty"}, "RISK_LANDING_DIR="),
    ("refresh", {"RISK_LANDING_DIR": "{env}/a_file"}, "RISK_LANDING_DIR="),
    ("backtest", {"RISK_AS_OF": "2025-13-01"}, "RISK_AS_OF='2025-13-01'"),
    ("backtest", {"RISK_WAREHOUSE": "{env}/missing/w.duckdb"}, "RISK_WAREHOUSE="),
    ("backtest", {"RISK_LANDING_DIR": "{env}/a_file"}, "RISK_LANDING_DIR="),
]


@pytest.mark.parametrize(("command", "bad", "named"), BAD_SETTINGS)
def test_a_bad_setting_is_one_line_and_exit_2(
    env: Path, monkeypatch: pytest.MonkeyPatch, capsys, command: str, bad: dict, named: str
) -> None:
    (env / "empty").mkdir()
    (env / "a_file").write_text("not a folder")
    monkeypatch.setenv("RISK_LANDING_DIR", str(CONTRACT_EXAMPLES / "landing"))
    monkeypatch.setenv("RISK_WAREHOUSE", str(env / "w.duckdb"))
    monkeypatch.setenv("RISK_AS_OF", "2024-12-31")
    for var, value in bad.items():
        monkeypatch.setenv(var, value.format(env=env))
    assert cli.main([command]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"risk {command}: {named}"), captured.err
    value = next(iter(bad.values())).format(env=env)
    assert value in lines[0] and "Traceback" not in captured.err + captured.out


def test_a_bad_setting_from_the_shell_has_no_traceback(env: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "orchestration.cli", "refresh"], cwd=ROOT, capture_output=True,
        text=True, check=False,
        env={"PATH": "/usr/bin:/bin", "DAGSTER_HOME": str(env / "dh"), "RISK_AS_OF": "2025-13-01",
             **({"PYTHONPATH": str(ROOT)} if "PYTHONPATH" in os.environ else {})},
    )
    assert out.returncode == 2
    assert out.stderr.strip() == "risk refresh: RISK_AS_OF='2025-13-01': not a date (YYYY-MM-DD)"


HOLD = """
import sys, time; sys.path.insert(0, {root!r})
from pathlib import Path
from assets.core import publish
publish.acquire(Path({path!r}), what="risk refresh")
print("locked", flush=True)
time.sleep(600)
"""


def test_a_second_refresh_refuses_naming_the_first(
    env: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    warehouse = env / "w.duckdb"
    monkeypatch.setenv("RISK_LANDING_DIR", str(CONTRACT_EXAMPLES / "landing"))
    monkeypatch.setenv("RISK_WAREHOUSE", str(warehouse))
    monkeypatch.setenv("RISK_AS_OF", "2024-12-31")
    monkeypatch.setenv("RISK_LOCK_WAIT_SECONDS", "0.3")
    first = subprocess.Popen(
        [sys.executable, "-c", HOLD.format(root=str(ROOT), path=str(warehouse))],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert first.stdout.readline().strip() == "locked"
        assert cli.main(["refresh"]) == 1
    finally:
        first.kill()
        first.wait()
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert f"is being refreshed by pid {first.pid}" in err and "(risk refresh)" in err


def test_dagster_home_queues_one_warehouse_run_at_a_time(
    env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dagster import DagsterInstance

    home = env / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")  # an older file
    settings.ensure_dagster_home()
    settings.ensure_dagster_home()  # idempotent
    assert (home / "dagster.yaml").read_text().count("concurrency:") == 1
    with DagsterInstance.get() as instance:
        limits = instance.get_concurrency_config().run_queue_config.tag_concurrency_limits
    assert {"key": settings.WAREHOUSE_RUN_TAG, "limit": 1} in limits
    assert any(lim["key"] == "dagster/code_location" and lim["limit"] == 1 for lim in limits)
