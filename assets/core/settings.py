"""Where things are: the one place that reads the RISK_* environment (contract section 5)."""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent.parent
DBT_PROJECT_DIR = PROJECT_ROOT / "dbt_project"
DEFAULT_LANDING_DIR = PROJECT_ROOT / "data" / "landing"
DEFAULT_WAREHOUSE = PROJECT_ROOT / "data" / "warehouse.duckdb"
DEFAULT_EXPORTS_DIR = PROJECT_ROOT / "data" / "exports"
DEFAULT_DAGSTER_HOME = PROJECT_ROOT / ".dagster_home"


def landing_dir() -> Path:
    """Landing root: RISK_LANDING_DIR, else data/landing."""
    return Path(os.environ.get("RISK_LANDING_DIR") or DEFAULT_LANDING_DIR).resolve()


def warehouse_path() -> Path:
    """The DuckDB file: RISK_WAREHOUSE, else data/warehouse.duckdb."""
    return Path(os.environ.get("RISK_WAREHOUSE") or DEFAULT_WAREHOUSE).resolve()


def as_of_date() -> date:
    """The as-of date D (contract section 2): RISK_AS_OF, else today."""
    raw = os.environ.get("RISK_AS_OF")
    return date.fromisoformat(raw) if raw else date.today()


#: DuckDB memory cap for ingestion and dbt (beyond it DuckDB spills to disk). Without a cap
#: DuckDB takes 80% of RAM; on a 24 GiB machine that leaves too little for the rest.
DEFAULT_DUCKDB_MEMORY_LIMIT = "12GB"


def duckdb_memory_limit() -> str:
    """RISK_DUCKDB_MEMORY_LIMIT, else 12GB. dbt's profile reads the same variable."""
    return os.environ.get("RISK_DUCKDB_MEMORY_LIMIT") or DEFAULT_DUCKDB_MEMORY_LIMIT


def ensure_dagster_home() -> Path:
    """Runs are recorded in DAGSTER_HOME (default .dagster_home/) so `make ui` shows them."""
    home = Path(os.environ.setdefault("DAGSTER_HOME", str(DEFAULT_DAGSTER_HOME)))
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():  # the bank's machines have no internet: no telemetry
        config.write_text("telemetry:\n  enabled: false\n")
    return home
