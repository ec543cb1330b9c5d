"""The warehouse resource the Python steps connect through."""

from __future__ import annotations

from pathlib import Path

import pytest

from assets.core.resources import RiskWarehouse


@pytest.mark.parametrize("read_only", [False, True])
def test_a_steps_connection_keeps_to_the_memory_cap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, read_only: bool
) -> None:
    """Every step's queries keep to RISK_DUCKDB_MEMORY_LIMIT, as dbt and ingestion do: without
    it DuckDB takes 80% of RAM (the 1M decision window reached 12.6 GiB under a 9 GB cap)."""
    wh = RiskWarehouse(warehouse=str(tmp_path / "w.duckdb"), landing_dir=str(tmp_path))
    with wh.connect() as con:  # the file exists before a read-only open
        con.execute("CREATE TABLE t AS SELECT 1 AS x")
    for cap, shown in (("1GB", "953.6 MiB"), ("3GB", "2.7 GiB")):
        monkeypatch.setenv("RISK_DUCKDB_MEMORY_LIMIT", cap)
        with wh.connect(read_only=read_only) as con:
            assert con.execute("SELECT current_setting('memory_limit')").fetchone()[0] == shown
