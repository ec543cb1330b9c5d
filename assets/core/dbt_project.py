"""The dbt project and how to reach dbt: one place for the project, the executable and the
manifest that the asset graph is read from.

Importing this never runs dbt. `dagster dev` prepares the project itself (`prepare_if_dev`);
`risk`, `make` and the tests call `prepare_dbt_project()`, which runs `dbt parse` only when the
manifest is missing or older than a file of the project.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import io
import json
import os
import shutil
import subprocess
import sys
import time
import traceback
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import date
from functools import cached_property
from pathlib import Path

import duckdb
from dagster_dbt import DbtCliResource, DbtProject
from packaging.version import Version

from assets.core import settings
from assets.core.metadata import table_exists
from assets.core.sql import RUN_CONTEXT, date_literal

#: The enterprises whose every month end the incremental facts recompute tonight.
RECOMPUTE_ENTERPRISES = "main.dbt_recompute_enterprises"
#: ... and those whose every month end the network PD facts recompute (their neighbours too).
RECOMPUTE_NETWORK_ENTERPRISES = "main.dbt_recompute_network_enterprises"
#: The loans whose landing rows (loan, schedule, repayments) changed since the publish: their
#: installments are settled again tonight (int_loan_installments__settled).
RECOMPUTE_LOANS = "main.dbt_recompute_loans"
#: The champion PD scorecard's scoring SQL that the network PD facts score other firms with
#: (macro pd_champion_sql): a table, not a dbt var, so a new champion keeps the partial parse.
PD_CHAMPION = "main.dbt_pd_champion"
PARTIAL_PARSE_FILE = "partial_parse.msgpack"

dbt_project = DbtProject(
    project_dir=settings.DBT_PROJECT_DIR, profiles_dir=settings.DBT_PROJECT_DIR
)
dbt_project.prepare_if_dev()


def manifest_is_stale(project: DbtProject = dbt_project) -> bool:
    """No manifest yet (fresh clone, CI), or a dbt file changed since it was written."""
    manifest = project.manifest_path
    if not manifest.exists():
        return True
    built = manifest.stat().st_mtime
    project_dir = Path(project.project_dir)
    sources = [project_dir / "dbt_project.yml", project_dir / "profiles.yml"]
    for folder in ("models", "macros", "tests"):
        sources += [p for p in (project_dir / folder).rglob("*") if p.is_file()]
    return any(p.stat().st_mtime > built for p in sources if p.exists())


def prepare_dbt_project() -> Path:
    """`dbt parse` if the manifest is stale (dagster-dbt's own preparer parses every time and
    calls a bare `dbt`, which is not on PATH under `risk`); returns the manifest path."""
    if manifest_is_stale():
        DbtCliResource(project_dir=dbt_project, dbt_executable=dbt_executable()).cli(
            ["parse", "--quiet"], target_path=dbt_project.target_path
        ).wait()
    return dbt_project.manifest_path


def dbt_executable() -> str:
    """dbt of this environment: dagster-dbt does not install dbt-core itself, and code servers
    started by `dagster dev` may run with a resolved interpreter path and a bare PATH."""
    for candidate in (
        Path(sys.executable).parent / "dbt",
        Path(sys.prefix) / "bin" / "dbt",
        settings.PROJECT_ROOT / ".venv" / "bin" / "dbt",
    ):
        if candidate.exists():
            return str(candidate)
    return shutil.which("dbt") or "dbt"


class RiskDbtCliResource(DbtCliResource):
    """dagster-dbt's resource without two costs of every dbt step that this project never uses:
    - the dbt version comes from this environment's dbt-core package instead of `dbt --version`
      in a subprocess (about 5 s of every run's first dbt step on this machine);
    - no dbt adapter is built inside the Dagster process. dagster-dbt builds one per `cli()`
      call (loading the project's macros, about 2.3 s a step at 100k) only for its
      `fetch_row_counts()` and `fetch_column_metadata()`, which this project does not call:
      row counts are read after the build (`dbt_assets._with_row_counts`), because a second
      DuckDB connection during the build collides with dbt's single writer."""

    @cached_property
    def _cli_version(self) -> Version:
        try:
            return Version(importlib.metadata.version("dbt-core"))
        except importlib.metadata.PackageNotFoundError:  # dbt from elsewhere: ask it
            return DbtCliResource._cli_version.func(self)

    def _initialize_dbt_core_adapter(self, args: Sequence[str]) -> None:  # type: ignore[override]
        return None


def dbt_resource() -> DbtCliResource:
    """The dbt CLI resource on this project with this environment's dbt."""
    return RiskDbtCliResource(
        project_dir=dbt_project,
        profiles_dir=str(settings.DBT_PROJECT_DIR),
        dbt_executable=dbt_executable(),
    )


def write_run_context(
    warehouse: Path,
    as_of: date,
    recompute_from: date | None = None,
    recompute_enterprises: Iterable[str] = (),
    network_from: date | None = None,
    network_enterprises: Iterable[str] = (),
    *,
    previous_as_of: date | None = None,
    recompute_loans: Iterable[str] = (),
) -> None:
    """Write the as-of date dbt builds for into the warehouse, before dbt opens it, and what
    the incremental month-end facts recompute (macro recompute_condition): the month ends from
    `recompute_from` on (None: all, date.max: none) and every month end of
    `recompute_enterprises`; the network PD facts the same with `network_from` and
    `network_enterprises`; the loans whose installments are settled again, `recompute_loans`
    and those that D's move from `previous_as_of` (the as-of date the build's tables were
    built for; None: every loan) reaches (refresh_plan.Recompute)."""
    warehouse.parent.mkdir(parents=True, exist_ok=True)
    recompute = "NULL" if recompute_from is None else date_literal(recompute_from)
    network = "NULL" if network_from is None else date_literal(network_from)
    previous = "NULL" if previous_as_of is None else date_literal(previous_as_of)
    with duckdb.connect(str(warehouse)) as con:
        con.execute(
            f"CREATE OR REPLACE TABLE {RUN_CONTEXT} AS SELECT {date_literal(as_of)} AS as_of_date,"
            f" CAST({recompute} AS DATE) AS recompute_from,"
            f" CAST({network} AS DATE) AS network_recompute_from,"
            f" CAST({previous} AS DATE) AS previous_as_of"
        )
        con.execute(f"CREATE OR REPLACE TABLE {RECOMPUTE_LOANS} AS "
                    "SELECT CAST(unnest($1) AS VARCHAR) AS loan_id", [sorted(recompute_loans)])
        for table, ids in ((RECOMPUTE_ENTERPRISES, recompute_enterprises),
                           (RECOMPUTE_NETWORK_ENTERPRISES, network_enterprises)):
            con.execute(f"CREATE OR REPLACE TABLE {table} AS "
                        "SELECT CAST(unnest($1) AS VARCHAR) AS enterprise_id", [sorted(ids)])


def write_pd_champion(con: duckdb.DuckDBPyConnection, score_sql: str) -> None:
    """Store the scoring SQL of the champion in use ('' with none) for the network PD facts
    (fct_enterprise_month_end_network_pd reads it through the macro pd_champion_sql when it
    runs). Through the warehouse, like the as-of date, so dbt's parse inputs stay the same
    when a monthly refit promotes a new champion."""
    con.execute(f"CREATE OR REPLACE TABLE {PD_CHAMPION} AS "
                "SELECT CAST($1 AS VARCHAR) AS score_sql", [score_sql])


def _run_context_row(con: duckdb.DuckDBPyConnection, *columns: str) -> tuple | None:
    """The run context's `columns` (main.dbt_run_context, `write_run_context`); None when the
    table, a column (an older build) or its row is missing."""
    if not table_exists(con, *RUN_CONTEXT.split(".")):
        return None
    present = {r[0] for r in con.execute(f"DESCRIBE {RUN_CONTEXT}").fetchall()}
    if not present.issuperset(columns):
        return None
    return con.execute(f"SELECT {', '.join(columns)} FROM {RUN_CONTEXT}").fetchone()


def recomputed_from(con: duckdb.DuckDBPyConnection, as_of: date) -> date | None:
    """The first month end this build's dbt step recomputed for D, in the features or the
    network PD facts beside them (main.dbt_run_context's network_recompute_from, as
    `plan_recompute` wrote it; date.max: none), besides every month end of the firms in
    main.dbt_recompute_network_enterprises (those whose features were recomputed whole and
    their neighbours). None when the facts may all have changed (a full build, dbt run by
    hand, another D, no run context)."""
    if not table_exists(con, *RECOMPUTE_NETWORK_ENTERPRISES.split(".")):
        return None
    row = _run_context_row(con, "as_of_date", "network_recompute_from")
    if row is None or row[0] != as_of:
        return None
    return row[1]


def previous_as_of(con: duckdb.DuckDBPyConnection) -> date | None:
    """The as-of date the build's tables were built for before this dbt step (the run
    context's previous_as_of, `refresh_plan.Recompute`); None when not written (a full build,
    dbt run by hand)."""
    row = _run_context_row(con, "previous_as_of")
    return row[0] if row else None


def keep_partial_parse(invocation_target: Path, project_target: Path | None = None) -> bool:
    """Copy a run's partial-parse state to the project's target folder, where the next
    invocation (dagster-dbt copies it into its own target folder) starts from it: without
    this every run parses from the state of the last `dbt parse`. Atomic replace; False when
    the run left none."""
    src = invocation_target / PARTIAL_PARSE_FILE
    if not src.is_file():
        return False
    dest_dir = project_target or Path(dbt_project.project_dir) / dbt_project.target_path
    dest_dir.mkdir(parents=True, exist_ok=True)
    tmp = dest_dir / f".{PARTIAL_PARSE_FILE}.{os.getpid()}"
    shutil.copyfile(src, tmp)
    tmp.replace(dest_dir / PARTIAL_PARSE_FILE)
    return True


def run_dbt(
    args: list[str],
    *,
    warehouse: Path,
    dbt_vars: dict[str, object] | None = None,
    target_path: Path | None = None,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Run dbt on this project against `warehouse` outside Dagster (tests, benchmarks), with
    the CLI arguments a Dagster step passes, through dbt's programmatic entry point in this
    process: a dbt process spends 4-5 s importing dbt before it reads the project, and the
    test suite runs dbt about 60 times. Returns what the CLI would (exit code 0, 1 for failed
    nodes, 2 for an error; dbt's console output). `target_path` keeps parallel invocations'
    artifacts apart. An `as_of_date` in `dbt_vars` is written to the run context table, not
    passed as a var."""
    from dbt.cli.main import dbtRunner

    dbt_vars = dict(dbt_vars or {})
    as_of = dbt_vars.pop("as_of_date", None)
    if as_of:
        write_run_context(warehouse, date.fromisoformat(str(as_of)))
    cli_args = [
        *args,
        "--project-dir",
        str(dbt_project.project_dir),
        "--profiles-dir",
        str(dbt_project.profiles_dir),
        "--vars",
        json.dumps({"warehouse_path": str(warehouse), **dbt_vars}),
    ]
    if target_path is not None:
        cli_args += ["--target-path", str(target_path), "--log-path", str(target_path / "logs")]
    console, error = io.StringIO(), ""
    # the as-of date comes from dbt_vars, never from the caller's RISK_AS_OF
    with _environment(DBT_SEND_ANONYMOUS_USAGE_STATS="false", RISK_AS_OF=None), \
            contextlib.chdir(dbt_project.project_dir), contextlib.redirect_stdout(console):
        try:
            result = dbtRunner().invoke(cli_args)
        finally:
            _close_dbt_duckdb()
    if result.exception is not None:
        error = "".join(traceback.format_exception(result.exception))
    returncode = 0 if result.success else 2 if result.exception is not None else 1
    proc = subprocess.CompletedProcess(["dbt", *cli_args], returncode, console.getvalue(), error)
    if check and proc.returncode != 0:
        raise RuntimeError(
            f"dbt {' '.join(args)} failed (exit {proc.returncode}):\n"
            + proc.stdout[-5000:]
            + proc.stderr[-2000:]
        )
    return proc


@contextlib.contextmanager
def _environment(**values: str | None) -> Iterator[None]:
    """os.environ with `values` set (None: unset) for the block, as it was afterwards."""
    before = {name: os.environ.get(name) for name in values}
    _set_environment(values)
    try:
        yield
    finally:
        _set_environment(before)


def _set_environment(values: Mapping[str, str | None]) -> None:
    for name, value in values.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def _close_dbt_duckdb() -> None:
    """Close the DuckDB database dbt-duckdb keeps open in this process after a run (its
    connection manager's environment), so the caller can open the file again with its own
    configuration ("Can't open a connection to same database file with a different
    configuration" otherwise)."""
    try:
        from dbt.adapters.duckdb.connections import DuckDBConnectionManager
    except ImportError:  # pragma: no cover - dbt-duckdb is a dependency
        return
    environment = DuckDBConnectionManager._ENV
    if environment is not None:
        environment.close()
    DuckDBConnectionManager.close_all_connections()


def prune_run_targets(
    keep: int = 10, min_age_s: float = 3600, target: Path | None = None
) -> int:
    """Delete all but the newest `keep` per-invocation target folders that dagster-dbt leaves
    under target/ (one per dbt step and run: a nightly job would otherwise grow the disk
    without bound), never one touched in the last `min_age_s` seconds: another process's
    dbt step (a back-test beside a refresh, parallel tests) may still be writing it.
    Returns how many were deleted."""
    target = target or Path(dbt_project.project_dir) / "target"
    runs = sorted(
        (p for p in target.glob("*_dbt_models-*") if p.is_dir()),
        key=lambda p: p.stat().st_mtime,
        reverse=True,
    )
    cutoff = time.time() - min_age_s
    old = [p for p in runs[keep:] if p.stat().st_mtime < cutoff]
    for path in old:
        shutil.rmtree(path, ignore_errors=True)
    return len(old)
