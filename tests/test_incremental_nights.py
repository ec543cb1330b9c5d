"""Incremental nights give the same marts as one full rebuild.

A small generated bank is delivered night by night: a new day of repayments, fund flows and
registry events; a night that crosses a month end; a late correction of a repayment five
months back together with a re-delivered file. Each night runs what the nightly dbt step runs
(`plan_recompute`, the run context, dbt with or without `--full-refresh`, the base marker),
then "publishes" (a copy with its refresh row). The month-end facts built that way must equal,
row for row, a full build of the final landing.
"""

from __future__ import annotations

import os
import shutil
from datetime import date
from pathlib import Path

import duckdb

from assets.core.dbt_project import run_dbt, write_run_context
from assets.core.publish import PUBLISH_INFO, build_path
from assets.ingestion import ingest_all
from assets.refresh_plan import NOTHING, code_version, mark_incremental_base, plan_recompute

#: Tables with one new day per night, and the column that dates their rows.
DAILY = {"repayments": "payment_date", "fund_flows": "txn_date", "registry_events": "event_date"}
FACTS = [
    "intermediate.int_loan_month_end__dpd",
    "marts.fct_loan_month_end",
    "intermediate.int_enterprise_month__tax",
    "intermediate.int_enterprise_month__utility",
    "intermediate.int_enterprise_month__registry_events",
    "intermediate.int_enterprise_month__fund_use",
    "intermediate.int_enterprise_month__loans",
    "marts.fct_enterprise_month_end",
    "marts.fct_enterprise_month_end_trends",
]
#: The enterprise of the earliest registry event (SQL, over the generated landing {full}).
FIRST_EVENT = ("SELECT enterprise_id FROM read_parquet('{full}/registry_events/*.parquet') "
               "ORDER BY event_date, event_id LIMIT 1")
SELECT = ["--select", "+fct_enterprise_month_end_trends", "+fct_loan_month_end"]
FIRST_DAY = date(2026, 9, 27)


def _write_rows(con: duckdb.DuckDBPyConnection, source: str, where: str, dest: Path) -> int:
    dest.parent.mkdir(parents=True, exist_ok=True)
    relation = source if source.startswith("(") else f"read_parquet('{source}')"
    con.execute(f"COPY (SELECT * FROM {relation} WHERE {where}) "
                f"TO '{dest}' (FORMAT parquet)")
    return con.execute(f"SELECT count(*) FROM read_parquet('{dest}')").fetchone()[0]


def _deliver_days(full: Path, landing: Path, first: date, last: date) -> None:
    """New files with the daily tables' rows dated first..last (a bank's night delivery)."""
    with duckdb.connect() as con:
        for table, col in DAILY.items():
            _write_rows(con, f"{full}/{table}/*.parquet",
                        f"{col} BETWEEN DATE '{first}' AND DATE '{last}'",
                        landing / table / f"day-{last}.parquet")


def _night(build: Path, published: Path, landing: Path, as_of: date, *, full: bool) -> object:
    """The nightly dbt step on `build`, then a publish of it."""
    ingest_all(build, landing)
    plan = plan_recompute(build, published, as_of, full=full)
    mark_incremental_base(build, None)
    if plan.full:
        write_run_context(build, as_of)
    else:
        write_run_context(build, as_of, plan.from_month_end, plan.enterprises)
    args = ["run", *SELECT, *(["--full-refresh"] if plan.full else [])]
    run_dbt(args, warehouse=build, target_path=build.parent / "target")
    mark_incremental_base(build, as_of)
    shutil.copyfile(build, published)
    with duckdb.connect(str(published)) as con:
        con.execute(f"CREATE OR REPLACE TABLE {PUBLISH_INFO} AS SELECT DATE '{as_of}' AS "
                    f"as_of_date, '{code_version()}' AS code_version")
    return plan


def _rows(warehouse: Path, relation: str) -> list[tuple]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute(f"SELECT * FROM {relation} ORDER BY ALL").fetchall()


def test_incremental_nights_equal_a_full_rebuild(tmp_path: Path) -> None:
    from synthetic.generator import generate

    full = tmp_path / "generated"
    generate(full, 120, 11, "parquet", end_month="2026-10", months=24)
    first = FIRST_EVENT.format(full=full)
    landing = tmp_path / "landing"
    shutil.copytree(full, landing)
    with duckdb.connect() as con:  # night 0 knows the daily tables up to FIRST_DAY only
        # the registry already shows one firm suspended; its status change comes on night 1
        for part in sorted((full / "enterprises").glob("*.parquet")):
            _write_rows(con, f"(SELECT * REPLACE (CASE WHEN enterprise_id = ({first}) "
                        "THEN 'suspended' ELSE status END AS status) FROM "
                        f"read_parquet('{part}'))", "true", landing / "enterprises" / part.name)
        for table, col in DAILY.items():
            for part in sorted((full / table).glob("*.parquet")):
                _write_rows(con, str(part), f"{col} <= DATE '{FIRST_DAY}'",
                            landing / table / part.name)

    published = tmp_path / "nightly" / "warehouse.duckdb"
    build = build_path(published)
    plans = []
    plans.append(_night(build, published, landing, FIRST_DAY, full=False))
    # a new day inside the month: no month end to recompute; its status change also sets
    # the status shown before it, so that enterprise is recomputed whole
    _deliver_days(full, landing, date(2026, 9, 28), date(2026, 9, 28))
    with duckdb.connect() as con:
        con.execute(
            "COPY (SELECT * REPLACE (event_id || '-s' AS event_id, DATE '2026-09-28' AS "
            "event_date, 'status_change' AS event_type, '存续→停业' AS description) "
            f"FROM read_parquet('{full}/registry_events/*.parquet') "
            f"WHERE enterprise_id = ({first}) LIMIT 1) "
            f"TO '{landing}/registry_events/status-2026-09-28.parquet' (FORMAT parquet)")
    plans.append(_night(build, published, landing, date(2026, 9, 28), full=False))
    # across the month end: September 30 is new
    _deliver_days(full, landing, date(2026, 9, 29), date(2026, 10, 2))
    plans.append(_night(build, published, landing, date(2026, 10, 2), full=False))
    # a late correction of a payment five months back, and a re-delivered file
    with duckdb.connect() as con:
        _write_rows(con, f"{full}/repayments/*.parquet",
                    "payment_id = (SELECT min(payment_id) FROM read_parquet("
                    f"'{full}/repayments/*.parquet') WHERE payment_date BETWEEN "
                    "DATE '2026-05-01' AND DATE '2026-05-31')", tmp_path / "one.parquet")
        con.execute(f"COPY (SELECT * REPLACE (amount - 1000 AS amount) FROM "
                    f"'{tmp_path / 'one.parquet'}') TO '{landing}/repayments/correction.parquet'"
                    " (FORMAT parquet)")
    redelivered = landing / "fund_flows" / "day-2026-09-28.parquet"
    st = redelivered.stat()
    os.utime(redelivered, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    _deliver_days(full, landing, date(2026, 10, 3), date(2026, 10, 3))
    plans.append(_night(build, published, landing, date(2026, 10, 3), full=False))

    assert [p.full for p in plans] == [True, False, False, False]
    assert plans[1].from_month_end == NOTHING and len(plans[1].enterprises) == 1
    assert plans[2].from_month_end == date(2026, 9, 30)
    assert plans[3].from_month_end == date(2026, 5, 31)

    reference = tmp_path / "full" / "warehouse.duckdb"
    ingest_all(reference, landing)
    write_run_context(reference, date(2026, 10, 3))
    run_dbt(["run", *SELECT], warehouse=reference, target_path=reference.parent / "target")
    for relation in FACTS:
        got, want = _rows(build, relation), _rows(reference, relation)
        assert len(want) > 0, relation
        assert got == want, f"{relation}: incremental nights differ from a full rebuild"

    # and what forces a full rebuild: asked for, an earlier D, other code, a failed dbt step
    d = date(2026, 10, 3)
    assert plan_recompute(build, published, d).from_month_end == NOTHING  # nothing new
    assert plan_recompute(build, published, d, full=True).full
    assert plan_recompute(build, published, date(2026, 10, 2)).full
    with duckdb.connect(str(published)) as con:
        con.execute(f"UPDATE {PUBLISH_INFO} SET code_version = 'other'")
    assert "code changed" in plan_recompute(build, published, d).reason
    mark_incremental_base(build, None)
    assert plan_recompute(build, published, d).full


def test_a_night_without_recomputed_month_ends_skips_only_the_facts_tests() -> None:
    """The excluded tests read only the incremental month-end facts: not the tests of a
    table rebuilt every night, nor of the as-of-date history (also incremental)."""
    import json

    from assets.core.dbt_project import prepare_dbt_project
    from assets.dbt_assets import unchanged_fact_tests

    manifest = json.loads(prepare_dbt_project().read_text())
    nodes = {n["name"]: n for n in manifest["nodes"].values()}
    skipped = unchanged_fact_tests()
    assert "not_null_fct_loan_month_end_month_end" in skipped
    assert "unique_fct_enterprise_month_end_enterprise_id_month_end" in skipped
    facts = {m.split(".")[1] for m in FACTS}
    for name in skipped:
        parents = {nodes_by_id["name"] for nodes_by_id in (
            manifest["nodes"][p] for p in nodes[name]["depends_on"]["nodes"])}
        assert parents <= facts, (name, parents)
    assert not any("watchlist" in t or "portfolio_monthly" in t for t in skipped)

