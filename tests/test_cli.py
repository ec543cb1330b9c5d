"""The `risk` command end to end: what the nightly schedule and an operator run headless."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import sys
import threading
from contextlib import redirect_stdout
from dataclasses import dataclass
from datetime import date, datetime
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from zoneinfo import ZoneInfo

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


@dataclass(frozen=True)
class FirstNight:
    """The contract examples after one `risk refresh` as of 2024-12-31 (in this process, as
    the schedule's job runs), with what the run printed and recorded right after it."""

    root: Path
    env: dict[str, str]  # RISK_*, DAGSTER_HOME: set them to run `risk` on this night again
    printed: str
    job_names: list[str]  # the runs in DAGSTER_HOME after the refresh
    decision_dbt_log: str  # the dbt log of the run's last dbt step


@pytest.fixture(scope="module")
def first_night(tmp_path_factory: pytest.TempPathFactory) -> FirstNight:
    """One refresh for the module's tests: building the marts is what costs (about a minute)."""
    from dagster import DagsterInstance

    from assets.core.dbt_project import dbt_project

    root = tmp_path_factory.mktemp("first_night")
    shutil.copytree(CONTRACT_EXAMPLES / "landing", root / "landing")
    env = {
        "DAGSTER_HOME": str(root / "dagster_home"), "RISK_EXPORTS_DIR": str(root / "exports"),
        "RISK_LANDING_DIR": str(root / "landing"), "RISK_WAREHOUSE": str(root / "w.duckdb"),
        "RISK_AS_OF": "2024-12-31",
    }
    printed = io.StringIO()
    with pytest.MonkeyPatch.context() as mp:
        for name, value in env.items():
            mp.setenv(name, value)
        with redirect_stdout(printed):
            assert cli.main(["refresh"]) == 0
        with DagsterInstance.get() as instance:  # recorded where `make ui` looks
            job_names = [r.job_name for r in instance.get_runs()]
    run_id = re.search(r"\(run ([0-9a-f-]{36})\)", printed.getvalue()).group(1)
    target = Path(dbt_project.project_dir) / "target"
    decision_log = next(target.glob(f"decision_dbt_models-{run_id[:7]}-*/dbt.log"))
    return FirstNight(root, env, printed.getvalue(), job_names, decision_log.read_text())


def test_refresh_builds_every_mart_and_records_the_run(first_night: FirstNight) -> None:
    warehouse = Path(first_night.env["RISK_WAREHOUSE"])
    printed = first_night.printed
    assert "risk refresh succeeded" in printed and str(warehouse) in printed
    # what a person needs: the watchlist in numbers, where the report is, how to look further
    assert "watchlist as of 2024-12-31:" in printed and "report.html" in printed
    assert "--verbose" in printed and "\n step " not in printed  # timings only with --verbose
    with duckdb.connect(str(warehouse), read_only=True) as con:
        marts = {
            r[0]
            for r in con.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'marts'"
            ).fetchall()
        }
        assert marts >= {
            "fct_loan_month_end",
            "enterprise_risk_profile",
            "watchlist",
            "watchlist_history",
            "application_screening",
            "portfolio_monthly",
        }
        built = con.execute(
            "SELECT count(*) FROM marts.fct_loan_month_end WHERE month_end = '2024-12-31'"
        ).fetchone()[0]
    expected = CONTRACT_EXAMPLES / "expected_fct_loan_month_end_as_of_2024-12-31.csv"
    assert built == sum(",2024-12-31," in line for line in expected.read_text().splitlines())
    exports = Path(first_night.env["RISK_EXPORTS_DIR"])
    assert (exports / "2024-12-31" / "watchlist.csv").exists()
    # Built aside, published in one piece: the published file says which refresh it holds and
    # carries no personal data; the build file beside it keeps everything for the next night.
    assert warehouse.with_name("w.build.duckdb").exists()
    with duckdb.connect(str(warehouse), read_only=True) as con:
        assert con.execute("SELECT as_of_date FROM main.published_refresh").fetchone()[0] \
            .isoformat() == "2024-12-31"
        assert not con.execute(
            "SELECT list(column_name) FROM duckdb_columns() WHERE column_name IN "
            "('legal_rep_name', 'legal_rep_id_number')"
        ).fetchone()[0]
    assert first_night.job_names == ["nightly_refresh"]
    # The run's last dbt step started from the earlier steps' parse state (same vars).
    assert "Partial parsing enabled" in first_night.decision_dbt_log


def test_a_second_refresh_with_nothing_new_skips_and_the_schedule_skips_too(
    first_night: FirstNight, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """A night with nothing new: the schedule and `risk refresh` share one decision
    (assets/refresh_plan.py) and skip the rebuild; anything that would change the published
    warehouse makes them rebuild."""
    from dagster import DagsterInstance, SkipReason, build_schedule_context

    from assets.refresh_plan import decide_refresh, refresh_facts
    from orchestration.schedules import nightly_refresh_schedule

    for name, value in first_night.env.items():
        monkeypatch.setenv(name, value)
    warehouse = Path(first_night.env["RISK_WAREHOUSE"])
    landing = Path(first_night.env["RISK_LANDING_DIR"])
    day = date(2024, 12, 31)
    published_at = warehouse.stat().st_mtime_ns

    assert cli.main(["refresh"]) == 0
    printed = capsys.readouterr().out.strip().splitlines()
    assert len(printed) == 1 and "nothing to do" in printed[0]
    assert warehouse.stat().st_mtime_ns == published_at  # not republished
    with DagsterInstance.get() as instance:
        assert len(instance.get_runs()) == len(first_night.job_names)  # no second run
        night = datetime(2024, 12, 31, 2, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
        tick = nightly_refresh_schedule(build_schedule_context(
            instance=instance, scheduled_execution_time=night))
    assert isinstance(tick, SkipReason) and "nothing to do" in tick.skip_message

    # The next day, a re-delivered file, a refit written to the build file: rebuild.
    assert decide_refresh(warehouse, landing, date(2025, 1, 1)).rebuild
    assert decide_refresh(warehouse, landing, day, full=True).rebuild
    some_file = next(p for p in sorted((landing / "repayments").iterdir()) if p.is_file())
    stamp = some_file.stat()
    os.utime(some_file, ns=(stamp.st_atime_ns, stamp.st_mtime_ns + 10**9))
    plan = decide_refresh(warehouse, landing, day)
    assert plan.rebuild and plan.changed_files == (str(some_file.resolve()),)
    os.utime(some_file, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))
    assert not decide_refresh(warehouse, landing, day).rebuild
    build = warehouse.with_name("w.build.duckdb")
    with duckdb.connect(str(build)) as con:
        con.execute("CREATE TABLE main.refit_marker AS SELECT 1 AS x")
    try:
        assert refresh_facts(warehouse, landing, day).build_written_after_publish
        assert decide_refresh(warehouse, landing, day).rebuild
    finally:
        with duckdb.connect(str(build)) as con:
            con.execute("DROP TABLE main.refit_marker")


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
