"""Shared fixtures: the contract's worked examples and small landing-directory builders."""

from __future__ import annotations

import csv
import os
import shutil
from pathlib import Path

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
