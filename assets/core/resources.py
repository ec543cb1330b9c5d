"""Resources shared by every asset: where the landing zone and the warehouse are, and as of when."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import duckdb
from dagster import ConfigurableResource
from dagster_dbt import DbtCliResource
from pydantic import Field

from assets.core import settings


class RiskWarehouse(ConfigurableResource):
    """The DuckDB warehouse, the landing root and the as-of date of this run.

    Defaults come from RISK_WAREHOUSE / RISK_LANDING_DIR / RISK_AS_OF when the definitions
    load; a run may override them in its resource config. DuckDB allows one writer, so each
    step opens and closes its own connection and the job runs steps one at a time.
    """

    warehouse: str = Field(description="Path of the DuckDB file.")
    landing_dir: str = Field(description="Landing root with one folder per table.")
    as_of: str = Field(default="", description="As-of date YYYY-MM-DD; empty means today.")

    @property
    def warehouse_path(self) -> Path:
        return Path(self.warehouse)

    @property
    def landing_path(self) -> Path:
        return Path(self.landing_dir)

    @property
    def as_of_date(self) -> date:
        return date.fromisoformat(self.as_of) if self.as_of else date.today()

    @contextmanager
    def connect(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        self.warehouse_path.parent.mkdir(parents=True, exist_ok=True)
        con = duckdb.connect(str(self.warehouse_path), read_only=read_only)
        try:
            yield con
        finally:
            con.close()


def default_resources() -> dict:
    """Resources configured from the environment (read when the definitions load)."""
    as_of = settings.as_of_date().isoformat() if os.environ.get("RISK_AS_OF") else ""
    return {
        "warehouse": RiskWarehouse(
            warehouse=str(settings.warehouse_path()),
            landing_dir=str(settings.landing_dir()),
            as_of=as_of,
        ),
        "dbt": DbtCliResource(
            project_dir=str(settings.DBT_PROJECT_DIR),
            profiles_dir=str(settings.DBT_PROJECT_DIR),
            dbt_executable=dbt_executable(),
        ),
    }


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
