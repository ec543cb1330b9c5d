"""Shared fixtures: the contract's worked examples and small landing-directory builders."""

from __future__ import annotations

import csv
import fcntl
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import ClassVar

import pytest

FIXTURES = Path(__file__).parent / "fixtures"


def pytest_configure(config: pytest.Config) -> None:
    """`dbt parse` once (only when a dbt file changed): the asset graph is read from the
    manifest, and test modules import the definitions while they are collected."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        return  # under pytest-xdist the controller parsed before starting the workers
    from assets.core.dbt_project import prepare_dbt_project

    prepare_dbt_project()


CONTRACT_EXAMPLES = FIXTURES / "contract_examples"
ROOT = Path(__file__).resolve().parents[1]

#: The long modules, longest first (seconds of one `--durations=0` run on three workers):
#: pytest-xdist hands modules out in this order (`make test` turns off its own reordering by
#: number of tests, `--no-loadscope-reorder`), so the workers end together instead of one
#: running a long module alone at the end. test_pii builds the shared generated night
#: (`generated_night`) at the start; test_analyst_guide, which reads it, comes much later.
RUN_FIRST = (
    "test_nights.py",  # 499 s (2026-12-01; the scorecard and below from earlier runs)
    "test_incremental_nights.py",  # 448 s
    "test_pii.py",  # 284 s
    "test_early_warning.py",  # 156 s
    "test_guarantees.py",  # 122 s
    "test_network_pd.py",  # 93 s
    "test_enterprise_features.py",  # 87 s
    "test_loan_performance.py",  # 60 s
    "test_publish.py",  # 60 s
    "test_scorecard.py",  # 50 s
    "test_screening.py",  # 40 s
    "test_ingestion.py",  # 40 s
    "test_dbt_partial_parse.py",  # 32 s
    "test_generator.py",  # 32 s
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Order the modules `RUN_FIRST`, then the rest as collected (a stable sort: the tests of
    a module keep their order)."""
    rank = {name: i for i, name in enumerate(RUN_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(RUN_FIRST)))


@pytest.fixture
def landing(tmp_path: Path) -> Path:
    """A copy of the contract examples' landing directory, safe to modify."""
    dest = tmp_path / "landing"
    shutil.copytree(CONTRACT_EXAMPLES / "landing", dest)
    return dest


@pytest.fixture
def warehouse(tmp_path: Path) -> Path:
    return tmp_path / "warehouse.duckdb"


def create_mart_tables(con, *models: str) -> None:
    """Empty tables for dbt models, with every column and type of their enforced contracts
    (read from dbt's manifest), so hand-built test warehouses never copy the mart DDL."""
    import json

    from assets.core.dbt_project import prepare_dbt_project

    manifest = json.loads(prepare_dbt_project().read_text())
    nodes = {n["name"]: n for n in manifest["nodes"].values() if n["resource_type"] == "model"}
    for model in models:
        node = nodes[model]
        cols = ", ".join(f'"{c}" {spec["data_type"]}' for c, spec in node["columns"].items())
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {node['schema']}")
        con.execute(f"CREATE TABLE {node['schema']}.{model} ({cols})")


def write_csv(
    landing_dir: Path,
    table: str,
    name: str,
    header: list[str],
    rows: list[list[object]],
    *,
    encoding: str = "utf-8",
    mtime: float | None = None,
) -> Path:
    """Write one landing CSV; `mtime` pins its modification time (newest file wins)."""
    folder = landing_dir / table
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    with path.open("w", encoding=encoding, newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


def read_rows(path: Path) -> tuple[list[str], list[list[str]]]:
    with path.open(encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.reader(fh))
    return rows[0], rows[1:]


# --- one generated night shared by the modules that only read it ------------------------------


@dataclass(frozen=True)
class RefreshFolder:
    """A folder laid out the way `risk refresh` runs on it: landing zone, published warehouse
    (its build file beside it), DAGSTER_HOME and exports."""

    root: Path

    @property
    def landing(self) -> Path:
        return self.root / "landing"

    @property
    def warehouse(self) -> Path:
        """The published file analysts open."""
        return self.root / "warehouse.duckdb"

    @property
    def build(self) -> Path:
        """The build file the next night starts from."""
        from assets.core.publish import build_path

        return build_path(self.warehouse)

    @property
    def dagster_home(self) -> Path:
        return self.root / "dagster_home"

    @property
    def exports(self) -> Path:
        return self.root / "exports"

    def risk_env(self, as_of: str) -> dict[str, str]:
        """RISK_* and DAGSTER_HOME pointing into this folder, as of `as_of`."""
        return {
            "RISK_LANDING_DIR": str(self.landing),
            "RISK_WAREHOUSE": str(self.warehouse),
            "RISK_AS_OF": as_of,
            "RISK_EXPORTS_DIR": str(self.exports),
            "DAGSTER_HOME": str(self.dagster_home),
        }


def refresh_run_id(printed: str) -> str:
    """The run id `risk refresh` prints in its last line."""
    return re.search(r"\(run ([0-9a-f-]{36})\)", printed).group(1)


@dataclass(frozen=True)
class GeneratedNight(RefreshFolder):
    """A generated book (300 firms, seed 5, Parquet, plus two CSV loans of 6e15 CNY) after
    `risk refresh` and `risk backtest` as of `as_of`, run as a bank would: subprocesses with
    RISK_* and DAGSTER_HOME pointing into `root`. Read it; never write to it."""

    refresh_run_id: str = ""
    refresh_started: float = 0.0  # epoch seconds, before the refresh started
    as_of: ClassVar[str] = "2026-10-31"


def risk_command(args: list[str], env: dict[str, str], timeout: int = 1200) -> str:
    """`risk <args>` in a subprocess; its stdout, or a failure with the output's tail."""
    proc = subprocess.run(
        [sys.executable, "-m", "orchestration.cli", *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout,
    )
    tail = f"{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    assert proc.returncode == 0, f"risk {' '.join(args)} failed:\n{tail}"
    return proc.stdout


def add_two_loans_of_6e15_cny(landing: Path) -> None:
    """Two more loans (a CSV beside the Parquet files) of 6e15 CNY each: a DECIMAL(18,2)
    holds one, their sum overflows it, so ingestion must quarantine them."""
    import duckdb

    source = sorted((landing / "loans").glob("*.parquet"))[0]
    with duckdb.connect() as con:
        con.execute(
            f"COPY (SELECT * REPLACE ('HUGE' || (row_number() OVER () - 1) AS loan_id, "
            f"'6000000000000000' AS principal) FROM (SELECT * FROM read_parquet('{source}') "
            f"ORDER BY loan_id LIMIT 2)) TO '{landing / 'loans' / 'huge.csv'}' (HEADER)"
        )


@contextmanager
def _exclusive(lock_file: Path) -> Iterator[None]:
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    with lock_file.open("w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _build_generated_night(root: Path) -> GeneratedNight:
    from synthetic.generator import generate

    shutil.rmtree(root, ignore_errors=True)
    night = GeneratedNight(root)
    generate(night.landing, n_enterprises=300, seed=5, fmt="parquet")
    add_two_loans_of_6e15_cny(night.landing)
    night.dagster_home.mkdir()
    env = {
        **os.environ,
        **night.risk_env(night.as_of),
        "RISK_PSEUDONYM_KEY": "",  # the key file in DAGSTER_HOME, as a bank would run it
    }
    started = time.time()
    run_id = refresh_run_id(risk_command(["refresh"], env))
    risk_command(["backtest"], env)  # with its refit: the scorecard tables are published too
    return replace(night, refresh_run_id=run_id, refresh_started=started)


@pytest.fixture(scope="session")
def generated_night(tmp_path_factory: pytest.TempPathFactory) -> GeneratedNight:
    """Built once per test session, also under pytest-xdist: the first worker to ask builds
    it under a file lock in the directory all workers share, the others wait and read it."""
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    root = shared / "generated_night"
    done = shared / "generated_night.json"
    with _exclusive(shared / "generated_night.lock"):
        if not done.exists():
            night = _build_generated_night(root)
            done.write_text(json.dumps({"run_id": night.refresh_run_id,
                                        "started": night.refresh_started}))
    built = json.loads(done.read_text())
    return GeneratedNight(root, built["run_id"], built["started"])
