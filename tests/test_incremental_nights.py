"""Incremental nights give the same marts as one full rebuild.

A small generated bank is delivered night by night: a new day of repayments, fund flows and
registry events; a night that crosses a month end; a late correction of a repayment five
months back together with a re-delivered file. Each night runs what the nightly dbt step runs
(`plan_recompute`, the run context, dbt with or without `--full-refresh`, the base marker),
then "publishes" (a copy with its refresh row). The month-end facts built that way must equal,
row for row, a full build of the final landing.

And a night leaves the stored month ends it does not recompute as they were (no per-night
column such as as_of_date), so the incremental publish keeps or appends to the facts.
"""

from __future__ import annotations

import os
import shutil
from datetime import date
from pathlib import Path

import duckdb

from assets.core.dbt_project import run_dbt, write_run_context
from assets.core.publish import PUBLISH_INFO, build_path
from assets.dbt_assets import champion_fingerprint_at, decision_vars, store_champion_for_dbt
from assets.ingestion import ingest_all
from assets.refresh_plan import NOTHING, code_version, mark_incremental_base, plan_recompute
from assets.signals.catalog import load_catalog

#: Tables with one new day per night, and the column that dates their rows.
DAILY = {"repayments": "payment_date", "fund_flows": "txn_date", "registry_events": "event_date"}
FACTS = [
    "intermediate.int_enterprise__month_spine",
    "intermediate.int_loan_month_end__dpd",
    "marts.fct_loan_month_end",
    "intermediate.int_enterprise_month__tax",
    "intermediate.int_enterprise_month__utility",
    "intermediate.int_enterprise_month__registry_events",
    "intermediate.int_enterprise_month__fund_use",
    "intermediate.int_enterprise_month__loans",
    "intermediate.int_enterprise_month__network",
    "marts.fct_enterprise_month_end",
    "marts.fct_enterprise_month_end_trends",
]
#: Per loan or enterprise, not per month end: the settled installments (a night settles again
#: the loans whose rows changed and those D's move reaches), the defaults read from them and
#: the enterprises' outcomes (recomputed whole).
LOAN_TABLES = ["intermediate.int_loan_installments__settled", "marts.fct_loan_defaults",
               "marts.fct_enterprise_outcomes"]
#: Every month end, kept as stored on a night that recomputes no month end.
KEPT_TABLES = ["intermediate.int_calendar__month_ends",
               "intermediate.int_enterprise_month__industry",
               "intermediate.int_network__guarantees_open", "marts.guarantee_exposure"]
#: The enterprise of the earliest registry event (SQL, over the generated landing {full}).
FIRST_EVENT = ("SELECT enterprise_id FROM read_parquet('{full}/registry_events/*.parquet') "
               "ORDER BY event_date, event_id LIMIT 1")
#: Another firm on red by its PD: built with the champion stored in the warehouse.
NETWORK_PD = "marts.fct_enterprise_month_end_network_pd"
SELECT = ["--select", "+fct_enterprise_month_end_trends", "+fct_loan_month_end",
          "fct_loan_defaults", "fct_enterprise_outcomes", "+fct_enterprise_month_end_network_pd",
          "+guarantee_exposure", "+guarantee_circles"]
FIRST_DAY = date(2026, 9, 27)
#: Rows each night's decision window decided (-1: the whole window), in night order.
DECIDED: list[int] = []
#: Firms whose signal hits and profile each night carried over (-1: none could be).
KEPT: list[int] = []
#: Applications each night's screening derived again (-1: all), in night order.
SCREENED: list[int] = []


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


def _dbt_night(build: Path, published: Path, landing: Path, as_of: date, *, full: bool) -> object:
    """The nightly dbt step on `build` (not yet published): its plan."""
    ingest_all(build, landing)
    champion = champion_fingerprint_at(build)
    plan = plan_recompute(build, published, as_of, full=full, pd_champion=champion)
    mark_incremental_base(build, None)
    if plan.full:
        write_run_context(build, as_of)
    else:
        write_run_context(build, as_of, plan.from_month_end, plan.enterprises,
                          plan.network_from_month_end, plan.network_enterprises,
                          previous_as_of=plan.previous_as_of, recompute_loans=plan.loans)
    args = ["run", *SELECT, *(["--full-refresh"] if plan.full else [])]
    store_champion_for_dbt(build)
    run_dbt(args, warehouse=build, target_path=build.parent / "target",
            dbt_vars=decision_vars(load_catalog()))
    mark_incremental_base(build, as_of, champion)
    return plan


def _decide(warehouse: Path, as_of: date) -> int:
    """The nightly signal hits and risk profiles as of `as_of` (the firms whose previous
    rows were carried over go to KEPT, -1 when none could be), then the decision window
    (marts.enterprise_decisions); returns the rows the window decided (`_dw_todo`: a night
    that recomputed only part of the facts), or -1 when it decided the whole window."""
    from assets.early_warning import (
        build_decision_window,
        build_early_warning_for_dates,
        recomputed_from,
    )
    from assets.signals.catalog import load_catalog

    with duckdb.connect(str(warehouse)) as con:
        incremental = recomputed_from(con, as_of) is not None
        build_early_warning_for_dates(con, load_catalog(), [as_of], as_of)
        try:
            KEPT.append(con.execute("SELECT count(*) FROM _ew_kept").fetchone()[0])
        except duckdb.CatalogException:
            KEPT.append(-1)
        build_decision_window(con, load_catalog(), as_of)
        return con.execute("SELECT count(*) FROM _dw_todo").fetchone()[0] if incremental else -1


def _screen(warehouse: Path, as_of: date) -> int:
    """The nightly screening; its stored facts must be those of deriving every application
    again. Returns the applications it derived again (-1: all)."""
    from assets.core.metadata import table_exists
    from assets.screening.rules import (
        FACTS_TABLE,
        SCOPE_TABLE,
        build_screening,
        facts_sql,
        load_rules,
    )

    with duckdb.connect(str(warehouse)) as con:
        build_screening(con, as_of)
        try:
            screened = con.execute(f"SELECT count(*) FROM {SCOPE_TABLE}").fetchone()[0]
        except duckdb.CatalogException:
            screened = -1
        network_pd = table_exists(con, "marts", "fct_enterprise_month_end_network_pd")
        every = f"({facts_sql(as_of, load_rules(), network_pd)})"
        stored, differ = con.execute(
            f"SELECT (SELECT count(*) FROM {FACTS_TABLE}), count(*) FROM ("
            f"(SELECT * FROM {FACTS_TABLE} EXCEPT ALL {every}) UNION ALL "
            f"({every} EXCEPT ALL SELECT * FROM {FACTS_TABLE}))").fetchone()
    assert stored > 0 and differ == 0, f"{as_of}: {differ} stored screening facts differ"
    return screened


def _night(build: Path, published: Path, landing: Path, as_of: date, *, full: bool) -> object:
    """The nightly dbt step on `build`, the screening and the decision window after it, then
    a publish of it (a copy with its refresh row)."""
    plan = _dbt_night(build, published, landing, as_of, full=full)
    SCREENED.append(_screen(build, as_of))
    DECIDED.append(_decide(build, as_of))
    shutil.copyfile(build, published)
    with duckdb.connect(str(published)) as con:
        con.execute(f"CREATE OR REPLACE TABLE {PUBLISH_INFO} AS SELECT DATE '{as_of}' AS "
                    f"as_of_date, '{code_version()}' AS code_version")
    return plan


def _rows(warehouse: Path, relation: str) -> list[tuple]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute(f"SELECT * FROM {relation} ORDER BY ALL").fetchall()


#: A firm without loans whose every row of the first-data tables (tax, utility, registry
#: events, applications) is taken out of the landing: its month-end rows start at its
#: establishment until its first application arrives (SQL over the generated landing {full}).
NO_DATA_FIRM = ("SELECT min(enterprise_id) FROM read_parquet('{full}/enterprises/*.parquet') "
                "WHERE enterprise_id NOT IN (SELECT enterprise_id FROM "
                "read_parquet('{full}/loans/*.parquet')) AND enterprise_id NOT IN ("
                "SELECT enterprise_id FROM read_parquet('{full}/loan_applications/*.parquet'))")
#: Another such firm, established long ago, that stays without data: its month-end rows start
#: 24 months before the calendar, so they move when the calendar starts earlier.
STILL_NO_DATA_FIRM = (
    "SELECT min(enterprise_id) FROM read_parquet('{full}/enterprises/*.parquet') "
    "WHERE established_date < DATE '2010-01-01' AND enterprise_id > (" + NO_DATA_FIRM + ") "
    "AND enterprise_id NOT IN (SELECT enterprise_id FROM read_parquet('{full}/loans/*.parquet'))"
    " AND enterprise_id NOT IN (SELECT enterprise_id FROM "
    "read_parquet('{full}/loan_applications/*.parquet'))")
FIRST_DATA_TABLES = ("tax_filings", "utility_bills", "registry_events")
#: Two firms Z, W related to one same firm Y (links valid from March to June 2026) but not to
#: each other, neither with a status change of its own nor one of the firms above: the
#: registry shows both revoked (on red by a hard trigger), until a late status change shows
#: Z active before it. Y's rows (a neighbour of Z, recomputed whole) must still see W on red.
RELATED_PAIR = """
WITH l AS (
    SELECT enterprise_id AS y, related_id AS o, valid_from,
           coalesce(valid_to, DATE '9999-12-31') AS valid_to
    FROM read_parquet('{full}/enterprise_links/*.parquet')
    UNION ALL
    SELECT related_id, enterprise_id, valid_from, coalesce(valid_to, DATE '9999-12-31')
    FROM read_parquet('{full}/enterprise_links/*.parquet')
),
g AS (
    SELECT g.guarantor_id AS a, l.enterprise_id AS b
    FROM read_parquet('{full}/guarantees/*.parquet') AS g
    JOIN read_parquet('{full}/loans/*.parquet') AS l USING (loan_id)
),
adjacent AS (SELECT y AS a, o AS b FROM l UNION SELECT a, b FROM g UNION SELECT b, a FROM g),
quiet AS (
    SELECT enterprise_id FROM read_parquet('{full}/enterprises/*.parquet')
    WHERE enterprise_id NOT IN (SELECT enterprise_id FROM read_parquet(
        '{full}/registry_events/*.parquet') WHERE event_type = 'status_change')
      AND enterprise_id NOT IN (({first}), ({no_data}), ({still}))
)
SELECT z.o, w.o
FROM l AS z JOIN l AS w ON z.y = w.y AND z.o <> w.o
WHERE z.o IN (SELECT enterprise_id FROM quiet) AND w.o IN (SELECT enterprise_id FROM quiet)
  AND greatest(z.valid_from, w.valid_from) <= DATE '2026-03-01'
  AND least(z.valid_to, w.valid_to) > DATE '2026-06-30'
  AND (z.o, w.o) NOT IN (SELECT (a, b) FROM adjacent)
ORDER BY z.o, w.o
LIMIT 1
"""
#: A loan in the landing from the first night, contracted before every other date and
#: disbursed after every night but the last: D's move alone starts the calendar earlier.
EARLY_CONTRACT, LATE_DISBURSEMENT = date(2011, 1, 3), date(2026, 12, 15)


def _first_landing(tmp_path: Path) -> tuple[Path, Path, str, str]:
    """(the generated landing, night 0's landing: daily tables up to FIRST_DAY, the SQL of
    the enterprise whose status changes on night 1, firm Z of RELATED_PAIR). NO_DATA_FIRM
    and STILL_NO_DATA_FIRM have no data; the registry shows both firms of RELATED_PAIR
    revoked."""
    from synthetic.generator import generate

    full = tmp_path / "generated"
    generate(full, 120, 11, "parquet", end_month="2026-10", months=24)
    first = FIRST_EVENT.format(full=full)
    no_data = NO_DATA_FIRM.format(full=full)
    with duckdb.connect() as con:
        (still,) = con.execute(STILL_NO_DATA_FIRM.format(full=full)).fetchone()
        assert still is not None
        pair = con.execute(RELATED_PAIR.format(
            full=full, first=first, no_data=no_data, still=f"SELECT '{still}'")).fetchone()
        assert pair is not None, "the generated book has no firm with two related firms"
        for table in FIRST_DATA_TABLES:
            for part in sorted((full / table).glob("*.parquet")):
                kept = part.with_name(f"{part.name}.kept")
                _write_rows(con, str(part),
                            f"enterprise_id <> ({no_data}) AND enterprise_id <> '{still}'", kept)
                kept.replace(part)
    landing = tmp_path / "landing"
    shutil.copytree(full, landing)
    with duckdb.connect() as con:  # a loan contracted before the calendar, disbursed later
        _write_rows(con, f"(SELECT * REPLACE ('LATE-DISBURSED' AS loan_id, DATE '{EARLY_CONTRACT}'"
                    f" AS contract_date, DATE '{LATE_DISBURSEMENT}' AS disbursement_date, "
                    "DATE '2027-12-15' AS maturity_date) FROM read_parquet("
                    f"'{full}/loans/*.parquet') ORDER BY loan_id LIMIT 1)", "true",
                    landing / "loans" / "late-disbursed.parquet")
    with duckdb.connect() as con:  # night 0 knows the daily tables up to FIRST_DAY only
        # the registry already shows one firm suspended; its status change comes on night 1
        for part in sorted((full / "enterprises").glob("*.parquet")):
            _write_rows(con, f"(SELECT * REPLACE (CASE WHEN enterprise_id = ({first}) "
                        f"THEN 'suspended' WHEN enterprise_id IN {pair} THEN 'revoked' "
                        "ELSE status END AS status) FROM "
                        f"read_parquet('{part}'))", "true", landing / "enterprises" / part.name)
        for table, col in DAILY.items():
            for part in sorted((full / table).glob("*.parquet")):
                _write_rows(con, str(part), f"{col} <= DATE '{FIRST_DAY}'",
                            landing / table / part.name)
    return full, landing, first, pair[0]


def test_incremental_nights_equal_a_full_rebuild(tmp_path: Path) -> None:
    from test_network_pd import store_champion

    full, landing, first, revoked = _first_landing(tmp_path)
    published = tmp_path / "nightly" / "warehouse.duckdb"
    build = build_path(published)
    build.parent.mkdir(parents=True)
    store_champion(build, 0.5)  # a firm past due is on red by its PD (cut-off 0.30)
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
    # ... and the first data of a firm that had none: its first application
    no_data = NO_DATA_FIRM.format(full=full)
    with duckdb.connect() as con:
        con.execute(
            "COPY (SELECT * REPLACE ('APP-FIRST' AS application_id, "
            f"({no_data}) AS enterprise_id, DATE '2026-09-28' AS application_date, "
            "CAST(NULL AS VARCHAR) AS offered_guarantor_id) "
            f"FROM read_parquet('{full}/loan_applications/*.parquet') LIMIT 1) "
            f"TO '{landing}/loan_applications/first-2026-09-28.parquet' (FORMAT parquet)")
        (no_data_firm,) = con.execute(no_data).fetchone()
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
    # the same landing, a new champion (promoted after last night's dbt step): the facts
    # recompute nothing, the network PD facts every month end
    store_champion(build, 0.6)
    plans.append(_night(build, published, landing, date(2026, 10, 3), full=False))
    # a late tax filing for a period years before the calendar's first month: the calendar,
    # and with it every firm's month spine (from 24 months before it), starts earlier
    with duckdb.connect() as con:
        con.execute(
            "COPY (SELECT * REPLACE ('2012-01' AS period, DATE '2012-02-15' AS filed_date) "
            f"FROM read_parquet('{full}/tax_filings/*.parquet') WHERE tax_type = 'vat' LIMIT 1) "
            f"TO '{landing}/tax_filings/late-2012-01.parquet' (FORMAT parquet)")
    plans.append(_night(build, published, landing, date(2026, 10, 3), full=False))
    # no new file, D moves on past month ends (closing the outcome windows of firms without a
    # loan since), then within that month to the day a loan defaults: an installment left
    # unsettled reaches 91 days past due (the loan is settled again, its firm's outcomes change)
    with duckdb.connect(str(build), read_only=True) as con:
        (last_day, defaulting) = con.execute(
            "SELECT due_date + 91, loan_id FROM intermediate.int_loan_installments__settled "
            "WHERE settled_date IS NULL AND due_date + 91 > DATE '2026-10-03' "
            "AND loan_id NOT IN (SELECT loan_id FROM marts.fct_loan_defaults) "
            "ORDER BY 1, 2 LIMIT 1").fetchone()
    month_start = last_day.replace(day=1)
    assert month_start < last_day < LATE_DISBURSEMENT
    plans.append(_night(build, published, landing, month_start, full=False))
    plans.append(_night(build, published, landing, last_day, full=False))
    assert defaulting not in plans[7].loans  # reached by D, not by a changed row
    # no new file, and D passes the disbursement of a loan contracted before the calendar's
    # first month: the calendar (kept on a night without a new month end) and every firm's
    # month spine start earlier, so every month end is recomputed
    plans.append(_night(build, published, landing, date(2026, 12, 20), full=False))
    with duckdb.connect(str(build), read_only=True) as con:
        assert con.execute("SELECT default_date FROM marts.fct_loan_defaults WHERE loan_id = ?",
                           [defaulting]).fetchone() == (last_day,)

    assert [p.full for p in plans] == [True] + [False] * 8
    # the status change, and the firm whose month-end rows now start at its first data
    assert plans[1].from_month_end == NOTHING
    with duckdb.connect() as con:
        (first_firm,) = con.execute(first).fetchone()
    assert {first_firm, no_data_firm} <= plans[1].enterprises
    # the network PD facts: the firm and its neighbours
    assert plans[1].network_from_month_end == NOTHING
    assert plans[1].network_enterprises >= plans[1].enterprises
    print("network enterprises", len(plans[1].enterprises), len(plans[1].network_enterprises))
    assert plans[2].from_month_end == plans[2].network_from_month_end == date(2026, 9, 30)
    assert plans[3].from_month_end == date(2026, 5, 31)
    assert plans[4].from_month_end == NOTHING and not plans[4].enterprises
    assert plans[4].network_from_month_end == date.min
    assert plans[5].from_month_end == date(1, 1, 31)  # every month end
    assert not plans[6].loans and not plans[7].loans
    assert plans[6].from_month_end == date(2026, 10, 31)  # month ends passed
    assert plans[7].from_month_end == NOTHING  # the same month: only the default is new
    assert plans[8].from_month_end == date(1, 1, 31) and not plans[8].loans

    # a late status change of firm Z (same D): shown active before it, so no longer on red
    # there; Z and its neighbours are recomputed whole, and Y, related to Z, still sees W
    with duckdb.connect() as con:
        con.execute(
            "COPY (SELECT * REPLACE (event_id || '-z' AS event_id, DATE '2026-12-19' AS "
            f"event_date, 'status_change' AS event_type, '存续→吊销' AS description, "
            f"'{revoked}' AS enterprise_id) FROM read_parquet('{full}/registry_events/*.parquet') "
            f"WHERE enterprise_id = ({first}) LIMIT 1) "
            f"TO '{landing}/registry_events/status-2026-12-19.parquet' (FORMAT parquet)")
    plans.append(_night(build, published, landing, date(2026, 12, 20), full=False))
    assert plans[9].from_month_end == NOTHING and revoked in plans[9].enterprises

    reference = tmp_path / "full" / "warehouse.duckdb"
    reference.parent.mkdir(parents=True)
    store_champion(reference, 0.6)
    ingest_all(reference, landing)
    write_run_context(reference, date(2026, 12, 20))
    store_champion_for_dbt(reference)
    run_dbt(["run", *SELECT], warehouse=reference, target_path=reference.parent / "target",
            dbt_vars=decision_vars(load_catalog()))
    for relation in [*LOAN_TABLES, *KEPT_TABLES, *FACTS, NETWORK_PD]:
        got, want = _rows(build, relation), _rows(reference, relation)
        assert len(want) > 0, relation
        assert got == want, f"{relation}: incremental nights differ from a full rebuild"

    # the decision window: nights after the first decide only what changed, and D's window
    # equals one decided whole on the final facts
    # the screening: derived whole on the first night and after the new champion (every
    # network PD fact), else only the applications a night's changes reach
    screened = SCREENED[-10:]
    print("screened", screened)
    assert all(screened[i] == -1 for i in (0, 4, 5, 8)), screened
    assert all(screened[i] >= 0 for i in (1, 2, 3, 6, 7, 9)), screened

    decided = DECIDED[-10:-1]
    assert DECIDED[-1] >= 0  # the late status change: its firms only
    assert decided[0] == -1 and all(n >= 0 for n in decided[1:]), decided
    # one firm and its neighbours, then the new month end, then from May (five month ends),
    # then every month end after the new champion, and after the calendar moved
    assert decided[1] < decided[2] < decided[3] < decided[4] == decided[5], decided
    assert _decide(reference, date(2026, 12, 20)) == -1
    window_end = date(2026, 11, 30)  # D's window: the 12 month ends up to the last one
    window = ("(SELECT * FROM marts.enterprise_decisions WHERE month_end BETWEEN "
              f"last_day(DATE '{window_end}' - INTERVAL 11 MONTH) AND DATE '{window_end}')")
    got, want = _rows(build, window), _rows(reference, window)
    assert len(want) > 0
    assert got == want, "enterprise_decisions: incremental nights differ from a full decision"
    # D's signal hits and profiles: firms carried over on the nights inside a month, none
    # after the new champion (the network PD facts of every month end were recomputed), and
    # the same rows as decided whole
    kept = KEPT[-11:-2]
    print("kept", kept, "decided", decided)
    assert kept[0] == -1 and kept[1] > 0 and kept[7] > 0, kept
    assert kept[4] == 0, kept
    for mart in ("signal_hits", "enterprise_risk_profile"):
        got, want = _rows(build, f"marts.{mart}"), _rows(reference, f"marts.{mart}")
        assert len(want) > 0, mart
        assert got == want, f"{mart}: carried-over rows differ from a whole decision"

    # and what forces a full rebuild: asked for, an earlier D, other code, a failed dbt step
    d = date(2026, 12, 20)
    assert plan_recompute(build, published, d).from_month_end == NOTHING  # nothing new
    assert plan_recompute(build, published, d, full=True).full
    assert plan_recompute(build, published, last_day).full
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
    assert "not_null_int_loan_month_end__dpd_month_end" in skipped
    # the contract's keys and values are tagged blocking: checked every night
    blocking = {n["name"] for n in nodes.values()
                if n["resource_type"] == "test" and "blocking" in n.get("tags", [])}
    assert {"not_null_fct_loan_month_end_month_end",
            "fct_enterprise_month_end_unique_key",
            "fct_enterprise_month_end_trends_unique_key"} <= blocking
    assert not blocking & set(skipped)
    facts = {m.split(".")[1] for m in FACTS}
    for name in skipped:
        parents = {nodes_by_id["name"] for nodes_by_id in (
            manifest["nodes"][p] for p in nodes[name]["depends_on"]["nodes"])}
        assert parents <= facts, (name, parents)
    assert not any("watchlist" in t or "portfolio_monthly" in t for t in skipped)


def test_no_blocking_check_is_one_a_quiet_night_skips() -> None:
    """Dagster warns when a blocking check emits no result ("downstream will proceed without
    gating on it"): every night that recomputes no month end printed 14 such warnings for the
    tests it skips on purpose. Those checks are not blocking; every other severity-error test
    still is, and the tests tagged `blocking` are."""
    import json

    from assets.core.dbt_project import prepare_dbt_project
    from assets.dbt_assets import dbt_model_assets, unchanged_fact_tests

    manifest = json.loads(prepare_dbt_project().read_text())
    tests = {n["name"]: n for n in manifest["nodes"].values() if n["resource_type"] == "test"}
    skipped = set(unchanged_fact_tests())
    specs = {spec.name: spec for a in dbt_model_assets for spec in a.check_specs}
    assert skipped and skipped <= set(specs)
    for name, spec in specs.items():
        severity = (tests[name]["config"].get("severity") or "error").lower()
        assert spec.blocking == (severity == "error" and name not in skipped), name
    assert all(specs[n].blocking for n, t in tests.items() if "blocking" in t.get("tags", []))



def _month_end_hashes(warehouse: Path, relation: str) -> dict[date, tuple[int, int]]:
    """Rows and a hash of every stored row, per month end."""
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return {m: (n, h) for m, n, h in con.execute(
            f"SELECT month_end, count(*), bit_xor(hash(t)) FROM {relation} AS t "
            "GROUP BY month_end").fetchall()}


def test_a_night_leaves_the_stored_month_ends_and_the_publish_keeps_them(tmp_path: Path) -> None:
    """Two nights after the first: a new day inside the month (no month end recomputed), then
    a night across a month end (only the new month end computed). The stored rows of the
    month ends before are byte for byte as they were, and the incremental publish keeps the
    facts, then only appends to them: it rewrites none."""
    from assets.core.publish import publish
    from assets.publish_assets import DROP_COLUMNS, PUBLISHED_SCHEMAS

    full, landing, _, _ = _first_landing(tmp_path)
    published = tmp_path / "nightly" / "warehouse.duckdb"
    build = build_path(published)

    def night(as_of: date) -> tuple[object, object]:
        plan = _dbt_night(build, published, landing, as_of, full=False)
        result = publish(build, published, schemas=PUBLISHED_SCHEMAS, drop_columns=DROP_COLUMNS,
                         info={"as_of_date": as_of, "code_version": code_version()})
        return plan, result

    def deliver(first: date, last: date) -> None:  # the days' rows, no registry status change
        with duckdb.connect() as con:
            for table, col in DAILY.items():
                extra = " AND event_type <> 'status_change'" if table == "registry_events" else ""
                _write_rows(con, f"{full}/{table}/*.parquet",
                            f"{col} BETWEEN DATE '{first}' AND DATE '{last}'{extra}",
                            landing / table / f"day-{last}.parquet")

    night(FIRST_DAY)
    facts = {"marts.fct_loan_month_end", "marts.fct_enterprise_month_end"}
    before = {r: _month_end_hashes(build, r) for r in FACTS}
    # a loan settled long ago, beyond tonight's reach: marked, to see whether the night
    # settles it again
    with duckdb.connect(str(build)) as con:
        (settled_loan,) = con.execute(
            "SELECT loan_id FROM intermediate.int_loan_installments__settled GROUP BY loan_id "
            "HAVING max(settled_date) < DATE '2026-01-01' AND count(settled_date) = count(*) "
            "ORDER BY loan_id LIMIT 1").fetchone()
        con.execute("UPDATE intermediate.int_loan_installments__settled SET settling_payment_id"
                    " = 'marked' WHERE loan_id = ?", [settled_loan])
        # and a guarantee exposure row, to see whether a night without a month end keeps it
        firm, month_end = con.execute("SELECT enterprise_id, month_end FROM "
                                      "marts.guarantee_exposure ORDER BY ALL LIMIT 1").fetchone()
        row = f"enterprise_id = '{firm}' AND month_end = DATE '{month_end}'"
        marked = f"(SELECT guarantees_received FROM marts.guarantee_exposure WHERE {row})"
        (received,) = con.execute(marked).fetchone()
        con.execute("UPDATE marts.guarantee_exposure SET guarantees_received = "
                    f"guarantees_received + 1 WHERE {row}")

    deliver(date(2026, 9, 28), date(2026, 9, 28))
    plan, result = night(date(2026, 9, 28))
    assert plan.from_month_end == NOTHING and not plan.enterprises
    # the loans paid tonight are settled again, the others kept as stored
    paid = {r[0] for r in _rows(build, "(SELECT DISTINCT loan_id FROM raw.repayments "
                                       "WHERE payment_date = DATE '2026-09-28')")}
    assert paid and paid <= plan.loans and settled_loan not in plan.loans
    assert {r[0] for r in _rows(build, "(SELECT DISTINCT settling_payment_id FROM "
                                       "intermediate.int_loan_installments__settled "
                                       f"WHERE loan_id = '{settled_loan}')")} == {"marked"}
    assert _rows(build, marked) == [(received + 1,)]
    assert result.mode == "incremental"
    for relation in FACTS:
        assert _month_end_hashes(build, relation) == before[relation], relation
    touched = set(result.rewritten) | set(result.appended) | set(result.patched)
    assert not touched & facts, f"the publish rewrote unchanged facts: {touched & facts}"
    _night_tests_run_the_blocking_ones(build)

    deliver(date(2026, 9, 29), date(2026, 10, 2))
    plan, result = night(date(2026, 10, 2))
    assert plan.from_month_end == date(2026, 9, 30)
    # a night with a new month end rebuilds it
    assert _rows(build, marked) == [(received,)]
    for relation in FACTS:
        after = _month_end_hashes(build, relation)
        assert date(2026, 9, 30) in after and date(2026, 9, 30) not in before[relation]
        assert {m: h for m, h in after.items() if m < date(2026, 9, 30)} == before[relation], \
            f"{relation}: a month end before the recomputed one changed"
    assert not facts & set(result.rewritten), result.rewritten
    assert facts <= set(result.appended) | set(result.patched), (result.appended, result.patched)


def _night_tests_run_the_blocking_ones(build: Path) -> None:
    """The tests of a night that recomputes no month end, selected as the nightly step
    selects them (`--exclude` the unchanged facts' tests, one value): the skipped ones do not
    run, every blocking test of the facts does, and they pass."""
    import json

    from assets.dbt_assets import unchanged_fact_tests

    skipped = unchanged_fact_tests()
    target = build.parent / "target"
    run_dbt(["test", "--exclude-resource-type", "unit_test", *SELECT,
             "--exclude", " ".join(skipped)], warehouse=build, target_path=target)
    nodes = json.loads((target / "manifest.json").read_text())["nodes"]
    results = json.loads((target / "run_results.json").read_text())["results"]
    ran = {nodes[r["unique_id"]]["name"]: r["status"] for r in results}
    facts = {uid for uid, n in nodes.items() if n["resource_type"] == "model"
             and n["config"].get("incremental_strategy") == "replace_from_month_end"}
    blocking = {n["name"] for n in nodes.values() if n["resource_type"] == "test"
                and "blocking" in n.get("tags", []) and set(n["depends_on"]["nodes"]) <= facts}
    assert skipped and not set(skipped) & set(ran)
    assert len(blocking) >= 10 and blocking <= set(ran), blocking - set(ran)
    assert {ran[t] for t in blocking} == {"pass"}


def test_the_key_check_reads_what_a_night_recomputed_and_all_on_a_full_build(
    tmp_path: Path,
) -> None:
    """fct_enterprise_month_end_unique_key (blocking): a repeated key fails a full build; a
    night reads only the keys it recomputed (a key is recomputed whole or not at all, so a
    repeat there has all its rows among them), and a key it kept was checked before."""
    wh = tmp_path / "wh.duckdb"
    aug, sep = date(2026, 8, 31), date(2026, 9, 30)
    with duckdb.connect(str(wh)) as con:
        con.execute("CREATE SCHEMA marts")
        con.execute("CREATE TABLE marts.fct_enterprise_month_end (enterprise_id VARCHAR, "
                    "month_end DATE)")
        con.execute("INSERT INTO marts.fct_enterprise_month_end VALUES "
                    "('a', ?), ('a', ?), ('b', ?), ('b', ?)", [aug, aug, aug, sep])

    def failures(recompute_from: date | None, enterprises: tuple[str, ...] = ()) -> int:
        write_run_context(wh, date(2026, 10, 3), recompute_from, enterprises)
        proc = run_dbt(["test", "--select", "fct_enterprise_month_end_unique_key"],
                       warehouse=wh, target_path=tmp_path / "target", check=False)
        out = proc.stdout
        assert "fct_enterprise_month_end_unique_key" in out, out[-2000:]
        return 0 if proc.returncode == 0 else int(out.split("Got ")[1].split(" result")[0])

    assert failures(None) == 1  # a full build reads every key
    assert failures(sep) == 0  # the night recomputed September only: ('a', Aug) was kept
    assert failures(NOTHING, ("a",)) == 1  # firm a recomputed whole
    with duckdb.connect(str(wh)) as con:
        con.execute("INSERT INTO marts.fct_enterprise_month_end VALUES ('b', ?)", [sep])
    assert failures(sep) == 1  # ('b', Sep) twice among the recomputed keys
    assert failures(NOTHING) == 0  # a night that recomputed nothing reads no key
