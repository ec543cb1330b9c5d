"""`risk backtest`: the bank measures its own early warning on observed outcomes only.

Inputs, all read from the warehouse (no ground-truth files, so this runs unchanged on a real
bank's warehouse):

* a decisions relation (table/view name or SELECT) with enterprise_id, month_end, pd, tier
  ('red'/'amber'/'green'), listed, signals (VARCHAR[]), optionally feature_points;
* `marts.fct_enterprise_outcomes`: what happened to each firm after each month end;
* optionally `marts.pd_scorecard_bins` (train_share per model feature bin).

Definitions (the marts' column descriptions in `TABLES` say the same):

* Window: month ends passed in; default the last 24 month ends present in the decisions whose
  12-month outcome is observed. Horizon end = last_day(window end + 12 months).
* Population of a month end m: firms with an outcome row at m, not in_default at m, with
  outcome_observed_12m. A population firm-month without a decision row counts as not listed
  and unscored (pd NULL): a firm the early warning never looked at is a miss, not a gap.
* auc_6m/ks_6m, auc_12m/ks_12m: pd against default_within_6m / _12m over the scored population
  firm-months. AUC by the Mann-Whitney rank sum with ties averaged; KS = max |cumulative share
  of bads - cumulative share of goods| over distinct pd values.
* auc_6m_list_order / auc_12m_list_order: the same AUC for the order an officer reads the
  watchlist in (red, amber, the rest, each by pd): hard triggers list a firm red whatever its
  pd, so this is what the engine ranks by; auc_6m is the PD model's own ranking.
* recall_6m (_12m): share of population firm-months defaulting within 6 (12) months that were
  listed. precision_red_6m / precision_amber_6m / precision_listed_6m: share of red / amber /
  listed firm-months defaulting within 6 months.
* Defaulting firms: population firms whose default date is in (window start, horizon end].
  recall_firm: share of them listed at some population month end of the window (necessarily
  before their default).
* performing_listed_share: among firm-months with no default within 12 months, share listed.
  watchlist_book_share: listed / population firm-months; watchlist_size_mean: listed
  firm-months per month end.
* The firm-level figures below read the defaulters' decisions at any month end (inside the
  window or not) within the 12 months before default, the early-warning horizon: a listing
  years earlier is not a warning of this default. Except at `ignored_months`: the month ends
  the engine was fitted on (a scorecard's training window, which ends just before its
  out-of-time window), where its decisions are in-sample, and the history's warm-up, where
  the 12-month look-backs are NULL because the warehouse starts and a model's missing bins
  list firms that are not in trouble. Counting them let a closer fit look like earlier
  warning (seed 80808, 100k, out of time: listed while current 41.7% and a median lead of 8
  months with them, 24.0% and 4 without).
* listed_while_current_share: share of defaulting firms listed at some month end m in the 12
  months before default at which all_loans_current (dpd_max = 0) was true.
* Lead time: months (date_diff 'month') from the first month end in the 12 months before
  default at which the firm was listed to its default date; 0 if listed only at or after the
  default; NULL if never listed. n, median, p25, p75 (interpolated) and share >= 7 months are
  over firms with a lead time; the distribution mart also counts the never-listed.
* Per signal (population firm-months): hit rate among later defaulters (default_within_12m)
  and among performing firm-months, lift = ratio, precision_12m = share of firm-months where it
  fired that defaulted within 12 months, first_fired_share = share of defaulting firms on
  which it fired at the earliest month end any signal fired in the 12 months before default
  (ties count for each), weak = lift < 1.5 (or never fired on a defaulter).
* Calibration: fixed pd bands (0-1%, 1-2%, 2-5%, 5-10%, 10-20%, 20-50%, 50-100%) and pd
  deciles: firm-months, mean pd, observed default_within_12m rate.
* Cut-offs: for each candidate amber cut-off c, "listed" = pd >= c; same figures as above.
* PSI (only when the inputs exist): each model feature's bin shares in the window population
  against train_share in marts.pd_scorecard_bins for model_version; pd against the reference
  month ends' population on the reference's pd deciles. Shares floored at 1e-4.

Marts written in one transaction, each with run_id: backtest_runs, backtest_signals,
backtest_calibration, backtest_cutoffs, backtest_lead_times, backtest_stability are appended per
run; backtest_scores holds the latest run only (24M rows per run: keeping every run would grow
the warehouse by the whole population each time, while the per-run figures are all kept in the
small marts and the scores can be recomputed from the decisions and outcomes of any run).
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Sequence
from datetime import UTC, date, datetime

import duckdb

from assets.backtest import metrics
from assets.backtest.metrics import (
    DEFAULT_CUTOFFS,
    DEFAULTER_ROWS,
    DEFAULTERS,
    LEAD,
    LIST_ORDER_GROUPS,
    PD_GROUPS,
    POP,
)
from assets.core.metadata import table_exists
from assets.core.sql import RUN_CONTEXT, date_literal, ident, literal, text, transaction

OUTCOMES = "marts.fct_enterprise_outcomes"
SCORECARD_BINS = "marts.pd_scorecard_bins"
SCHEMA = "marts"
WINDOW_MONTHS = 24
ROC_POINTS = 50
_REFERENCE = "_bt_reference"
_TEMPS = (POP, PD_GROUPS, LIST_ORDER_GROUPS, DEFAULTERS, DEFAULTER_ROWS, LEAD, _REFERENCE)

_P = "DOUBLE"
Column = tuple[str, str, str]

TABLES: dict[str, tuple[str, list[Column]]] = {
    "backtest_runs": (
        "One row per back-test run: window, versions and every figure (definitions in "
        "assets/backtest/run.py).",
        [
            ("run_id", "VARCHAR", "Run id (UTC start time + random suffix); keys the other marts"),
            ("ran_at", "TIMESTAMP", "When the run started (UTC)"),
            ("window_start", "DATE", "First month end of the window"),
            ("window_end", "DATE", "Last month end of the window"),
            ("month_ends", "DATE[]", "The window's month ends"),
            ("n_month_ends", "INTEGER", "Number of month ends in the window"),
            ("horizon_end", "DATE", "last_day(window_end + 12 months): defaults counted to here"),
            ("model_version", "VARCHAR", "PD model version of the decisions"),
            ("catalog_version", "VARCHAR", "Signal catalog version of the decisions"),
            ("outcomes_as_of", "DATE", "as-of date D the outcomes were built for"),
            (
                "population_firm_months",
                "BIGINT",
                "Firm-months with an outcome row, not in default, 12-month outcome observed",
            ),
            ("population_firms", "BIGINT", "Distinct firms in the population"),
            (
                "firm_months_without_decision",
                "BIGINT",
                "Population firm-months with no decision row (counted unlisted, unscored)",
            ),
            ("scored_firm_months", "BIGINT", "Population firm-months with a pd (AUC/KS base)"),
            ("defaults_6m", "BIGINT", "Population firm-months with default_within_6m"),
            ("defaults_12m", "BIGINT", "Population firm-months with default_within_12m"),
            (
                "defaulting_firms",
                "BIGINT",
                "Population firms defaulting in (window_start, horizon_end]",
            ),
            ("listed_firm_months", "BIGINT", "Population firm-months on the watchlist"),
            ("auc_6m", _P, "AUC of pd vs default_within_6m (rank sum, ties averaged)"),
            ("ks_6m", _P, "KS of pd vs default_within_6m (max gap of cumulative shares)"),
            ("auc_12m", _P, "AUC of pd vs default_within_12m (rank sum, ties averaged)"),
            ("ks_12m", _P, "KS of pd vs default_within_12m"),
            (
                "auc_6m_list_order",
                _P,
                "AUC vs default_within_6m of the order the watchlist is read in: tier "
                "(red, amber, rest; hard triggers are red whatever their pd), then pd",
            ),
            (
                "auc_12m_list_order",
                _P,
                "AUC vs default_within_12m of the watchlist order (tier, then pd)",
            ),
            ("recall_6m", _P, "Share of firm-months defaulting within 6 months that were listed"),
            ("recall_12m", _P, "Share of firm-months defaulting within 12 months that were listed"),
            (
                "recall_firm",
                _P,
                "Share of defaulting firms listed at some window month end before default",
            ),
            ("precision_listed_6m", _P, "Share of listed firm-months defaulting within 6 months"),
            ("precision_red_6m", _P, "Share of red firm-months defaulting within 6 months"),
            ("precision_amber_6m", _P, "Share of amber firm-months defaulting within 6 months"),
            (
                "performing_listed_share",
                _P,
                "Among firm-months with no default within 12 months, share listed",
            ),
            ("watchlist_book_share", _P, "Listed / population firm-months"),
            ("watchlist_size_mean", _P, "Listed firm-months per month end (mean)"),
            (
                "listed_while_current_share",
                _P,
                "Share of defaulting firms listed, within 12 months before default, at a month end "
                "when all loans were current (not counting month ends the engine was fitted on or "
                "the warm-up)",
            ),
            ("lead_time_n", "BIGINT", "Defaulting firms with a lead time"),
            ("lead_time_never_listed", "BIGINT", "Defaulting firms never listed (lead time NULL)"),
            ("lead_time_median", _P, "Median lead time, months"),
            ("lead_time_p25", _P, "25th percentile lead time, months"),
            ("lead_time_p75", _P, "75th percentile lead time, months"),
            ("lead_time_share_ge_7m", _P, "Share of lead times >= 7 months (of lead_time_n)"),
            ("signals_evaluated", "INTEGER", "Signals in backtest_signals for the run"),
            ("weak_signals", "INTEGER", "Signals flagged weak (lift < 1.5)"),
            ("weak_signal_ids", "VARCHAR[]", "Ids of the weak signals"),
            (
                "silent_signal_ids",
                "VARCHAR[]",
                "Catalog signals that never fired on the population (no lift to judge): "
                "expected for triggers about firms already in default, a data problem otherwise",
            ),
            ("reference_start", "DATE", "First reference month end for the score PSI"),
            ("reference_end", "DATE", "Last reference month end for the score PSI"),
            ("score_psi", _P, "PSI of pd: window population vs reference, reference deciles"),
            ("feature_psi_max", _P, "Largest feature PSI against the scorecard's train_share"),
            ("features_shifted", "INTEGER", "Features with PSI >= 0.25"),
        ],
    ),
    "backtest_scores": (
        "Population firm-months of the latest back-test run only (replaced each run: at 24M "
        "rows per run keeping every run is too big; the figures of every run stay in the "
        "other backtest marts).",
        [
            ("run_id", "VARCHAR", "Run that wrote these rows (always the latest)"),
            ("enterprise_id", "VARCHAR", "Firm"),
            ("month_end", "DATE", "Month end of the decision"),
            ("pd", _P, "Predicted 12-month default probability (NULL: no decision row)"),
            ("tier", "VARCHAR", "red / amber / green (NULL: no decision row)"),
            ("listed", "BOOLEAN", "On the watchlist at month_end (FALSE without decision row)"),
            ("default_within_6m", "BOOLEAN", "Firm defaulted within 6 months after month_end"),
            ("default_within_12m", "BOOLEAN", "Firm defaulted within 12 months after month_end"),
            ("dpd30_within_12m", "BOOLEAN", "More than 30 dpd (or default) within 12 months"),
            ("all_loans_current", "BOOLEAN", "dpd_max = 0 at month_end"),
        ],
    ),
    "backtest_signals": (
        "Per run and signal: how well each catalog signal separated later defaulters.",
        [
            ("run_id", "VARCHAR", "Run"),
            ("signal_id", "VARCHAR", "Catalog signal id"),
            ("fired_firm_months", "BIGINT", "Population firm-months where it fired"),
            (
                "fired_defaulter_firm_months",
                "BIGINT",
                "Of those, firm-months defaulting within 12 months",
            ),
            (
                "hit_rate_defaulters",
                _P,
                "Share of firm-months defaulting within 12 months on which it fired",
            ),
            (
                "hit_rate_performing",
                _P,
                "Share of firm-months not defaulting within 12 months on which it fired",
            ),
            ("precision_12m", _P, "Share of firm-months where it fired that defaulted in 12m"),
            (
                "first_fired_share",
                _P,
                "Share of defaulting firms on which it fired first in the 12 months before default "
                "(ties count for each)",
            ),
            ("lift", _P, "hit_rate_defaulters / hit_rate_performing (NULL if the latter is 0)"),
            (
                "weak",
                "BOOLEAN",
                "lift < 1.5, or fired but never on a later defaulter; NULL if it never fired "
                "on the population (e.g. a hard trigger about firms already in default)",
            ),
        ],
    ),
    "backtest_calibration": (
        "Per run: predicted vs observed 12-month default rate by pd band.",
        [
            ("run_id", "VARCHAR", "Run"),
            ("band_kind", "VARCHAR", "'fixed' (0-1%, 1-2%, 2-5%, ...) or 'decile' (of pd)"),
            ("band_order", "INTEGER", "Band number, low pd first"),
            ("band", "VARCHAR", "Band label"),
            ("pd_min", _P, "Lowest pd in the band"),
            ("pd_max", _P, "Highest pd in the band"),
            ("firm_months", "BIGINT", "Scored population firm-months in the band"),
            ("mean_pd", _P, "Mean predicted pd"),
            ("defaults_12m", "BIGINT", "Firm-months defaulting within 12 months"),
            ("observed_rate_12m", _P, "Observed default_within_12m rate"),
        ],
    ),
    "backtest_cutoffs": (
        "Per run: the trade-off of candidate amber cut-offs on pd alone (listed = pd >= cutoff).",
        [
            ("run_id", "VARCHAR", "Run"),
            ("cutoff", _P, "Candidate amber cut-off on pd"),
            ("listed_firm_months", "BIGINT", "Population firm-months with pd >= cutoff"),
            (
                "performing_listed_share",
                _P,
                "Share of firm-months not defaulting within 12 months that would be listed",
            ),
            ("recall_6m", _P, "Share of firm-months defaulting within 6 months listed"),
            ("recall_12m", _P, "Share of firm-months defaulting within 12 months listed"),
            ("precision_6m", _P, "Share of listed firm-months defaulting within 6 months"),
            ("precision_12m", _P, "Share of listed firm-months defaulting within 12 months"),
            ("watchlist_book_share", _P, "Listed / population firm-months"),
            ("watchlist_size_mean", _P, "Listed firm-months per month end (mean)"),
        ],
    ),
    "backtest_lead_times": (
        "Per run: distribution of lead times of the defaulting firms.",
        [
            ("run_id", "VARCHAR", "Run"),
            (
                "lead_time_months",
                "INTEGER",
                "Months from first listing in the 12 months before default to default (0: listed "
                "only at/after default; NULL: never listed; month ends the engine was fitted on "
                "and the warm-up do not count)",
            ),
            ("firms", "BIGINT", "Defaulting firms with this lead time"),
            ("share_of_defaulters", _P, "firms / defaulting firms"),
        ],
    ),
    "backtest_stability": (
        "Per run: population stability index of pd and of each model feature.",
        [
            ("run_id", "VARCHAR", "Run"),
            ("kind", "VARCHAR", "'score' (pd vs reference window) or 'feature' (vs train_share)"),
            ("subject", "VARCHAR", "'pd' or the feature name"),
            ("psi", _P, "sum((a - e) * ln(a / e)) over bins, shares floored at 1e-4"),
            ("bins", "BIGINT", "Bins compared"),
            ("status", "VARCHAR", "stable (< 0.1), moderate (< 0.25) or shifted"),
        ],
    ),
}


# ---------------------------------------------------------------------------------------------
# Helpers


def relation(decisions_sql: str) -> str:
    """A FROM-able relation: a bare table/view name as is, a query in parentheses."""
    s = decisions_sql.strip().rstrip(";")
    if s.startswith("("):
        return s
    if s.split(None, 1)[0].lower() in {"select", "with", "from", "values", "table"}:
        return f"({s})"
    return s


def _columns(con: duckdb.DuckDBPyConnection, rel: str) -> set[str]:
    return {r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {rel} AS _r").fetchall()}


def _exists(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    return table_exists(con, *name.split("."))


def _sql_value(value: object) -> str:
    """literal() plus lists, timestamps and NaN (as NULL)."""
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_sql_value(v) for v in value) + "]"
    if isinstance(value, datetime):
        return f"TIMESTAMP {text(value.isoformat(sep=' '))}"
    if isinstance(value, float) and not math.isfinite(value):
        return "NULL"
    return literal(value)


def _dates_in(values: Sequence[date]) -> str:
    return "(" + ", ".join(date_literal(v) for v in values) + ")"


def _outcomes_as_of(con: duckdb.DuckDBPyConnection) -> date | None:
    """The as-of date D the outcomes were built for: the dbt run context's (the outcomes
    mart stores no per-night column, so a night does not rewrite its settled rows); an
    outcomes mart built by an older version still carries it as a column."""
    if "as_of_date" in _columns(con, OUTCOMES):
        return con.execute(f"SELECT max(as_of_date) FROM {OUTCOMES}").fetchone()[0]
    schema, table = RUN_CONTEXT.split(".")
    if table_exists(con, schema, table):
        return con.execute(f"SELECT max(as_of_date) FROM {RUN_CONTEXT}").fetchone()[0]
    return None


def _rows(cur: duckdb.DuckDBPyConnection) -> list[dict[str, object]]:
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def observed_window(
    con: duckdb.DuckDBPyConnection, decisions_sql: str, months: int = WINDOW_MONTHS
) -> list[date]:
    """The last `months` month ends with decisions whose 12-month outcome is observed."""
    rel = relation(decisions_sql)
    rows = con.execute(
        f"""
        SELECT month_end FROM (
            SELECT DISTINCT month_end FROM {OUTCOMES} WHERE outcome_observed_12m
            INTERSECT
            SELECT DISTINCT month_end FROM {rel} AS d
        )
        ORDER BY month_end DESC
        LIMIT {literal(int(months))}
        """
    ).fetchall()
    return sorted(r[0] for r in rows)


# ---------------------------------------------------------------------------------------------
# Staging


def _stage(
    con: duckdb.DuckDBPyConnection, rel: str, cols: set[str], window: Sequence[date],
    ignored_months: Sequence[date] = (),
) -> None:
    """Population (decision + outcome), defaulting firms and their decisions around default
    (none at `ignored_months`)."""
    signals = "d.signals" if "signals" in cols else "NULL::VARCHAR[]"
    out_of_sample = (
        f"\n              AND month_end NOT IN {_dates_in(ignored_months)}"
        if ignored_months else ""
    )
    in_window = _dates_in(window)
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE {POP} AS
        SELECT o.enterprise_id, o.month_end,
               CAST(d.pd AS DOUBLE) AS pd, CAST(d.tier AS VARCHAR) AS tier,
               coalesce(CAST(d.listed AS BOOLEAN), false) AS listed,
               CAST(d.signals AS VARCHAR[]) AS signals,
               d.enterprise_id IS NOT NULL AS has_decision,
               coalesce(o.default_within_6m, false) AS default_within_6m,
               coalesce(o.default_within_12m, false) AS default_within_12m,
               coalesce(o.dpd30_within_12m, false) AS dpd30_within_12m,
               o.all_loans_current,
               o.next_default_date
        FROM {OUTCOMES} AS o
        LEFT JOIN (
            SELECT enterprise_id, month_end, pd, tier, listed, {signals} AS signals
            FROM {rel} AS d
            WHERE month_end IN {in_window}
        ) AS d ON d.enterprise_id = o.enterprise_id AND d.month_end = o.month_end
        WHERE o.month_end IN {in_window}
          AND NOT coalesce(o.in_default, false)
          AND o.outcome_observed_12m
        """
    )
    # A duplicated decision row would silently count a firm-month twice. Outcomes are unique
    # per key (a dbt test), so comparing two counts is enough; the GROUP BY only runs to name
    # an example.
    (expected,) = con.execute(
        f"""
        SELECT count(*) FROM {OUTCOMES} AS o
        WHERE o.month_end IN {in_window} AND NOT coalesce(o.in_default, false)
          AND o.outcome_observed_12m
        """
    ).fetchone()
    (got,) = con.execute(f"SELECT count(*) FROM {POP}").fetchone()
    if got != expected:
        dup = con.execute(
            f"SELECT enterprise_id, month_end FROM {POP} GROUP BY ALL HAVING count(*) > 1 LIMIT 1"
        ).fetchone()
        raise ValueError(
            f"decisions or outcomes hold more than one row for enterprise {dup[0]} at {dup[1]}"
        )
    start, end = date_literal(min(window)), date_literal(max(window))
    horizon = f"last_day({end} + INTERVAL 12 MONTH)"
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE {DEFAULTERS} AS
        SELECT enterprise_id, min(next_default_date) AS default_date,
               bool_or(listed) AS listed_in_window
        FROM {POP}
        WHERE next_default_date > {start} AND next_default_date <= {horizon}
        GROUP BY enterprise_id
        """
    )
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE {DEFAULTER_ROWS} AS
        SELECT d.enterprise_id, d.month_end, f.default_date,
               coalesce(CAST(d.listed AS BOOLEAN), false) AS listed,
               CAST(d.signals AS VARCHAR[]) AS signals,
               coalesce(o.all_loans_current, false) AS all_loans_current
        FROM (
            SELECT enterprise_id, month_end, listed, {signals} AS signals
            FROM {rel} AS d
            WHERE month_end >= last_day({start} - INTERVAL 12 MONTH)
              AND month_end <= {horizon}{out_of_sample}
        ) AS d
        JOIN {DEFAULTERS} AS f ON f.enterprise_id = d.enterprise_id
        LEFT JOIN {OUTCOMES} AS o
          ON o.enterprise_id = d.enterprise_id AND o.month_end = d.month_end
        """
    )


def _stability(
    con: duckdb.DuckDBPyConnection,
    rel: str,
    cols: set[str],
    model_version: str,
    reference_months: Sequence[date] | None,
) -> list[dict[str, object]]:
    """PSI rows (kind, subject, psi, bins) for the inputs that exist."""
    out: list[dict[str, object]] = []
    if reference_months:
        con.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE {_REFERENCE} AS
            SELECT CAST(d.pd AS DOUBLE) AS pd
            FROM {rel} AS d
            JOIN {OUTCOMES} AS o
              ON o.enterprise_id = d.enterprise_id AND o.month_end = d.month_end
            WHERE d.month_end IN {_dates_in(reference_months)}
              AND NOT coalesce(o.in_default, false) AND d.pd IS NOT NULL
            """
        )
        (edges,) = con.execute(
            f"SELECT quantile_cont(pd, [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]) "
            f"FROM {_REFERENCE}"
        ).fetchone()
        if edges is not None:
            cur = con.execute(metrics.score_psi_sql(_REFERENCE, sorted(set(edges))))
            out += [{"kind": "score", **r} for r in _rows(cur)]
    if "feature_points" in cols and _exists(con, SCORECARD_BINS):
        cur = con.execute(
            metrics.feature_psi_sql(rel, SCORECARD_BINS, model_version) + " ORDER BY subject"
        )
        out += [{"kind": "feature", **r} for r in _rows(cur)]
    for r in out:
        psi = r["psi"]
        r["status"] = (
            None
            if psi is None
            else ("stable" if psi < 0.1 else "moderate" if psi < 0.25 else "shifted")
        )
    return out


# ---------------------------------------------------------------------------------------------
# Writing


def _ensure_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Create the appended marts if missing, add columns added since, refresh descriptions."""
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {ident(SCHEMA)}")
    for table, (description, columns) in TABLES.items():
        name = f"{ident(SCHEMA)}.{ident(table)}"
        cols = ", ".join(f"{ident(c)} {t}" for c, t, _ in columns)
        if table == "backtest_scores":
            con.execute(f"CREATE OR REPLACE TABLE {name} ({cols})")
        else:
            con.execute(f"CREATE TABLE IF NOT EXISTS {name} ({cols})")
            for c, t, _ in columns:
                con.execute(f"ALTER TABLE {name} ADD COLUMN IF NOT EXISTS {ident(c)} {t}")
        con.execute(f"COMMENT ON TABLE {name} IS {text(description)}")
        for c, _, d in columns:
            con.execute(f"COMMENT ON COLUMN {name}.{ident(c)} IS {text(d)}")


def _insert_rows(
    con: duckdb.DuckDBPyConnection, table: str, run_id: str, rows: Sequence[dict[str, object]]
) -> None:
    """Append small Python-side result rows, every value rendered by assets.core.sql."""
    if not rows:
        return
    types = {c: t for c, t, _ in TABLES[table][1]}
    unknown = {k for r in rows for k in r} - set(types)
    if unknown:  # a figure without a column (and a description) would be lost silently
        raise KeyError(f"{table} has no column for {sorted(unknown)}")
    selects = []
    for r in rows:
        values = {"run_id": run_id, **r}
        selects.append(
            "SELECT "
            + ", ".join(
                f"CAST({_sql_value(v)} AS {types[k]}) AS {ident(k)}" for k, v in values.items()
            )
        )
    con.execute(
        f"INSERT INTO {ident(SCHEMA)}.{ident(table)} BY NAME " + " UNION ALL ".join(selects)
    )


def _write(
    con: duckdb.DuckDBPyConnection,
    run_id: str,
    figures: dict[str, object],
    small: dict[str, list[dict[str, object]]],
) -> None:
    """All marts in one transaction: a failed run leaves the previous one intact."""
    with transaction(con):
        _ensure_tables(con)
        _insert_rows(con, "backtest_runs", run_id, [figures])
        for table, rows in small.items():
            _insert_rows(con, table, run_id, rows)
        con.execute(
            f"""
            INSERT INTO {ident(SCHEMA)}.backtest_scores BY NAME
            SELECT {text(run_id)} AS run_id, enterprise_id, month_end, pd, tier, listed,
                   default_within_6m, default_within_12m, dpd30_within_12m, all_loans_current
            FROM {POP}
            """
        )


# ---------------------------------------------------------------------------------------------
# Public API


def run_backtest(
    con: duckdb.DuckDBPyConnection,
    decisions_sql: str,
    *,
    window: Sequence[date] | None = None,
    model_version: str,
    catalog_version: str,
    reference_months: Sequence[date] | None = None,
    ignored_months: Sequence[date] = (),
    cutoffs: Sequence[float] = DEFAULT_CUTOFFS,
    signal_ids: Sequence[str] = (),
    run_id: str | None = None,
) -> dict[str, object]:
    """Back-test the decisions on the warehouse's observed outcomes, append the figures to the
    backtest marts under a new run_id and return the backtest_runs row as a dict.

    `window`: month ends to evaluate (default: `observed_window`); month ends without an
    observed 12-month outcome drop out of the population. `signal_ids`: catalog signals to
    report even if they never fired (they come out weak). `reference_months`: month ends whose
    pd distribution the score PSI compares against (e.g. the training window).
    `ignored_months`: month ends whose decisions the firm-level figures (listed while
    current, lead times, which signal fired first) ignore: those the engine was fitted on
    (in-sample) and the history's warm-up (no engine is meant to decide there).
    """
    rel = relation(decisions_sql)
    cols = _columns(con, rel)
    missing = {"enterprise_id", "month_end", "pd", "tier", "listed"} - cols
    if missing:
        raise ValueError(f"decisions relation lacks columns: {sorted(missing)}")
    month_ends = sorted(set(window)) if window is not None else observed_window(con, rel)
    if not month_ends:
        raise ValueError("no month end in the window (none with an observed 12-month outcome?)")
    ran_at = datetime.now(UTC).replace(tzinfo=None)
    run_id = run_id or f"{ran_at:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"
    try:
        _stage(con, rel, cols, month_ends, ignored_months)
        metrics.stage_pd_groups(con)
        auc_6m, ks_6m = metrics.auc_ks(con, "pos_6m")
        auc_12m, ks_12m = metrics.auc_ks(con, "pos_12m")
        auc_6m_order, _ = metrics.auc_ks(con, "pos_6m", metrics.LIST_ORDER_GROUPS)
        auc_12m_order, _ = metrics.auc_ks(con, "pos_12m", metrics.LIST_ORDER_GROUPS)
        signals = _rows(con.execute(metrics.signals_sql(list(signal_ids))))
        small = {
            "backtest_signals": signals,
            "backtest_calibration": _rows(con.execute(metrics.calibration_sql())),
            "backtest_cutoffs": _rows(con.execute(metrics.cutoffs_sql(cutoffs))),
        }
        firm = metrics.firm_figures(con)
        small["backtest_lead_times"] = _rows(con.execute(metrics.lead_time_sql()))
        stability = _stability(con, rel, cols, model_version, reference_months)
        small["backtest_stability"] = stability
        as_of = _outcomes_as_of(con)
        features = [r["psi"] for r in stability if r["kind"] == "feature" and r["psi"] is not None]
        score = [r["psi"] for r in stability if r["kind"] == "score"]
        weak = [s["signal_id"] for s in signals if s["weak"]]
        silent = [s["signal_id"] for s in signals if s["fired_firm_months"] == 0]
        figures: dict[str, object] = {
            "run_id": run_id,
            "ran_at": ran_at,
            "window_start": month_ends[0],
            "window_end": month_ends[-1],
            "month_ends": month_ends,
            "n_month_ends": len(month_ends),
            "horizon_end": con.execute(
                f"SELECT last_day({date_literal(month_ends[-1])} + INTERVAL 12 MONTH)"
            ).fetchone()[0],
            "model_version": model_version,
            "catalog_version": catalog_version,
            "outcomes_as_of": as_of,
            **metrics.population_figures(con),
            "defaulting_firms": firm.pop("defaulting_firms"),
            "auc_6m": auc_6m,
            "ks_6m": ks_6m,
            "auc_12m": auc_12m,
            "ks_12m": ks_12m,
            "auc_6m_list_order": auc_6m_order,
            "auc_12m_list_order": auc_12m_order,
            **firm,
            "signals_evaluated": len(signals),
            "weak_signals": len(weak),
            "weak_signal_ids": weak,
            "silent_signal_ids": silent,
            "reference_start": min(reference_months) if reference_months else None,
            "reference_end": max(reference_months) if reference_months else None,
            "score_psi": score[0] if score else None,
            "feature_psi_max": max(features) if features else None,
            "features_shifted": sum(p >= 0.25 for p in features) if features else None,
        }
        _write(con, run_id, figures, small)
    finally:
        for t in _TEMPS:
            con.execute(f"DROP TABLE IF EXISTS {t}")
    return figures


HEADLINE = (
    "run_id",
    "window_start",
    "window_end",
    "population_firm_months",
    "defaults_12m",
    "defaulting_firms",
    "auc_6m",
    "auc_12m",
    "ks_12m",
    "recall_6m",
    "recall_firm",
    "precision_red_6m",
    "performing_listed_share",
    "listed_while_current_share",
    "lead_time_median",
    "weak_signals",
    "score_psi",
    "feature_psi_max",
)


def headline(figures: dict[str, object]) -> dict[str, object]:
    """The few figures worth showing as Dagster metadata: rounded floats, ISO dates."""
    out: dict[str, object] = {}
    for k in HEADLINE:
        v = figures.get(k)
        if isinstance(v, float):
            v = round(v, 4)
        elif isinstance(v, date):
            v = v.isoformat()
        out[k] = v
    return out


def backtest_summary(
    con: duckdb.DuckDBPyConnection, run_id: str | None = None
) -> dict[str, object]:
    """`headline` of a stored run (default: the latest); {} when there is none."""
    where = f"WHERE run_id = {text(run_id)}" if run_id else ""
    rows = _rows(
        con.execute(
            f"SELECT * FROM {ident(SCHEMA)}.backtest_runs {where} "
            "ORDER BY ran_at DESC, run_id DESC LIMIT 1"
        )
    )
    return headline(rows[0]) if rows else {}


def roc_points(
    con: duckdb.DuckDBPyConnection, *, horizon_months: int = 12, points: int = ROC_POINTS
) -> list[dict[str, float]]:
    """ROC curve of the latest run (marts.backtest_scores) on an even grid of `points`
    false-positive rates, computed in SQL: [{fpr, tpr, threshold}] from (0, 0) to (1, 1)."""
    if horizon_months not in (6, 12):
        raise ValueError("horizon_months must be 6 or 12")
    y = ident(f"default_within_{horizon_months}m")
    groups = (
        f"(SELECT pd, count(*) AS n, count(*) FILTER (WHERE {y}) AS pos "
        f"FROM {ident(SCHEMA)}.backtest_scores WHERE pd IS NOT NULL GROUP BY pd)"
    )
    return _rows(con.execute(metrics.roc_sql(groups, "pos", points)))
