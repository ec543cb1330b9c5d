"""The published warehouse (contract section 5): built aside, published in one rename, one
refresh at a time, and a refresh killed with -9 at any moment leaves it as it was.

The last test really starts `risk refresh` as a subprocess on a copy of the contract examples,
kills it (the whole process group, dbt included) when the run log shows a given step started,
and checks the published file and the last export folder are byte-identical to before; then
the next refresh completes with the same marts as an uninterrupted run, while a reader holds
the published file open the whole time.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from datetime import date
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
from conftest import CONTRACT_EXAMPLES

from assets.core import publish
from assets.publish_assets import DROP_COLUMNS, PII_COLUMNS, PUBLISHED_SCHEMAS

ROOT = Path(__file__).resolve().parents[1]
RISK = [sys.executable, "-m", "orchestration.cli"]  # this checkout, whatever is installed


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def make_build(path: Path, *, rows: int = 10, tag: str = "v1") -> None:
    """A small build file: raw with personal data, quarantine records, marts, a staging view."""
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE SCHEMA IF NOT EXISTS raw; CREATE SCHEMA IF NOT EXISTS marts; "
                    "CREATE SCHEMA IF NOT EXISTS staging")
        con.execute(
            "CREATE OR REPLACE TABLE raw.enterprises AS SELECT 'E' || range AS enterprise_id, "
            "'Rep ' || range AS legal_rep_name, '4403' || range AS legal_rep_id_number, "
            f"{rows} AS n FROM range({rows})"
        )
        con.execute(
            "CREATE OR REPLACE TABLE raw.rejected_rows AS SELECT 'enterprises' AS table_name, "
            "'{\"legal_rep_name\": \"Secret\"}'::JSON AS record, 'bad date' AS reason"
        )
        con.execute(
            f"CREATE OR REPLACE TABLE marts.watchlist AS SELECT 'E' || range AS enterprise_id, "
            f"'red' AS tier, 'new' AS status, ['overdue'] AS reasons, '{tag}' AS tag, "
            f"{{'a': 1}} AS s FROM range(3)"
        )
        con.execute("CREATE OR REPLACE VIEW staging.v AS SELECT * FROM raw.enterprises")


def do_publish(build: Path, published: Path) -> publish.Published:
    with publish.run_lock(published):
        return publish.publish(build, published, schemas=PUBLISHED_SCHEMAS,
                               drop_columns=DROP_COLUMNS, info={"run_id": "r1"})


def test_publish_copies_marts_and_raw_without_personal_data(tmp_path: Path) -> None:
    build, published = tmp_path / "w.build.duckdb", tmp_path / "w.duckdb"
    assert publish.build_path(published) == build
    make_build(build)
    result = do_publish(build, published)
    assert result.tables == {"marts.watchlist": 3, "raw.enterprises": 10, "raw.rejected_rows": 1}
    with duckdb.connect(str(published), read_only=True) as con:
        cols = {r[0] for r in con.execute(
            "SELECT column_name FROM duckdb_columns() WHERE schema_name = 'raw'").fetchall()}
        assert not cols & (PII_COLUMNS | {"record"}) and {"enterprise_id", "reason"} <= cols
        assert con.execute("SELECT list(schema_name ORDER BY schema_name) FROM "
                           "(SELECT DISTINCT schema_name FROM duckdb_tables())").fetchone()[0] \
            == ["main", "marts", "raw"]  # no staging
        assert con.execute("SELECT reasons, s FROM marts.watchlist LIMIT 1").fetchone() == (
            ["overdue"], {"a": 1})
        assert con.execute("SELECT run_id FROM main.published_refresh").fetchone()[0] == "r1"
    assert publish.is_published_copy(published) and not publish.is_published_copy(build)
    assert [p.name for p in tmp_path.iterdir() if "publishing" in p.name] == []


def test_documentation_comments_travel_with_the_published_tables(tmp_path: Path) -> None:
    """dbt's persist_docs writes descriptions as DuckDB comments; analysts see them in the
    published file."""
    build, published = tmp_path / "w.build.duckdb", tmp_path / "w.duckdb"
    make_build(build)
    with duckdb.connect(str(build)) as con:
        con.execute("COMMENT ON TABLE marts.watchlist IS 'red and amber firms as of D'")
        con.execute("COMMENT ON COLUMN marts.watchlist.reasons IS 'plain-language reasons'")
    do_publish(build, published)
    with duckdb.connect(str(published), read_only=True) as con:
        assert con.execute(
            "SELECT comment FROM duckdb_tables() WHERE table_name = 'watchlist'"
        ).fetchone()[0] == "red and amber firms as of D"
        assert con.execute(
            "SELECT comment FROM duckdb_columns() WHERE table_name = 'watchlist' "
            "AND column_name = 'reasons'"
        ).fetchone()[0] == "plain-language reasons"


def test_a_reader_keeps_the_old_file_until_it_reconnects(tmp_path: Path) -> None:
    build, published = tmp_path / "w.build.duckdb", tmp_path / "w.duckdb"
    make_build(build, tag="v1")
    do_publish(build, published)
    reader = duckdb.connect(str(published), read_only=True)
    make_build(build, tag="v2")
    do_publish(build, published)  # the reader's open file never stops the publish
    assert reader.execute("SELECT DISTINCT tag FROM marts.watchlist").fetchone()[0] == "v1"
    reader.close()
    with duckdb.connect(str(published), read_only=True) as again:
        assert again.execute("SELECT DISTINCT tag FROM marts.watchlist").fetchone()[0] == "v2"


def test_publish_killed_midway_leaves_the_published_file_and_the_next_one_cleans_up(
    tmp_path: Path,
) -> None:
    build, published = tmp_path / "w.build.duckdb", tmp_path / "w.duckdb"
    make_build(build, tag="v1")
    do_publish(build, published)
    before = sha(published)
    with duckdb.connect(str(build)) as con:  # big enough to be caught mid-copy
        con.execute("CREATE OR REPLACE TABLE marts.big AS SELECT range AS i, md5(range::VARCHAR) "
                    "AS h FROM range(6000000)")
    code = textwrap.dedent(f"""
        import sys; sys.path.insert(0, {str(ROOT)!r})
        from pathlib import Path
        from assets.core import publish
        from assets.publish_assets import DROP_COLUMNS, PUBLISHED_SCHEMAS
        publish.publish(Path({str(build)!r}), Path({str(published)!r}),
                        schemas=PUBLISHED_SCHEMAS, drop_columns=DROP_COLUMNS)
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT)
    deadline = time.monotonic() + 60
    while not list(tmp_path.glob(".w.duckdb.*.publishing*")):
        assert proc.poll() is None and time.monotonic() < deadline, "publish never started"
        time.sleep(0.01)
    proc.kill()
    proc.wait()
    assert sha(published) == before
    assert list(tmp_path.glob(".w.duckdb.*.publishing*"))  # the stray temporary file
    do_publish(build, published)
    assert not list(tmp_path.glob(".w.duckdb.*.publishing*"))
    with duckdb.connect(str(published), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM marts.big").fetchone()[0] == 6_000_000


HOLD = """
import sys, time; sys.path.insert(0, {root!r})
from pathlib import Path
from assets.core import publish
publish.acquire(Path({path!r}), what="test holder")
print("locked", flush=True)
time.sleep(600)
"""


def test_run_lock_names_its_holder_and_a_kill_releases_it(tmp_path: Path) -> None:
    published = tmp_path / "w.duckdb"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD.format(root=str(ROOT), path=str(published))],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(publish.WarehouseBusy) as busy:
            publish.acquire(published, wait=0.3)
        message = str(busy.value)
        assert f"pid {holder.pid}" in message and "test holder" in message
        assert "\n" not in message
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    publish.acquire(published, wait=2)  # the kernel released the dead holder's lock
    publish.acquire(published)  # re-entrant within a process
    publish.release(published)
    publish.release(published)


def test_a_warehouse_built_in_place_seeds_the_build_file(tmp_path: Path) -> None:
    published = tmp_path / "w.duckdb"
    make_build(published)  # what a refresh before publishing left: everything in place
    assert publish.seed_build_file(published)
    build = publish.build_path(published)
    with duckdb.connect(str(build), read_only=True) as con:
        assert con.execute("SELECT count(legal_rep_name) FROM raw.enterprises").fetchone()[0]
    assert not publish.seed_build_file(published)  # once only
    build.unlink()
    do_publish(published, tmp_path / "other.duckdb")
    assert not publish.seed_build_file(tmp_path / "other.duckdb")  # never from a published copy


# ---------------------------------------------------------------------------------------------
# The published file opens in the PyPI DuckDB 1.5 line (the analysts' CLI and Python package)


@pytest.fixture(scope="module")
def duckdb15(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Python with `duckdb<2` from PyPI (reused from /tmp/duck15 when it is there)."""
    for python in (Path("/tmp/duck15/bin/python"),):
        if python.exists() and subprocess.run(
            [python, "-c", "import duckdb; assert duckdb.__version__ < '2'"],
            capture_output=True, check=False,
        ).returncode == 0:
            return python
    venv = tmp_path_factory.mktemp("duck15")
    try:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True,
                       capture_output=True, timeout=120)
        subprocess.run([venv / "bin" / "pip", "install", "-q", "duckdb<2"], check=True,
                       capture_output=True, timeout=300)
    except (subprocess.SubprocessError, OSError) as exc:
        pytest.skip(f"PyPI duckdb<2 cannot be installed here: {exc}")
    return venv / "bin" / "python"


def test_published_file_opens_in_duckdb_1_5(tmp_path: Path, duckdb15: Path) -> None:
    build, published = tmp_path / "w.build.duckdb", tmp_path / "w.duckdb"
    make_build(build)
    do_publish(build, published)
    out = subprocess.run(
        [duckdb15, "-c", "import duckdb, sys; c = duckdb.connect(sys.argv[1], read_only=True); "
         "print(duckdb.__version__, c.execute('SELECT count(*), any_value(reasons) FROM "
         "marts.watchlist').fetchone())", str(published)],
        capture_output=True, text=True, check=False,
    )
    assert out.returncode == 0, out.stderr
    version, rest = out.stdout.split(" ", 1)
    assert version.startswith("1.5") and rest.strip() == "(3, ['overdue'])"


def published_content(path: Path) -> dict:
    """Every published table's rows (sorted), columns and comments: what an analyst sees."""
    with duckdb.connect(str(path), read_only=True) as con:
        tables = con.execute(
            "SELECT schema_name, table_name, comment FROM duckdb_tables() "
            "WHERE NOT (schema_name = 'main' AND table_name = 'published_refresh') ORDER BY ALL"
        ).fetchall()
        return {
            f"{s}.{t}": (
                comment,
                con.execute("SELECT column_name, data_type, comment FROM duckdb_columns() "
                            "WHERE schema_name = ? AND table_name = ? ORDER BY column_index",
                            [s, t]).fetchall(),
                con.execute(f'SELECT * FROM "{s}"."{t}" ORDER BY ALL').fetchall(),
            )
            for s, t, comment in tables
        }


def test_a_normal_night_rewrites_only_what_changed(
    tmp_path: Path, duckdb15: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The second publish copies the published file and rewrites only changed tables, appends
    to tables that only grew, patches the changed rows of big tables (duplicates included,
    whatever the row order), drops tables gone from the build: the result is what a full
    publish writes, and it still opens in DuckDB 1.5."""
    monkeypatch.setattr(publish, "PATCH_MIN_ROWS", 1000)
    build, published = tmp_path / "w.build.duckdb", tmp_path / "w.duckdb"
    make_build(build)
    with duckdb.connect(str(build)) as con:
        con.execute("CREATE TABLE marts.big AS SELECT range % 700 AS k, 'v' AS v "
                    "FROM range(2000)")  # k 0-599 three times, 600-699 twice
        con.execute("CREATE TABLE raw.repayments AS SELECT range AS loan_id, "
                    "range * 1.5::DECIMAL(18, 2) AS amount FROM range(1000)")
        con.execute("CREATE TABLE marts.steady AS SELECT range AS i FROM range(50)")
        con.execute("CREATE TABLE marts.retired AS SELECT 1 AS i")
    first = do_publish(build, published)
    assert (first.mode, first.reason) == ("full", "no published file yet")
    assert publish.state_path(published).exists()

    make_build(build, tag="v2")  # raw.enterprises rebuilt with the same rows; watchlist changed
    with duckdb.connect(str(build)) as con:
        con.execute("INSERT INTO raw.repayments SELECT range, 7 FROM range(1000, 1005)")
        con.execute("DROP TABLE marts.retired")
        con.execute("CREATE TABLE marts.fresh AS SELECT 'x' AS v")
        con.execute("COMMENT ON COLUMN marts.steady.i IS 'now documented'")
        # rebuilt in another order: k 0-9 change value, one copy of k 10-14 goes, k 700 comes
        con.execute("CREATE OR REPLACE TABLE marts.big AS SELECT * FROM ("
                    "SELECT k, CASE WHEN k < 10 THEN 'w' ELSE v END AS v FROM marts.big "
                    "QUALIFY k NOT BETWEEN 10 AND 14 OR row_number() OVER (PARTITION BY k) > 1 "
                    "UNION ALL SELECT 700, 'v') ORDER BY random()")
    night = do_publish(build, published)
    assert night.mode == "incremental", night.reason
    # k 0-9: 30 rows out, 30 in; k 10-14: 15 out, 10 in; k 700: 1 in
    assert dict(night.patched) == {"marts.big": 86}
    assert set(night.rewritten) == {"marts.watchlist", "marts.fresh", "marts.steady"}
    assert dict(night.appended) == {"raw.repayments": 5}
    assert night.kept == 2  # raw.enterprises, raw.rejected_rows
    assert night.tables["marts.big"] == 1996
    assert night.tables["raw.repayments"] == 1005 and "marts.retired" not in night.tables

    full = tmp_path / "full.duckdb"
    with publish.run_lock(full):
        publish.publish(build, full, schemas=PUBLISHED_SCHEMAS, drop_columns=DROP_COLUMNS,
                        info={"run_id": "r1"}, incremental=False)
    assert published_content(published) == published_content(full)
    out = subprocess.run(
        [duckdb15, "-c", "import duckdb, sys; c = duckdb.connect(sys.argv[1], read_only=True); "
         "print(c.execute('SELECT count(*), sum(amount) FROM raw.repayments').fetchone())",
         str(published)],
        capture_output=True, text=True, check=False,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "(1005, Decimal('749285.00'))"

    again = do_publish(build, published)  # nothing changed: every table kept
    assert (again.mode, again.rewritten, dict(again.appended)) == ("incremental", (), {})

    with duckdb.connect(str(build)) as con:  # most of a big table changed: written anew
        con.execute("UPDATE marts.big SET v = 'z' WHERE k % 2 = 0")
    churn = do_publish(build, published)
    assert (churn.rewritten, dict(churn.patched)) == (("marts.big",), {})
    with publish.run_lock(full):
        publish.publish(build, full, schemas=PUBLISHED_SCHEMAS, drop_columns=DROP_COLUMNS,
                        info={"run_id": "r1"}, incremental=False)
    assert published_content(published) == published_content(full)


def test_a_publish_limited_to_some_tables_never_carries_a_refresh_that_did_not_publish(
    tmp_path: Path,
) -> None:
    """`only` (the back-test's tables) publishes them at once when they are all that changed,
    keeping the published refresh's row; a build file that also holds other changes (a
    refresh whose blocking checks failed) is not published."""
    build, published = tmp_path / "w.build.duckdb", tmp_path / "w.duckdb"
    make_build(build)
    do_publish(build, published)
    backtest = {"marts.backtest_runs"}
    with duckdb.connect(str(build)) as con:
        con.execute("CREATE TABLE marts.backtest_runs AS SELECT 0.81 AS auc_6m")
    with publish.run_lock(published):
        result = publish.publish(build, published, schemas=PUBLISHED_SCHEMAS,
                                 drop_columns=DROP_COLUMNS, only=backtest)
    assert (result.mode, result.rewritten) == ("incremental", ("marts.backtest_runs",))
    with duckdb.connect(str(published), read_only=True) as con:
        assert con.execute("SELECT auc_6m FROM marts.backtest_runs").fetchone()[0] == \
            Decimal("0.81")
        assert con.execute("SELECT run_id FROM main.published_refresh").fetchone()[0] == "r1"

    make_build(build, tag="failed refresh")  # a refresh that stopped at a blocking check
    with duckdb.connect(str(build)) as con:
        con.execute("CREATE OR REPLACE TABLE marts.backtest_runs AS SELECT 0.9 AS auc_6m")
    before = sha(published)
    with publish.run_lock(published), pytest.raises(publish.NotPublished) as refused:
        publish.publish(build, published, schemas=PUBLISHED_SCHEMAS,
                        drop_columns=DROP_COLUMNS, only=backtest)
    assert "marts.watchlist" in str(refused.value) and "backtest" not in str(refused.value)
    assert sha(published) == before and not list(tmp_path.glob(".w.duckdb.*.publishing*"))

    publish.state_path(published).unlink()  # no record: cannot tell what changed
    with publish.run_lock(published), pytest.raises(publish.NotPublished, match="no record"):
        publish.publish(build, published, schemas=PUBLISHED_SCHEMAS,
                        drop_columns=DROP_COLUMNS, only=backtest)
    assert sha(published) == before


WRITER = """
import duckdb, sys, time
con = duckdb.connect(sys.argv[1])
con.execute("DELETE FROM marts.watchlist WHERE enterprise_id = 'E0'")
con.execute("CHECKPOINT")
print("written", flush=True)
time.sleep(600)
"""


def test_a_published_file_someone_wrote_to_is_published_in_full(tmp_path: Path) -> None:
    """An analyst who opens the published file read-write and changes it neither blocks the
    next publish (the copy never asks DuckDB for a lock) nor survives it."""
    build, published = tmp_path / "w.build.duckdb", tmp_path / "w.duckdb"
    make_build(build)
    do_publish(build, published)
    expected = published_content(published)
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(published)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout.readline().strip() == "written"
        result = do_publish(build, published)
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.wait()
    assert result.mode == "full"
    assert result.reason == "the published file was changed since it was published"
    assert published_content(published) == expected
    assert do_publish(build, published).mode == "incremental"


# ---------------------------------------------------------------------------------------------
# kill -9 at every stage of a real `risk refresh`


def _env(folder: Path, as_of: str) -> dict[str, str]:
    return {
        **os.environ,
        "RISK_LANDING_DIR": str(folder.parent / "landing"),  # shared: same source paths
        "RISK_WAREHOUSE": str(folder / "wh.duckdb"),
        "RISK_AS_OF": as_of,
        "RISK_EXPORTS_DIR": str(folder / "exports"),
        "DAGSTER_HOME": str(folder / "dagster_home"),
        "RISK_LOCK_WAIT_SECONDS": "30",
        # One key for both folders (by default each DAGSTER_HOME has its own): same pseudonyms.
        "RISK_PSEUDONYM_KEY": "test-key-for-the-kill-test",
    }


def _refresh(folder: Path, as_of: str) -> str:
    out = subprocess.run([*RISK, "refresh"], env=_env(folder, as_of), cwd=ROOT,
                         capture_output=True, text=True, check=False, timeout=900)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return out.stdout


def _step_started(home: Path, run_ids_before: set[str], step: str) -> bool:
    """Whether the new run recorded in DAGSTER_HOME `home` has started `step` (the event log
    is read as the UI reads it; the console shows no step starts at INFO)."""
    from dagster import DagsterEventType, DagsterInstance
    from dagster._core.instance.ref import InstanceRef

    if not (home / "dagster.yaml").exists():
        return False
    with DagsterInstance.from_ref(InstanceRef.from_dir(str(home))) as instance:
        runs = [r for r in instance.get_runs(limit=3) if r.run_id not in run_ids_before]
        return any(
            entry.dagster_event.step_key == step
            for run in runs
            for entry in instance.all_logs(run.run_id, of_type=DagsterEventType.STEP_START)
        )


def _run_ids(home: Path) -> set[str]:
    from dagster import DagsterInstance
    from dagster._core.instance.ref import InstanceRef

    with DagsterInstance.from_ref(InstanceRef.from_dir(str(home))) as instance:
        return {r.run_id for r in instance.get_runs()}


def _refresh_killed_at(folder: Path, as_of: str, step: str, delay: float) -> str:
    """Start `risk refresh`, kill -9 its whole process group `delay` s after `step` started."""
    home = folder / "dagster_home"
    before = _run_ids(home)
    log = (folder / f"killed_{step}.log").open("w+")
    proc = subprocess.Popen([*RISK, "refresh"], env=_env(folder, as_of), cwd=ROOT, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 600
    try:
        while not _step_started(home, before, step):
            assert proc.poll() is None, f"refresh ended before {step} started"
            assert time.monotonic() < deadline
            time.sleep(0.1)
        time.sleep(delay)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()
    return Path(log.name).read_text(errors="replace")


def _exports_digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): sha(p) for p in sorted(folder.rglob("*")) if p.is_file()}


def _marts(published: Path) -> dict[str, list]:
    """Every published table except the run's bookkeeping, without timestamps and run ids."""
    out = {}
    with duckdb.connect(str(published), read_only=True) as con:
        tables = con.execute(
            "SELECT schema_name, table_name FROM duckdb_tables() WHERE schema_name <> 'main' "
            "AND table_name NOT IN ('alert_log', 'load_manifest') ORDER BY ALL").fetchall()
        for schema, table in tables:
            cols = [c for c, t in con.execute(
                "SELECT column_name, data_type FROM duckdb_columns() WHERE schema_name = ? AND "
                "table_name = ? ORDER BY column_index", [schema, table]).fetchall()
                if "TIMESTAMP" not in t and c not in ("run_id", "model_version", "_file_mtime")]
            sel = ", ".join(f'"{c}"' for c in cols)
            out[f"{schema}.{table}"] = con.execute(
                f'SELECT {sel} FROM "{schema}"."{table}" ORDER BY ALL').fetchall()
    return out


READER = """
import duckdb, sys, time
path, stop = sys.argv[1], sys.argv[2]
import os
con = duckdb.connect(path, read_only=True)
first = con.execute("SELECT as_of_date FROM main.published_refresh").fetchone()[0]
n = 0
while not os.path.exists(stop):
    assert con.execute("SELECT as_of_date FROM main.published_refresh").fetchone()[0] == first
    con.execute("SELECT count(*) FROM marts.fct_loan_month_end").fetchone()
    n += 1
    time.sleep(0.05)
con.close()
con = duckdb.connect(path, read_only=True)
print(first, con.execute("SELECT as_of_date FROM main.published_refresh").fetchone()[0], n)
"""

KILL_POINTS = [
    ("raw__loans", 0.0),  # ingestion
    ("risk_dbt_models", 8.0),  # dbt mid-build
    ("signal_hits_and_risk_profile", 0.0),  # early warning (both marts, one step)
    ("decision_dbt_models", 4.0),  # the watchlist and its history
    ("exports__watchlist_report", 0.3),  # exports
    ("exports__published_warehouse", 0.0),  # publish
]


@pytest.mark.slow  # ~15 minutes: six real refreshes killed with -9 (`make test-all`)
def test_refresh_killed_at_any_step_leaves_the_published_warehouse_and_then_completes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = "2024-11-30", "2024-12-31"
    killed, clean = tmp_path / "killed", tmp_path / "clean"
    killed.mkdir()
    shutil.copytree(CONTRACT_EXAMPLES / "landing", tmp_path / "landing")
    _refresh(killed, first)
    shutil.copytree(killed, clean, ignore=shutil.ignore_patterns("dagster_home", "*.lock"))

    # Uninterrupted second night, while a reader holds the published file open read-only.
    stop = clean / "stop"
    reader = subprocess.Popen([sys.executable, "-c", READER, str(clean / "wh.duckdb"), str(stop)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(1.0)
        _refresh(clean, second)
        stop.touch()
        out, err = reader.communicate(timeout=60)
    finally:
        reader.kill()
    assert reader.returncode == 0, err
    seen_before, seen_after, queries = out.split()
    assert (seen_before, seen_after) == (first, second) and int(queries) > 10

    published = killed / "wh.duckdb"
    before = sha(published)
    exports_before = _exports_digest(killed / "exports" / first)
    for step, delay in KILL_POINTS:
        log = _refresh_killed_at(killed, second, step, delay)
        assert "risk refresh succeeded" not in log, step
        assert _exports_digest(killed / "exports" / first) == exports_before, step
        print(f"killed at {step} +{delay}s: published file unchanged: "
              f"{sha(published) == before}")
        if sha(published) != before:
            # Only the publish step may change it, and then only to the complete new refresh
            # (the kill came after the rename: the copy of this small warehouse takes ~0.2 s).
            assert step == "exports__published_warehouse", f"a kill at {step} changed it"
            assert _marts(published) == _marts(clean / "wh.duckdb")

    log = _refresh(killed, second)
    assert "marked failed" in log  # the last killed run, left STARTED, is failed now
    assert sha(published) != before
    assert _marts(published) == _marts(clean / "wh.duckdb")
    with duckdb.connect(str(published), read_only=True) as con:
        assert con.execute("SELECT as_of_date FROM main.published_refresh").fetchone()[0] == \
            date.fromisoformat(second)

    monkeypatch.setenv("DAGSTER_HOME", str(killed / "dagster_home"))
    from dagster import DagsterInstance, DagsterRunStatus, RunsFilter

    with DagsterInstance.get() as instance:
        statuses = [r.status for r in instance.get_runs(
            filters=RunsFilter(job_name="nightly_refresh"))]
    assert DagsterRunStatus.STARTED not in statuses  # killed runs were marked failed
    assert statuses.count(DagsterRunStatus.FAILURE) == len(KILL_POINTS)


# ---------------------------------------------------------------------------------------------
# The publish step as Dagster runs it


def _materialize_publish(tmp_path: Path, landing: Path):
    from dagster import DagsterInstance, materialize

    from assets.core.resources import RiskWarehouse
    from assets.publish_assets import published_warehouse

    wh = RiskWarehouse(warehouse=str(tmp_path / "w.duckdb"), landing_dir=str(landing),
                       as_of="2024-12-31", build_aside=True)
    with DagsterInstance.ephemeral() as instance:
        return materialize([published_warehouse], resources={"warehouse": wh},
                           instance=instance, raise_on_error=False)


def test_the_publish_step_publishes_the_build_file_and_alerts_red_firms(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    got: list[bytes] = []

    class Bot(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            got.append(self.rfile.read(int(self.headers["Content-Length"])))
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b'{"errcode": 0}')

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Bot)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("RISK_ALERT_WEBHOOK", f"http://127.0.0.1:{server.server_port}/")
    make_build(tmp_path / "w.build.duckdb")
    try:
        result = _materialize_publish(tmp_path, tmp_path)
    finally:
        server.shutdown()
    assert result.success
    with duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True) as con:
        assert con.execute("SELECT kind, as_of_date FROM marts.alert_log").fetchall() == [
            ("red_firms", date(2024, 12, 31))]
        assert con.execute("SELECT count(*) FROM marts.watchlist").fetchone()[0] == 3
    assert len(got) == 1 and "3 red firm(s) as of 2024-12-31: 3 new" in got[0].decode()


def test_the_publish_step_refuses_an_empty_landing_root(tmp_path: Path) -> None:
    make_build(tmp_path / "w.build.duckdb")
    (tmp_path / "landing").mkdir()
    result = _materialize_publish(tmp_path, tmp_path / "landing")
    assert not result.success and not (tmp_path / "w.duckdb").exists()
    failure = next(e for e in result.all_events if e.is_step_failure)
    assert f"landing root {tmp_path / 'landing'} is empty" in str(
        failure.step_failure_data.error.cause.message)


def test_publishing_waits_for_every_other_asset_of_the_nightly_job() -> None:
    """A new asset module added to the Definitions must also be added to UPSTREAM in
    assets/publish_assets.py, or the warehouse could be published before it ran."""
    from assets.publish_assets import PUBLISH_KEY
    from orchestration.definitions import defs

    graph = defs.resolve_asset_graph()
    nightly = set(defs.resolve_job_def("nightly_refresh").asset_layer.asset_graph
                  .get_all_asset_keys()) & set(graph.get_all_asset_keys())
    assert nightly - {PUBLISH_KEY} <= set(graph.get(PUBLISH_KEY).parent_keys)


# ---------------------------------------------------------------------------------------------
# Compacting the build file


def test_compact_rewrites_a_grown_build_file_and_keeps_everything(tmp_path: Path) -> None:
    build = tmp_path / "w.build.duckdb"
    with duckdb.connect(str(build)) as con:
        con.execute("CREATE SCHEMA marts")
        con.execute("CREATE TABLE marts.big AS SELECT range AS i, md5(random()::VARCHAR) AS s "
                    "FROM range(1000000)")
        con.execute("CREATE TABLE marts.kept (id INTEGER PRIMARY KEY, amount DECIMAL(18, 2))")
        con.execute("INSERT INTO marts.kept VALUES (1, 10.50), (2, 20.25)")
        con.execute("CHECKPOINT")
        con.execute("DROP TABLE marts.big")  # the file keeps its size: free blocks
        con.execute("COMMENT ON TABLE marts.kept IS 'kept rows'")
        con.execute("COMMENT ON COLUMN marts.kept.amount IS 'money'")
        con.execute("CREATE SCHEMA staging")
        con.execute("CREATE VIEW staging.v AS SELECT id * 2 AS id2 FROM marts.kept")
        con.execute("CHECKPOINT")
    grown = build.stat().st_size
    (tmp_path / f".{build.name}.123.compacting").write_bytes(b"stray")  # a killed compaction

    untouched = publish.compact(build, ratio=1000.0, min_bytes=0)
    assert not untouched.compacted and build.stat().st_size == grown

    done = publish.compact(build, ratio=2.0, min_bytes=0)
    assert done.compacted and done.bytes_before == grown
    assert build.stat().st_size < grown / 4
    assert sorted(p.name for p in tmp_path.iterdir()) == [build.name]  # no strays, no WAL
    with duckdb.connect(str(build), read_only=True) as con:
        assert con.execute("SELECT * FROM marts.kept ORDER BY id").fetchall() == [
            (1, Decimal("10.50")), (2, Decimal("20.25"))]
        assert con.execute("SELECT list(id2 ORDER BY id2) FROM staging.v").fetchone()[0] == [2, 4]
        assert con.execute("SELECT comment FROM duckdb_tables() WHERE table_name = 'kept'"
                           ).fetchone()[0] == "kept rows"
        assert con.execute("SELECT comment FROM duckdb_columns() WHERE table_name = 'kept' "
                           "AND column_name = 'amount'").fetchone()[0] == "money"
        assert con.execute("SELECT count(*) FROM duckdb_constraints() WHERE "
                           "table_name = 'kept' AND constraint_type = 'PRIMARY KEY'"
                           ).fetchone()[0] == 1
    again = publish.compact(build, ratio=2.0, min_bytes=0)  # now mostly live: left alone
    assert not again.compacted
