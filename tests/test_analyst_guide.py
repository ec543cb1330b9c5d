"""Every ```sql block of docs/analyst-guide.md runs against a warehouse the project builds.

The warehouse is built the way a bank's would be: 300 synthetic firms, `risk refresh` and
`risk backtest` in subprocesses with RISK_* pointing at a temporary directory (conftest's
`generated_night`, built once per test session). The queries read the build file, which holds
the published tables (marts, raw) and the back-test (which publishes its own tables at once).
The guide's blocks run in order on one read-only connection, so a block may use a variable an
earlier block set (question 6).
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import duckdb
import pytest
from conftest import GeneratedNight

ROOT = Path(__file__).resolve().parents[1]
GUIDE = ROOT / "docs" / "analyst-guide.md"
SQL_BLOCK = re.compile(r"```sql\n(.*?)```", re.S)


def guide_blocks() -> list[str]:
    return SQL_BLOCK.findall(GUIDE.read_text(encoding="utf-8"))


def test_the_guide_has_ten_questions_with_sql() -> None:
    text = GUIDE.read_text(encoding="utf-8")
    assert len(re.findall(r"^### \d+\. ", text, re.M)) >= 10
    assert len(guide_blocks()) >= 10


def test_every_query_in_the_guide_runs(generated_night: GeneratedNight) -> None:
    con = duckdb.connect(str(generated_night.build), read_only=True)
    empty = []
    try:
        for block in guide_blocks():
            for stmt in con.extract_statements(block):
                try:
                    cur = con.execute(stmt)
                    rows = cur.fetchall() if cur.description else None
                except duckdb.Error as exc:
                    pytest.fail(f"guide query failed: {exc}\n{stmt.query}")
                if rows == []:
                    empty.append(stmt.query.strip().splitlines()[0])
    finally:
        con.close()
    # A query may be empty on 300 firms (e.g. no fund diversion case), but most must answer.
    assert len(empty) <= 3, empty


def test_dimensions_obey_their_contracts(generated_night: GeneratedNight) -> None:
    """The dimension tables exist with their documented columns, keys unique, no PII."""
    con = duckdb.connect(str(generated_night.build), read_only=True)
    try:
        cols = {
            t: [c for (c,) in con.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = 'marts' "
                "AND table_name = ? ORDER BY ordinal_position", [t]).fetchall()]
            for t in ("dim_enterprise", "dim_industry", "dim_branch", "dim_signal",
                      "dim_screening_rule")
        }
        assert all(cols.values()), cols
        assert not [c for c in cols["dim_enterprise"] if c.startswith("legal_rep")]
        for table, key in (("dim_enterprise", "enterprise_id"), ("dim_industry", "industry_code"),
                           ("dim_branch", "branch_id"), ("dim_signal", "signal_id"),
                           ("dim_screening_rule", "rule_id")):
            n, distinct = con.execute(
                f"SELECT count(*), count(DISTINCT {key}) FROM marts.{table}"
            ).fetchone()
            assert n == distinct > 0, table
        assert con.execute("SELECT count(*) FROM marts.dim_industry").fetchone()[0] == 20
        # every branch of the loans has a name from the seed
        assert con.execute(
            "SELECT count(*) FROM marts.dim_branch WHERE has_loans AND branch_name IS NULL"
        ).fetchone()[0] == 0
        assert con.execute(
            "SELECT count(*) FROM marts.dim_signal WHERE name_zh IS NULL OR reason_template_zh "
            "IS NULL"
        ).fetchone()[0] == 0
    finally:
        con.close()


def test_the_backtest_is_published_at_once(generated_night: GeneratedNight) -> None:
    """`risk backtest` after a clean refresh publishes its tables: analysts see them without
    waiting for the next refresh, and the published refresh row is still the refresh's."""
    published = generated_night.warehouse
    query = "SELECT run_id, auc_6m FROM marts.backtest_runs ORDER BY ALL"
    with duckdb.connect(str(generated_night.build), read_only=True) as con:
        built = con.execute(query).fetchall()
    with duckdb.connect(str(published), read_only=True) as con:
        assert con.execute(query).fetchall() == built != []
        assert con.execute("SELECT CAST(as_of_date AS VARCHAR) FROM main.published_refresh"
                           ).fetchone()[0] == generated_night.as_of
    # the back-test's refit (the refresh's fit and this one) is published with it
    models = "SELECT model_version, status FROM marts.pd_scorecard_models ORDER BY ALL"
    with duckdb.connect(str(generated_night.build), read_only=True) as con:
        fits = con.execute(models).fetchall()
    with duckdb.connect(str(published), read_only=True) as con:
        assert con.execute(models).fetchall() == fits and len(fits) >= 2


def test_the_refresh_writes_the_officers_files(generated_night: GeneratedNight) -> None:
    import openpyxl

    out = generated_night.exports / generated_night.as_of
    wb = openpyxl.load_workbook(out / "watchlist.xlsx", read_only=True)
    assert len(wb.sheetnames) >= 2
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "小微企业信贷预警报告" in page and "近12个月趋势" in page


def test_dbt_docs_catalog_lists_every_mart(generated_night: GeneratedNight, tmp_path: Path) -> None:
    """`dbt docs generate` on the built warehouse documents every mart: the dbt models and
    the Python-built marts declared as sources."""
    import json

    from assets.core.dbt_project import run_dbt

    warehouse = tmp_path / "warehouse.duckdb"  # dbt writes its run context: into a copy
    shutil.copy(generated_night.build, warehouse)
    run_dbt(["docs", "generate"], warehouse=warehouse,
            dbt_vars={"as_of_date": generated_night.as_of}, target_path=tmp_path / "target")
    catalog = json.loads((tmp_path / "target" / "catalog.json").read_text())
    documented = {
        (n["metadata"]["schema"], n["metadata"]["name"])
        for n in [*catalog["nodes"].values(), *catalog["sources"].values()]
    }
    with duckdb.connect(str(warehouse), read_only=True) as con:
        marts = set(con.execute(
            "SELECT schema_name, table_name FROM duckdb_tables() WHERE schema_name = 'marts'"
        ).fetchall())
    # the engine's own bookkeeping tables are not analyst marts
    internal = {("marts", t) for t in ("signal_hits_history", "alert_log")}
    missing = sorted(marts - documented - internal)
    assert not missing, f"marts missing from dbt docs: {missing}"
