"""Where things are: the one place that reads the RISK_* environment (contract section 5)."""

from __future__ import annotations

import os
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

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
    """The as-of date D (contract section 2): RISK_AS_OF, else today in Asia/Shanghai (the
    bank's calendar, whatever the machine's time zone)."""
    raw = os.environ.get("RISK_AS_OF")
    return date.fromisoformat(raw) if raw else datetime.now(ZoneInfo("Asia/Shanghai")).date()


def alert_webhook() -> str:
    """RISK_ALERT_WEBHOOK: a WeCom/DingTalk group-bot URL that alerts are POSTed to; empty: none."""
    return os.environ.get("RISK_ALERT_WEBHOOK", "").strip()


#: How long a refresh waits for another one on the same warehouse before it gives up.
DEFAULT_LOCK_WAIT_SECONDS = 10.0


def lock_wait_seconds() -> float:
    """RISK_LOCK_WAIT_SECONDS, else 10."""
    raw = os.environ.get("RISK_LOCK_WAIT_SECONDS")
    return float(raw) if raw else DEFAULT_LOCK_WAIT_SECONDS


class SettingError(ValueError):
    """A RISK_* variable with an unusable value: `str()` is one line naming both."""

    def __init__(self, variable: str, value: str, problem: str) -> None:
        super().__init__(f"{variable}={value!r}: {problem}")
        self.variable, self.value, self.problem = variable, value, problem


def check_as_of() -> date:
    """RISK_AS_OF as a date, or SettingError."""
    raw = os.environ.get("RISK_AS_OF", "")
    try:
        return as_of_date()
    except ValueError:
        raise SettingError("RISK_AS_OF", raw, "not a date (YYYY-MM-DD)") from None


def check_warehouse() -> Path:
    """RISK_WAREHOUSE whose folder exists and is writable (the build file, the lock and the
    published copy are written beside it), or SettingError."""
    raw = os.environ.get("RISK_WAREHOUSE") or str(DEFAULT_WAREHOUSE)
    path = warehouse_path()
    folder = path.parent
    if path.is_dir():
        raise SettingError("RISK_WAREHOUSE", raw, "is a directory, not a DuckDB file")
    if not folder.is_dir():
        raise SettingError("RISK_WAREHOUSE", raw, f"folder {folder} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise SettingError("RISK_WAREHOUSE", raw, f"folder {folder} is not writable")
    return path


def landing_root_problem(root: Path) -> str | None:
    """Why a landing root cannot be read (missing, a file, empty), or None."""
    if not root.exists():
        return "does not exist"
    if not root.is_dir():
        return "is a file, not a directory"
    if not any(root.iterdir()):
        return "is empty"
    return None


def check_landing_dir() -> Path:
    """RISK_LANDING_DIR that is a non-empty directory, or SettingError."""
    raw = os.environ.get("RISK_LANDING_DIR") or str(DEFAULT_LANDING_DIR)
    root = landing_dir()
    problem = landing_root_problem(root)
    if problem:
        raise SettingError("RISK_LANDING_DIR", raw, f"landing root {root} {problem}")
    return root


#: DuckDB memory cap for ingestion, dbt, the publish and every step's connection (beyond it
#: DuckDB spills to disk). Without a cap DuckDB takes 80% of RAM; on a 24 GiB machine that
#: leaves too little for the rest. At 9GB a refresh of 1M enterprises peaks at about 10 GiB
#: (dbt's process 9.9 GiB, the publish 9.5 GiB, the decision window 8.9 GiB).
DEFAULT_DUCKDB_MEMORY_LIMIT = "9GB"


def duckdb_memory_limit() -> str:
    """RISK_DUCKDB_MEMORY_LIMIT, else 9GB. dbt's profile reads the same variable."""
    return os.environ.get("RISK_DUCKDB_MEMORY_LIMIT") or DEFAULT_DUCKDB_MEMORY_LIMIT


#: The build file is compacted after a publish when it is more than this many times its live
#: size (DuckDB never shrinks a file; a fresh copy holds the live blocks only).
DEFAULT_COMPACT_RATIO = 2.0


def compact_ratio() -> float:
    """RISK_COMPACT_RATIO, else 2; 0 turns compaction off."""
    raw = os.environ.get("RISK_COMPACT_RATIO")
    return float(raw) if raw else DEFAULT_COMPACT_RATIO


#: Run tag of every run that writes the warehouse; the run queue starts one such run at a time.
WAREHOUSE_RUN_TAG = "risk/warehouse"

#: The bank's machines have no internet: no telemetry. The run queue (daemon-launched runs:
#: schedule, sensor, UI) starts one run of this code location at a time, and one run tagged
#: `risk/warehouse`: every job here writes the one warehouse. `risk refresh` runs in-process,
#: outside the queue; the warehouse's run lock (assets/core/publish.py) covers it.
DAGSTER_YAML = f"""telemetry:
  enabled: false
concurrency:
  runs:
    tag_concurrency_limits:
      - key: "dagster/code_location"
        value:
          applyLimitPerUniqueValue: true
        limit: 1
      - key: "{WAREHOUSE_RUN_TAG}"
        limit: 1
"""


def ensure_dagster_home() -> Path:
    """Runs are recorded in DAGSTER_HOME (default .dagster_home/) so `make ui` shows them.

    Writes dagster.yaml when missing; an existing one without a `concurrency:` section gets
    ours appended (one that has its own is left as it is).
    """
    home = Path(os.environ.setdefault("DAGSTER_HOME", str(DEFAULT_DAGSTER_HOME)))
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        config.write_text(DAGSTER_YAML)
    else:
        current = config.read_text()
        if "concurrency:" not in current:
            block = DAGSTER_YAML.split("concurrency:", 1)[1]
            sep = "" if current.endswith("\n") or not current else "\n"
            config.write_text(current + sep + "concurrency:" + block)
    return home
