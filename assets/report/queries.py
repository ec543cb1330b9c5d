"""DuckDB reads of the marts for the exports: small aggregates for the report, SELECTs to COPY.

Aggregation happens in SQL (tier counts, NPL ratios, screening decisions); only the watchlist
itself comes back row by row, because the report lists every firm on it. Table and column
names are pasted through `assets.core.sql.ident`; values are bound parameters.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import duckdb

from assets.core.metadata import table_exists
from assets.core.sql import ident
from assets.report.model import REPORT_TABLES, BacktestView, ReportData, missing_message, now

MARTS = "marts"

#: Typed, empty, contract-shaped (section 4) watchlist for when the mart does not exist yet.
EMPTY_WATCHLIST_SELECT = (
    "SELECT NULL::DATE AS as_of_date, NULL::VARCHAR AS enterprise_id, NULL::VARCHAR AS tier, "
    "NULL::DOUBLE AS risk_score, NULL::VARCHAR AS signals, NULL::VARCHAR AS reasons, "
    "NULL::DATE AS first_flagged_date, NULL::VARCHAR AS status, "
    "NULL::VARCHAR AS recommended_action WHERE false"
)


def mart(table: str) -> str:
    """Quoted `marts.<table>`."""
    return f"{ident(MARTS)}.{ident(table)}"


def columns(con: duckdb.DuckDBPyConnection, table: str) -> list[tuple[str, str]]:
    """(name, data type) of a mart's columns in table order."""
    return con.execute(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position",
        [MARTS, table],
    ).fetchall()


def watchlist_order(column_names: Sequence[str]) -> str:
    """Riskiest first, then by enterprise: the order of every watchlist file and table."""
    keys = [c for c in ("risk_score", "enterprise_id") if c in column_names]
    if not keys:
        return "ALL"
    return ", ".join(f"{ident(c)} DESC" if c == "risk_score" else ident(c) for c in keys)


def table_select(table: str, order_by: str = "ALL") -> str:
    """SELECT of a whole mart in `order_by` (for Parquet: list columns stay lists)."""
    return f"SELECT * FROM {mart(table)} ORDER BY {order_by}"


def csv_select(con: duckdb.DuckDBPyConnection, table: str, order_by: str = "ALL") -> str:
    """SELECT for a CSV: list columns joined with '; ' (Excel cannot read `[a, b]` lists)."""
    exprs = []
    for name, dtype in columns(con, table):
        q = ident(name)
        exprs.append(f"array_to_string({q}, '; ') AS {q}" if dtype.endswith("[]") else q)
    return f"SELECT {', '.join(exprs)} FROM {mart(table)} ORDER BY {order_by}"


def watchlist_history_select(con: duckdb.DuckDBPyConnection, as_of: date) -> str:
    """D's watchlist from marts.watchlist_history, with the watchlist mart's columns: the
    export of a past as-of date (the current watchlist shows the latest date)."""
    names = [c for c, _ in columns(con, "watchlist")] or [
        c for c, _ in columns(con, "watchlist_history")
    ]
    cols = ", ".join(ident(c) for c in names)
    return (
        f"(SELECT {cols} FROM {mart('watchlist_history')} "
        f"WHERE CAST(as_of_date AS DATE) = DATE '{as_of.isoformat()}')"
    )


#: The notice of a past date's report in place of the screening section.
PAST_DATE_SCREENING = (
    "Pre-lending screening is left out of the report of a past as-of date: "
    "marts.application_screening holds the current decisions only (no history by date)."
)


def gather_report_data(
    con: duckdb.DuckDBPyConnection, as_of: date, from_history: bool = False
) -> ReportData:
    """Read what the report shows from the marts; missing tables become notices. With
    `from_history` the watchlist is D's rows of watchlist_history (a past as-of date); the
    screening section and its CSV are then left out (application_screening has no history)."""
    data = ReportData(as_of=as_of, generated_at=now())
    for table in REPORT_TABLES:
        if not table_exists(con, MARTS, table):
            data.missing[table] = missing_message(table)
    if from_history and "watchlist_history" not in data.missing:
        data.missing.pop("watchlist", None)
        data.watchlist_from = watchlist_history_select(con, as_of)
    if "watchlist" not in data.missing:
        _read_watchlist(con, data)
    if "watchlist_history" not in data.missing:
        data.tier_history = [
            (str(d), str(t), int(n))
            for d, t, n in con.execute(
                "SELECT CAST(as_of_date AS DATE), tier, count(*) "
                f"FROM {mart('watchlist_history')} "
                "WHERE CAST(as_of_date AS DATE) <= ? GROUP BY ALL ORDER BY 1, 2",
                [as_of],
            ).fetchall()
        ]
    if "portfolio_monthly" not in data.missing:
        _read_npl(con, data)
    if "watchlist_history" not in data.missing:
        _read_changes(con, data)
    _read_trends(con, data)
    if from_history and table_exists(con, MARTS, "application_screening"):
        data.notices.append(PAST_DATE_SCREENING)
    elif table_exists(con, MARTS, "application_screening"):
        _read_screening_month(con, data)
        data.screening_decisions = [
            (str(d), int(n))
            for d, n in con.execute(
                "SELECT coalesce(decision, '(none)'), count(*) "
                f"FROM {mart('application_screening')} GROUP BY 1 ORDER BY 2 DESC, 1"
            ).fetchall()
        ]
    if table_exists(con, MARTS, "guarantee_circles") and table_exists(
        con, MARTS, "guarantee_exposure"
    ):
        _read_circles(con, data)
    _read_backtest(con, data)
    return data


#: Circles drawn in the report: the most exposure first, at most this many.
MAX_CIRCLES = 12


def _read_circles(con: duckdb.DuckDBPyConnection, data: ReportData) -> None:
    """Guarantee circles at the latest month end <= D with a member in trouble: in default,
    over 30 days past due at that month end, or red/amber on the watchlist. Each member's
    state and outstanding principal; the exposure at risk is what the members not (yet) in
    default owe the bank, since the trouble travels to them through the guarantees."""
    month_end = _latest_month_end(con, "guarantee_circles", data.as_of)
    if month_end is None:
        return
    cols = {c for c, _ in columns(con, "guarantee_circles")}
    edges = "c.guarantee_edges" if "guarantee_edges" in cols else "[]::VARCHAR[]"
    tier = "NULL::VARCHAR"
    join_wl = ""
    if table_exists(con, MARTS, "watchlist"):
        tier = "w.tier"  # D's watchlist (from the history for a past date)
        join_wl = (f"LEFT JOIN {data.watchlist_from or mart('watchlist')} w "
                   "ON w.enterprise_id = u.eid")
    dpd, join_f = "NULL::INTEGER", ""
    if table_exists(con, MARTS, "fct_enterprise_month_end"):
        dpd = "f.dpd_max"
        join_f = (f"LEFT JOIN {mart('fct_enterprise_month_end')} f "
                  "ON f.enterprise_id = u.eid AND f.month_end = c.month_end")
    names, join_n = "NULL::VARCHAR", ""
    if table_exists(con, MARTS, "dim_enterprise"):
        names, join_n = "n.name", f"LEFT JOIN {mart('dim_enterprise')} n ON n.enterprise_id = u.eid"
    elif table_exists(con, "raw", "enterprises"):
        names, join_n = "n.name", "LEFT JOIN raw.enterprises n ON n.enterprise_id = u.eid"
    rows = con.execute(
        f"""
        WITH m AS (
            SELECT c.circle_id, c.total_exposure, {edges} AS edges, u.eid AS enterprise_id,
                   {names} AS name, x.outstanding_principal AS exposure,
                   CASE WHEN coalesce(x.is_default, FALSE) THEN 'default'
                        WHEN {tier} = 'red' THEN 'red'
                        WHEN coalesce({dpd}, 0) > 30 THEN 'past_due'
                        WHEN {tier} = 'amber' THEN 'amber'
                        ELSE 'ok' END AS state
            FROM {mart('guarantee_circles')} c
            CROSS JOIN unnest(c.member_ids) AS u(eid)
            LEFT JOIN {mart('guarantee_exposure')} x
              ON x.enterprise_id = u.eid AND x.month_end = c.month_end
            {join_wl} {join_f} {join_n}
            WHERE CAST(c.month_end AS DATE) = ?
        ),
        troubled AS (
            SELECT circle_id FROM m GROUP BY 1 HAVING bool_or(state <> 'ok')
        )
        SELECT circle_id, any_value(total_exposure), any_value(edges),
               list({{'enterprise_id': enterprise_id, 'name': name, 'state': state,
                      'exposure': exposure}} ORDER BY enterprise_id),
               coalesce(sum(exposure) FILTER (WHERE state <> 'default'), 0)
        FROM m SEMI JOIN troubled USING (circle_id)
        GROUP BY circle_id
        ORDER BY 5 DESC, 1
        LIMIT {MAX_CIRCLES}
        """,
        [month_end],
    ).fetchall()
    for cid, total, edge_list, members, at_risk in rows:
        data.circles.append({
            "circle_id": cid,
            "month_end": str(month_end),
            "total_exposure": float(total or 0),
            "exposure_at_risk": float(at_risk or 0),
            "edges": [tuple(e.split(">", 1)) for e in (edge_list or []) if ">" in e],
            "members": [
                {**mm, "exposure": float(mm["exposure"] or 0)} for mm in members
            ],
        })


def _rows(cur: duckdb.DuckDBPyConnection) -> list[dict]:
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def _read_backtest(con: duckdb.DuckDBPyConnection, data: ReportData) -> None:
    """The latest back-test runs (window and out of time), ROC, calibration, cut-offs, weak
    signals and the champion scorecard's card; nothing when `risk backtest` never ran."""
    if not table_exists(con, MARTS, "backtest_runs"):
        return
    view = BacktestView()
    view.runs = _rows(con.execute(
        f"SELECT * FROM {mart('backtest_runs')} ORDER BY ran_at DESC, run_id DESC LIMIT 2"
    ))[::-1]
    if not view.runs:
        return
    latest = view.runs[-1]["run_id"]
    if table_exists(con, MARTS, "backtest_scores"):
        from assets.backtest.run import roc_points

        view.roc = roc_points(con, horizon_months=6, points=25)
    view.calibration = _rows(con.execute(
        f"SELECT * FROM {mart('backtest_calibration')} WHERE run_id = ? ORDER BY ALL", [latest]
    )) if table_exists(con, MARTS, "backtest_calibration") else []
    view.cutoffs = _rows(con.execute(
        f"SELECT * FROM {mart('backtest_cutoffs')} WHERE run_id = ? ORDER BY cutoff", [latest]
    )) if table_exists(con, MARTS, "backtest_cutoffs") else []
    view.weak_signals = _rows(con.execute(
        f"SELECT signal_id, lift, hit_rate_defaulters, hit_rate_performing "
        f"FROM {mart('backtest_signals')} WHERE run_id = ? AND weak ORDER BY signal_id", [latest]
    )) if table_exists(con, MARTS, "backtest_signals") else []
    if table_exists(con, MARTS, "pd_scorecard_models"):
        cards = _rows(con.execute(
            f"SELECT * FROM {mart('pd_scorecard_models')} WHERE status = 'champion' "
            "ORDER BY fitted_at DESC LIMIT 1"
        ))
        view.model = cards[0] if cards else None
    view.engine = (
        f"PD scorecard {view.model['model_version']}" if view.model
        else "expert signal catalog (cold start: no PD scorecard)"
    )
    data.backtest = view


def _read_watchlist(con: duckdb.DuckDBPyConnection, data: ReportData) -> None:
    """The watchlist rows (the report lists them all), a staleness notice, and firm names."""
    rel = data.watchlist_from or mart("watchlist")
    cols = [d[0] for d in con.execute(f"SELECT * FROM {rel} LIMIT 0").description]
    rows = con.execute(f"SELECT * FROM {rel} ORDER BY {watchlist_order(cols)}").fetchall()
    data.watchlist_columns = cols
    data.watchlist_rows = [dict(zip(cols, r, strict=True)) for r in rows]
    as_of = data.as_of.isoformat()
    stale = sorted({str(r.get("as_of_date"))[:10] for r in data.watchlist_rows} - {as_of})
    if stale:
        data.notices.append(
            f"marts.watchlist holds as_of_date {', '.join(stale)}, not {as_of}: "
            "it may not have been rebuilt for this date."
        )
    _enrich_watchlist(con, data)


def _latest_month_end(con: duckdb.DuckDBPyConnection, table: str, as_of: date):
    return con.execute(
        f"SELECT max(CAST(month_end AS DATE)) FROM {mart(table)} "
        "WHERE CAST(month_end AS DATE) <= ?",
        [as_of],
    ).fetchone()[0]


def _loans_with_officer(con: duckdb.DuckDBPyConnection) -> str | None:
    """The loans relation that carries the optional contract column `officer_id`, if any."""
    for schema, table in (("staging", "stg_core_banking__loans"), ("raw", "loans")):
        if table_exists(con, schema, table) and con.execute(
            "SELECT count(*) FROM information_schema.columns WHERE table_schema = ? "
            "AND table_name = ? AND column_name = 'officer_id'",
            [schema, table],
        ).fetchone()[0]:
            return f"{ident(schema)}.{ident(table)}"
    return None


def _enrich_watchlist(con: duckdb.DuckDBPyConnection, data: ReportData) -> None:
    """Per listed firm: name, home branch and its name, industry, exposure (outstanding
    principal at the latest month end <= D) and relationship manager (officer_id of its latest
    loan, when the loans carry the optional column). Missing tables leave the fields empty."""
    ids = f"(SELECT DISTINCT enterprise_id FROM {data.watchlist_from or mart('watchlist')})"
    info: dict[str, dict] = {}

    def put(sql: str, params: list | None = None) -> None:
        cur = con.execute(sql, params or [])
        names = [d[0] for d in cur.description]
        for row in cur.fetchall():
            info.setdefault(row[0], {}).update(
                {k: v for k, v in zip(names[1:], row[1:], strict=True) if v is not None}
            )

    if table_exists(con, MARTS, "dim_enterprise"):
        put(
            "SELECT e.enterprise_id, e.name, e.home_branch_id AS branch_id, "
            "e.industry_code, e.industry_name_zh, e.industry_name_en "
            f"FROM {mart('dim_enterprise')} e WHERE e.enterprise_id IN {ids}"
        )
    elif table_exists(con, "raw", "enterprises"):
        put(f"SELECT enterprise_id, name FROM raw.enterprises WHERE enterprise_id IN {ids}")
    if table_exists(con, MARTS, "fct_loan_month_end"):
        month_end = _latest_month_end(con, "fct_loan_month_end", data.as_of)
        put(
            "SELECT enterprise_id, sum(outstanding_principal) AS exposure, "
            "arg_max(branch_id, outstanding_principal) AS loan_branch_id "
            f"FROM {mart('fct_loan_month_end')} "
            f"WHERE CAST(month_end AS DATE) = ? AND enterprise_id IN {ids} GROUP BY 1",
            [month_end],
        )
    loans = _loans_with_officer(con)
    if loans:
        put(
            "SELECT enterprise_id, arg_max(officer_id, disbursement_date) AS officer_id "
            f"FROM {loans} WHERE officer_id IS NOT NULL AND disbursement_date <= ? "
            f"AND enterprise_id IN {ids} GROUP BY 1",
            [data.as_of],
        )
    if table_exists(con, MARTS, "dim_branch"):
        data.branch_names = {
            b: n for b, n in con.execute(
                f"SELECT branch_id, branch_name FROM {mart('dim_branch')}"
            ).fetchall() if n
        }
    for row in data.watchlist_rows:
        extra = info.get(row.get("enterprise_id"), {})
        branch = extra.get("branch_id") or extra.get("loan_branch_id")
        row.update(
            name=extra.get("name"),
            branch_id=branch,
            branch_name=data.branch_names.get(branch) if branch else None,
            officer_id=extra.get("officer_id"),
            exposure=float(extra["exposure"]) if extra.get("exposure") is not None else None,
            industry_code=extra.get("industry_code"),
            industry_name_zh=extra.get("industry_name_zh"),
            industry_name_en=extra.get("industry_name_en"),
        )
    data.enterprise_names = {
        r["enterprise_id"]: r["name"] for r in data.watchlist_rows if r.get("name")
    }


def _read_changes(con: duckdb.DuckDBPyConnection, data: ReportData) -> None:
    """The refresh before D in watchlist_history: tiers then, and the firms that left since."""
    wh = mart("watchlist_history")
    prev = con.execute(
        f"SELECT max(CAST(as_of_date AS DATE)) FROM {wh} WHERE CAST(as_of_date AS DATE) < ?",
        [data.as_of],
    ).fetchone()[0]
    if prev is None:
        return
    data.previous_as_of = str(prev)
    data.previous_tiers = dict(con.execute(
        f"SELECT enterprise_id, tier FROM {wh} WHERE CAST(as_of_date AS DATE) = ?", [prev]
    ).fetchall())
    now_ids = {r.get("enterprise_id") for r in data.watchlist_rows}
    gone = sorted(set(data.previous_tiers) - now_ids)
    names: dict[str, str] = {}
    if gone and table_exists(con, MARTS, "dim_enterprise"):
        names = dict(con.execute(
            f"SELECT enterprise_id, name FROM {mart('dim_enterprise')} "
            "WHERE list_contains(?, enterprise_id)", [gone]
        ).fetchall())
    data.cleared = [
        {"enterprise_id": e, "name": names.get(e), "tier": data.previous_tiers[e]} for e in gone
    ]


def _read_trends(con: duckdb.DuckDBPyConnection, data: ReportData) -> None:
    """Firms per tier (decision history) and the book's NPL at the last 12 month ends."""
    if table_exists(con, MARTS, "enterprise_decisions"):
        data.tier_by_month = [
            (str(m), str(t), int(n))
            for m, t, n in con.execute(
                "SELECT CAST(month_end AS DATE) AS m, tier, count(*) "
                f"FROM {mart('enterprise_decisions')} "
                "WHERE tier IN ('red', 'amber') AND CAST(month_end AS DATE) <= ? "
                "GROUP BY ALL ORDER BY 1, 2",
                [data.as_of],
            ).fetchall()
        ]
    if "portfolio_monthly" not in data.missing:
        rows = con.execute(
            "SELECT CAST(month_end AS DATE) AS m, coalesce(sum(npl_principal), 0), "
            f"coalesce(sum(outstanding_principal), 0) FROM {mart('portfolio_monthly')} "
            "WHERE CAST(month_end AS DATE) <= ? GROUP BY 1 ORDER BY 1 DESC LIMIT 12",
            [data.as_of],
        ).fetchall()
        data.npl_trend = [(str(m), float(n), float(o)) for m, n, o in reversed(rows)]


def _read_screening_month(con: duckdb.DuckDBPyConnection, data: ReportData) -> None:
    """Applications dated in the month of D's last month end: decisions and the main rules."""
    a = mart("application_screening")
    cols = {c for c, _ in columns(con, "application_screening")}
    if "application_date" not in cols:
        return
    start, end = con.execute(
        "SELECT date_trunc('month', last_day(CAST(? AS DATE) - INTERVAL 1 DAY + INTERVAL 1 DAY)"
        " - INTERVAL (CASE WHEN CAST(? AS DATE) = last_day(CAST(? AS DATE)) THEN 0 ELSE 1 END)"
        " MONTH)::DATE AS s, CAST(? AS DATE) AS e",
        [data.as_of, data.as_of, data.as_of, data.as_of],
    ).fetchone()
    data.screening_window = (str(start), str(end))
    data.screening_month = [
        (str(d), int(n))
        for d, n in con.execute(
            f"SELECT coalesce(decision, '(none)'), count(*) FROM {a} "
            "WHERE application_date BETWEEN ? AND ? GROUP BY 1 ORDER BY 2 DESC, 1",
            [start, end],
        ).fetchall()
    ]
    if "rule_ids" in cols:
        has_dim = table_exists(con, MARTS, "dim_screening_rule")
        reason = "coalesce(r.reason_template, '')" if has_dim else "''"
        join = (
            f"LEFT JOIN {mart('dim_screening_rule')} r ON r.rule_id = h.rule_id" if has_dim
            else ""
        )
        # reasons[i] is the reason of rule_ids[i]: the latest application's reason is an
        # example in the officer's words with real values; the rule's template otherwise.
        paired = "reasons" in cols and dict(columns(con, "application_screening")).get(
            "reasons", ""
        ).endswith("[]")
        example = (
            f"coalesce(arg_max(h.reason, h.application_date), any_value({reason}))"
            if paired else f"any_value({reason})"
        )
        reasons_col = ", unnest(reasons) AS reason" if paired else ""
        aligned = "AND len(rule_ids) = len(reasons) " if paired else ""
        data.screening_rules = [
            (str(rid), str(txt), int(n))
            for rid, txt, n in con.execute(
                f"SELECT h.rule_id, {example} AS txt, count(*) AS n FROM ("
                f"SELECT application_date, unnest(rule_ids) AS rule_id{reasons_col} FROM {a} "
                "WHERE application_date BETWEEN ? AND ? AND decision <> 'approve' "
                f"{aligned}) h "
                f"{join} GROUP BY h.rule_id ORDER BY n DESC, h.rule_id LIMIT 8",
                [start, end],
            ).fetchall()
        ]


def _read_npl(con: duckdb.DuckDBPyConnection, data: ReportData) -> None:
    """NPL ratio and outstanding principal by industry and by branch at the last month end <= D."""
    pm = mart("portfolio_monthly")
    month_end = con.execute(
        f"SELECT max(CAST(month_end AS DATE)) FROM {pm} WHERE CAST(month_end AS DATE) <= ?",
        [data.as_of],
    ).fetchone()[0]
    if month_end is None:
        return
    data.npl_month_end = str(month_end)
    for dim, attr in (("industry_code", "npl_by_industry"), ("branch_id", "npl_by_branch")):
        rows = con.execute(
            f"""SELECT coalesce(CAST({ident(dim)} AS VARCHAR), '(none)') AS k,
                       coalesce(sum(npl_principal) / nullif(sum(outstanding_principal), 0),
                                0) AS ratio,
                       coalesce(sum(outstanding_principal), 0) AS outstanding
                FROM {pm} WHERE CAST(month_end AS DATE) = ?
                GROUP BY 1 ORDER BY ratio DESC, k""",
            [month_end],
        ).fetchall()
        setattr(data, attr, [(str(k), float(r), float(o)) for k, r, o in rows])
    if table_exists(con, MARTS, "dim_industry"):
        data.industry_names = dict(con.execute(
            f"SELECT industry_code, industry_name_zh FROM {mart('dim_industry')}"
        ).fetchall())
    if not data.branch_names and table_exists(con, MARTS, "dim_branch"):
        data.branch_names = {
            b: n for b, n in con.execute(
                f"SELECT branch_id, branch_name FROM {mart('dim_branch')}"
            ).fetchall() if n
        }
