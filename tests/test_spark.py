"""The same dbt project on Apache Spark (dbt-spark, session method): the contract's worked
examples built on Spark equal the DuckDB build row for row, column for column.

Opt-in (`make test-spark`, marker `spark`; `make test` and CI leave it out): it needs the
optional extra `spark` (dbt-spark[session], pyspark) and Java 17. The raw tables come from
the project's own ingestion into DuckDB (Python stays the one loader), copied to Spark as
Parquet; dbt then builds the Spark-portable selection (selector `spark_portable`) with
`--target spark` in this process, reusing the test's SparkSession, for each as-of date of
the contract examples, and once for a small synthetic bank.
"""

from __future__ import annotations

import json
import time
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from assets.contract import LOAD_ORDER
from assets.core.dbt_project import dbt_project, run_dbt
from assets.ingestion import ingest_all

pytestmark = pytest.mark.spark

ROOT = Path(__file__).resolve().parents[1]
LANDING = ROOT / "tests" / "fixtures" / "contract_examples" / "landing"
#: (case, as-of date): the contract's worked examples at both of their as-of dates, and a
#: small synthetic bank (tax, utility, registry and network tables filled, benign noise on).
CASES = (
    ("examples", "2024-09-30"),
    ("examples", "2024-12-31"),
    ("synthetic", "2026-10-31"),
)
SYNTHETIC_ENTERPRISES, SYNTHETIC_SEED = 300, 11

#: What runs on Spark: dbt_project/selectors.yml `spark_portable` (staging, loan performance,
#: outcomes, dimensions). The README says what stays DuckDB-only and why.
SELECTOR = ("--selector", "spark_portable")
#: Unit tests are DuckDB's (test_loan_performance.py); data tests run only when every model
#: they read is in the selection.
BUILD_OPTIONS = ("--exclude-resource-type", "unit_test", "--indirect-selection", "cautious")
#: Every model of the selection is compared (schema.model).
COMPARED = (
    "staging.stg_core_banking__loans",
    "staging.stg_core_banking__installments",
    "staging.stg_core_banking__repayments",
    "staging.stg_core_banking__fund_flows",
    "staging.stg_core_banking__guarantees",
    "staging.stg_core_banking__loan_applications",
    "staging.stg_registry__enterprises",
    "staging.stg_registry__events",
    "staging.stg_registry__enterprise_links",
    "staging.stg_tax__filings",
    "staging.stg_tax__ratings",
    "staging.stg_utility__bills",
    "intermediate.int_calendar__month_ends",
    "intermediate.int_loan_installments__settled",
    "intermediate.int_loan_month_end__dpd",
    "marts.fct_loan_month_end",
    "marts.fct_loan_defaults",
    "marts.portfolio_monthly",
    "marts.fct_enterprise_outcomes",
    "marts.dim_branch",
    "marts.dim_industry",
    "marts.dim_enterprise",
)
#: DuckDB type -> Spark type name of the same values.
SPARK_TYPE = {
    "VARCHAR": "string",
    "INTEGER": "int",
    "BIGINT": "bigint",
    "DATE": "date",
    "BOOLEAN": "boolean",
    "DOUBLE": "double",
}


def _spark_type(duckdb_type: str) -> str:
    if duckdb_type.startswith("DECIMAL"):
        return duckdb_type.lower().replace(" ", "")
    return SPARK_TYPE[duckdb_type]


@pytest.fixture(scope="module")
def spark(tmp_path_factory: pytest.TempPathFactory):
    """One local SparkSession for the module; dbt-spark's session method reuses it."""
    pyspark_sql = pytest.importorskip("pyspark.sql", reason="needs the optional extra 'spark'")
    pytest.importorskip("dbt.adapters.spark", reason="needs the optional extra 'spark'")
    tmp = tmp_path_factory.mktemp("spark_session")
    session = (
        pyspark_sql.SparkSession.builder.master("local[1]")
        .appName("sme_risk_test_spark")
        .config("spark.ui.enabled", "false")
        # the catalog lives in this process only: no Derby metastore_db left in the cwd
        .config("spark.sql.catalogImplementation", "in-memory")
        .config("spark.sql.warehouse.dir", str(tmp / "warehouse"))
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", "1")
        .config("spark.driver.memory", "1g")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


def _duckdb_rows(con: duckdb.DuckDBPyConnection, relation: str) -> tuple[list, list]:
    schema, name = relation.split(".")
    cols = con.execute(
        "select column_name, data_type from information_schema.columns "
        "where table_schema = ? and table_name = ? order by ordinal_position",
        [schema, name],
    ).fetchall()
    return cols, con.execute(f"select * from {relation}").fetchall()


def _sort_key(row: tuple) -> tuple:
    return tuple((v is None, str(v)) for v in row)


def _build_on_spark(spark, tmp: Path, warehouse: Path, as_of: str) -> float:
    """Raw tables from DuckDB into Spark database `raw` (Parquet), then dbt on Spark.
    Returns the seconds dbt took."""
    from dbt.cli.main import dbtRunner

    export = tmp / "raw_parquet"
    export.mkdir()
    with duckdb.connect(str(warehouse), read_only=True) as con:
        for table in LOAD_ORDER:
            con.execute(f"copy raw.{table} to '{export / table}.parquet' (format parquet)")
    for db in ("raw", "staging", "intermediate", "marts"):
        spark.sql(f"drop database if exists {db} cascade")
    spark.sql("create database raw")
    for table in LOAD_ORDER:
        spark.read.parquet(str(export / f"{table}.parquet")).write.saveAsTable(f"raw.{table}")

    started = time.perf_counter()
    result = dbtRunner().invoke(
        [
            "--no-send-anonymous-usage-stats",
            "build",
            "--target",
            "spark",
            *SELECTOR,
            *BUILD_OPTIONS,
            "--project-dir",
            str(dbt_project.project_dir),
            "--profiles-dir",
            str(dbt_project.profiles_dir),
            # own target folder: a Spark parse must not replace DuckDB's partial parse
            "--target-path",
            str(tmp / "target_spark"),
            "--log-path",
            str(tmp / "target_spark" / "logs"),
            "--vars",
            json.dumps({"as_of_date": as_of}),
        ]
    )
    seconds = time.perf_counter() - started
    failed = [
        (r.node.unique_id, str(r.status), r.message)
        for r in (result.result or [])
        if str(r.status) not in ("success", "pass", "warn")
    ]
    assert result.success and not failed, f"dbt on Spark failed: {result.exception} {failed}"
    return seconds


def _landing(case: str, tmp: Path) -> Path:
    if case == "examples":
        return LANDING
    from synthetic.generator import generate

    generate(tmp / "landing", SYNTHETIC_ENTERPRISES, SYNTHETIC_SEED, "parquet", end_month="2026-10")
    return tmp / "landing"


@pytest.fixture(scope="module")
def builds(spark, tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], dict]:
    """Per case: every compared model's columns and rows from DuckDB and from Spark."""
    out: dict[tuple[str, str], dict] = {}
    for case, as_of in CASES:
        tmp = tmp_path_factory.mktemp(f"spark_{case}_{as_of}")
        warehouse = tmp / "w.duckdb"
        ingest_all(warehouse=warehouse, landing_dir=_landing(case, tmp))
        run_dbt(
            ["build", *SELECTOR, *BUILD_OPTIONS],
            warehouse=warehouse,
            dbt_vars={"as_of_date": as_of},
            target_path=tmp / "target_duckdb",
        )
        seconds = _build_on_spark(spark, tmp, warehouse, as_of)
        tables: dict[str, dict] = {}
        with duckdb.connect(str(warehouse), read_only=True) as con:
            for relation in COMPARED:
                cols, rows = _duckdb_rows(con, relation)
                frame = spark.table(relation)
                tables[relation] = {
                    "duckdb_columns": [(c, _spark_type(t)) for c, t in cols],
                    "spark_columns": [(f.name, f.dataType.simpleString()) for f in frame.schema],
                    "duckdb_rows": sorted(rows, key=_sort_key),
                    "spark_rows": sorted((tuple(r) for r in frame.collect()), key=_sort_key),
                }
        out[(case, as_of)] = {"tables": tables, "dbt_seconds": seconds}
        rows = sum(len(t["duckdb_rows"]) for t in tables.values())
        print(
            f"\nspark vs duckdb, {case} as of {as_of}: {len(tables)} tables, {rows} rows "
            f"compared, dbt build on Spark {seconds:.1f} s"
        )
    return out


@pytest.mark.parametrize("case", CASES, ids=[f"{c}-{d}" for c, d in CASES])
@pytest.mark.parametrize("relation", COMPARED)
def test_spark_matches_duckdb(builds: dict, case: tuple[str, str], relation: str) -> None:
    t = builds[case]["tables"][relation]
    assert t["spark_columns"] == t["duckdb_columns"], "columns or types differ"
    assert len(t["spark_rows"]) == len(t["duckdb_rows"])
    for d, s in zip(t["duckdb_rows"], t["spark_rows"], strict=True):
        assert s == d, f"{relation}, {case}: DuckDB {d} != Spark {s}"
        for dv, sv in zip(d, s, strict=True):
            if isinstance(dv, Decimal):  # money to the cent: same scale, not only same value
                assert sv.as_tuple().exponent == dv.as_tuple().exponent


def test_spark_comparison_is_not_empty(builds: dict) -> None:
    """The comparison compares something: loan rows in every case, and the synthetic bank
    fills the staging of every source."""
    for case in CASES:
        assert len(builds[case]["tables"]["marts.fct_loan_month_end"]["spark_rows"]) >= 10
    synthetic = builds[CASES[-1]]["tables"]
    assert all(len(t["spark_rows"]) > 0 for r, t in synthetic.items() if r.startswith("staging."))
