"""Resources shared by every asset: where the landing zone and the warehouse are, and as of when."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import duckdb
from dagster import ConfigurableResource
from pydantic import Field

from assets.core import settings
from assets.core.dbt_project import dbt_resource


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
        "dbt": dbt_resource(),
    }
