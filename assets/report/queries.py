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


def gather_report_data(con: duckdb.DuckDBPyConnection, as_of: date) -> ReportData:
    """Read what the report shows from the marts; missing tables become notices."""
    data = ReportData(as_of=as_of, generated_at=now())
    for table in REPORT_TABLES:
        if not table_exists(con, MARTS, table):
            data.missing[table] = missing_message(table)
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
    if table_exists(con, MARTS, "application_screening"):
        data.screening_decisions = [
            (str(d), int(n))
            for d, n in con.execute(
                "SELECT coalesce(decision, '(none)'), count(*) "
                f"FROM {mart('application_screening')} GROUP BY 1 ORDER BY 2 DESC, 1"
            ).fetchall()
        ]
    _read_backtest(con, data)
    return data


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
    cols = [c for c, _ in columns(con, "watchlist")]
    rows = con.execute(table_select("watchlist", watchlist_order(cols))).fetchall()
    data.watchlist_columns = cols
    data.watchlist_rows = [dict(zip(cols, r, strict=True)) for r in rows]
    as_of = data.as_of.isoformat()
    stale = sorted({str(r.get("as_of_date"))[:10] for r in data.watchlist_rows} - {as_of})
    if stale:
        data.notices.append(
            f"marts.watchlist holds as_of_date {', '.join(stale)}, not {as_of}: "
            "it may not have been rebuilt for this date."
        )
    if table_exists(con, "raw", "enterprises"):
        data.enterprise_names = dict(
            con.execute(
                "SELECT e.enterprise_id, e.name FROM raw.enterprises e "
                f"JOIN (SELECT DISTINCT enterprise_id FROM {mart('watchlist')}) w "
                "USING (enterprise_id)"
            ).fetchall()
        )


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
