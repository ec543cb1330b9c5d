"""Early-warning engine: signal hits, risk profile and the signal checks.

Everything is DuckDB SQL generated from the signal catalog (`assets/signals/catalog.yml`), run
inside the warehouse; no table is pulled into Python. The `build_*` functions are plain
(connection, catalog, as-of date) so tests and back-tests run them without Dagster; the assets
and checks below only wire them into the graph and report metadata.

Tables written (schema `marts`): signal_hits (+ signal_hits_history), enterprise_risk_profile.
The decision marts that read them (watchlist_history, watchlist, loan_ifrs9_stage) are dbt
models: dbt_project/models/marts/early_warning/.
"""

from collections.abc import Collection, Iterator
from dataclasses import dataclass
from datetime import date

import duckdb
from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetChecksDefinition,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    AssetSpec,
    MaterializeResult,
    MetadataValue,
    asset,
    asset_check,
    multi_asset,
    multi_asset_check,
)

from assets.core.dbt_project import (
    RECOMPUTE_NETWORK_ENTERPRISES,
    previous_as_of,
    recomputed_from,
)
from assets.core.metadata import column_schema, markdown_table, table_exists
from assets.core.month_ends import add_months, last_month_end
from assets.core.partitions import AS_OF_PARTITIONS, SINGLE_RUN
from assets.core.resources import RiskWarehouse
from assets.core.sql import date_literal, ident, text, transaction
from assets.dbt_assets import mart_key
from assets.ingestion_assets import raw_asset_key as raw_key
from assets.scorecard.sql import FEATURE_MART
from assets.scorecard_assets import PD_SCORECARD_KEY
from assets.signals.catalog import (
    DIMENSIONS,
    Catalog,
    Signal,
    load_catalog,
)
from assets.signals.decisions import (
    Engine,
    build_decision_history,
    current_engine,
    decisions_sql,
    features_sql,
    signal_hits_rows_sql,
)

GROUP = "early_warning"
OWNERS = ["team:credit-risk"]
KINDS = {"duckdb", "python"}

FEATURES_KEY = mart_key("fct_enterprise_month_end")
#: other firms on red by their PD, read beside the features (decisions.features_sql)
NETWORK_PD_KEY = mart_key("fct_enterprise_month_end_network_pd")
LOANS_KEY = mart_key("fct_loan_month_end")
RAW_LOANS_KEY = raw_key("loans")
RAW_APPLICATIONS_KEY = raw_key("loan_applications")
# The Python-built marts (dbt knows them as sources: models/marts/early_warning/).
SIGNAL_HITS_KEY = AssetKey(["marts", "signal_hits"])
PROFILE_KEY = AssetKey(["marts", "enterprise_risk_profile"])

CATALOG = load_catalog()


# ---------------------------------------------------------------------------------------------
# Plain SQL builders (no Dagster)


def monitored_enterprises_sql(con: duckdb.DuckDBPyConnection, catalog: Catalog, as_of: date) -> str:
    """Enterprise ids monitored as of D: an outstanding loan (balance or arrears at the last
    month end, or disbursed since) or an application dated within the pending window."""
    me, d = date_literal(last_month_end(as_of)), date_literal(as_of)
    parts = []
    if table_exists(con, "marts", "fct_loan_month_end"):
        parts.append(
            "SELECT enterprise_id FROM marts.fct_loan_month_end "
            f"WHERE month_end = {me} AND (outstanding_principal > 0 OR dpd > 0)"
        )
    if table_exists(con, "raw", "loans"):
        parts.append(
            "SELECT enterprise_id FROM raw.loans "
            f"WHERE disbursement_date > {me} AND disbursement_date <= {d}"
        )
    if table_exists(con, "raw", "loan_applications"):
        parts.append(
            "SELECT enterprise_id FROM raw.loan_applications WHERE application_date <= "
            f"{d} AND application_date > {d} - INTERVAL {catalog.pending_application_days} DAY"
        )
    if not parts:
        return "SELECT NULL::VARCHAR AS enterprise_id WHERE FALSE"
    return " UNION ".join(parts)


@dataclass(frozen=True)
class Reuse:
    """A night's licence to carry rows over: the rows of `previous` (the as-of date the build
    was built for) stand for D's where tonight's dbt step recomputed nothing of the firm's
    facts: its key month end is before `from_month_end` and it is not among the firms
    recomputed whole (main.dbt_recompute_network_enterprises)."""

    previous: date
    from_month_end: date


def _decided_by(engine: Engine, catalog: Catalog) -> str:
    """SQL predicate: a stored row (engine, model_version, catalog_version) was decided by
    this engine and catalog version, so a night may keep it."""
    version = text(engine.model_version) if engine.model_version else "NULL"
    return (f"(engine IS NOT DISTINCT FROM {text(engine.name)} AND model_version IS NOT "
            f"DISTINCT FROM {version} AND catalog_version IS NOT DISTINCT FROM "
            f"{text(catalog.version)})")


def reuse_for(
    con: duckdb.DuckDBPyConnection, catalog: Catalog, dates: list[date],
    current_date: date | None,
) -> Reuse | None:
    """Whether tonight's signal hits and profiles may carry over the previous as-of date's
    rows (`Reuse`), or must all be decided (None): only for one date, the current one, after
    an incremental dbt step (`recomputed_from`), when both histories hold that date's rows and
    every profile row of it was decided by tonight's engine and catalog version. A profile row
    and a hit are pure functions of the firm's feature row at its key month end, as is the
    decision window (`_decide_window_incrementally`, the same rule)."""
    if len(set(dates)) != 1 or current_date != dates[0]:
        return None
    from_month_end = recomputed_from(con, current_date)
    if from_month_end is None:
        return None
    if not all(table_exists(con, "marts", f"{t}_history") for t in (SIGNAL_HITS, RISK_PROFILE)):
        return None
    previous = previous_as_of(con)
    if previous is None:
        return None
    stored, other = con.execute(
        "SELECT count(*), count(*) FILTER (WHERE NOT "
        f"{_decided_by(current_engine(con), catalog)}) "
        f"FROM marts.{RISK_PROFILE}_history WHERE as_of_date = {date_literal(previous)}"
    ).fetchone()
    if not stored or other:
        return None
    return Reuse(previous, from_month_end)


def _keep_previous(con: duckdb.DuckDBPyConnection, reuse: Reuse) -> None:
    """`_ew_kept`: the firms of `_ew_keys` whose profile row of the previous as-of date has
    the same key month end, which tonight's dbt step did not recompute, and whose stored
    signal ids are the signal hits stored for that date (the two were written together)."""
    p = date_literal(reuse.previous)
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE _ew_kept AS
        WITH hits AS (
            SELECT enterprise_id, list_sort(list(signal_id)) AS ids
            FROM marts.{SIGNAL_HITS}_history WHERE as_of_date = {p} GROUP BY enterprise_id
        )
        SELECT k.enterprise_id
        FROM _ew_keys AS k
        JOIN marts.{RISK_PROFILE}_history AS r
          ON r.as_of_date = {p} AND r.enterprise_id = k.enterprise_id
         AND r.feature_month_end IS NOT DISTINCT FROM k.month_end
        LEFT JOIN hits AS h ON h.enterprise_id = k.enterprise_id
        WHERE (k.month_end IS NULL OR k.month_end < {date_literal(reuse.from_month_end)})
          AND k.enterprise_id NOT IN (SELECT enterprise_id FROM {RECOMPUTE_NETWORK_ENTERPRISES})
          AND list_sort(r.signals) = coalesce(h.ids, []::VARCHAR[])
        """
    )


def _carried_over(
    con: duckdb.DuckDBPyConnection, rows: str, history: str, reuse: Reuse | None
) -> str:
    """The kept firms' rows of `history` for the previous as-of date, dated D (the one date
    of `_ew_keys`), in the columns of the temp table `rows`; '' without `reuse`."""
    if reuse is None:
        return ""
    cols = [r[0] for r in con.execute(f"DESCRIBE {rows}").fetchall()]
    select = ", ".join(
        "k.as_of_date" if c == "as_of_date" else f"h.{ident(c)}" for c in cols
    )
    return (
        f" UNION ALL SELECT {select} FROM {history} AS h "
        "JOIN _ew_keys AS k ON k.enterprise_id = h.enterprise_id "
        f"WHERE h.as_of_date = {date_literal(reuse.previous)} "
        "AND h.enterprise_id IN (SELECT enterprise_id FROM _ew_kept)"
    )


def _prepare_dates(
    con: duckdb.DuckDBPyConnection, catalog: Catalog, dates: list[date],
    reuse: Reuse | None = None,
) -> None:
    """Temp tables of the as-of dates, in one pass: `_ew_keys` (as_of_date, enterprise_id,
    month_end: each firm monitored on D with its latest feature month end on or before D,
    NULL when it has none), `_ew_features` (one feature row per distinct firm and month end
    of the keys: dates that share a month end share the work) and `_ew_hits` (their signal
    hits). A decision is a pure function of the feature row, so D's rows are the keys' rows.
    With `reuse`, `_ew_kept` lists the firms whose rows of the previous as-of date stand for
    D's (`_keep_previous`), and the features and hits are those of the other firms only."""
    pops = " UNION ALL ".join(
        f"SELECT DISTINCT {date_literal(d)} AS as_of_date, enterprise_id "
        f"FROM ({monitored_enterprises_sql(con, catalog, d)})"
        for d in sorted(set(dates))
    )
    if len(set(dates)) == 1:  # a night: each firm's latest month end by one aggregate
        # (the as-of join sorts every feature row first: at 1M firms 16 s against 1.6 s)
        d = date_literal(dates[0])
        con.execute(f"CREATE OR REPLACE TEMP TABLE _ew_population AS {pops}")
        con.execute(
            "CREATE OR REPLACE TEMP TABLE _ew_keys AS "
            "SELECT p.as_of_date, p.enterprise_id, f.month_end FROM _ew_population AS p "
            "LEFT JOIN (SELECT enterprise_id, max(month_end) AS month_end "
            f"FROM {FEATURE_MART} WHERE month_end <= {d} AND enterprise_id IN "
            "(SELECT enterprise_id FROM _ew_population) GROUP BY enterprise_id) AS f "
            "ON f.enterprise_id = p.enterprise_id"
        )
    else:
        con.execute(
            "CREATE OR REPLACE TEMP TABLE _ew_keys AS "
            f"SELECT p.as_of_date, p.enterprise_id, f.month_end FROM ({pops}) AS p "
            f"ASOF LEFT JOIN (SELECT enterprise_id, month_end FROM {FEATURE_MART}) AS f "
            "ON p.enterprise_id = f.enterprise_id AND p.as_of_date >= f.month_end"
        )
    todo = "_ew_keys"
    if reuse is not None:
        _keep_previous(con, reuse)
        con.execute("CREATE OR REPLACE TEMP TABLE _ew_todo AS SELECT * FROM _ew_keys "
                    "WHERE enterprise_id NOT IN (SELECT enterprise_id FROM _ew_kept)")
        todo = "_ew_todo"
    first, last = con.execute(f"SELECT min(month_end), max(month_end) FROM {todo}").fetchone()
    firms = f"SELECT DISTINCT enterprise_id FROM {todo}"
    if first is None:  # no monitored firm has a feature row yet
        rows = features_sql(con, catalog, end=max(dates), latest_only=True, enterprises_sql=firms)
        rows = f"SELECT * FROM ({rows}) WHERE FALSE"
    else:
        rows = features_sql(con, catalog, end=last, start=first, enterprises_sql=firms)
    # Firms with no feature row keep one row of NULL features, as the engine has always
    # decided them (green unless a hard trigger could fire without features).
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _ew_features AS "
        "SELECT k.enterprise_id, f.* EXCLUDE (enterprise_id) "
        f"FROM (SELECT DISTINCT enterprise_id, month_end FROM {todo}) AS k "
        f"LEFT JOIN ({rows}) AS f "
        "ON f.enterprise_id = k.enterprise_id AND f.month_end = k.month_end"
    )
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _ew_hits AS "
        + signal_hits_rows_sql(catalog, "_ew_features")
    )


def _ensure_history(con: duckdb.DuckDBPyConnection, history: str, source: str) -> None:
    """`history` (per as-of date) shaped like `source`; a history written by an older version
    gains the new columns (NULL for its rows)."""
    con.execute(f"CREATE TABLE IF NOT EXISTS {history} AS SELECT * FROM {source} WHERE FALSE")
    have = {r[0] for r in con.execute(f"DESCRIBE {history}").fetchall()}
    for name, typ, *_ in con.execute(f"DESCRIBE {source}").fetchall():
        if name not in have:
            con.execute(f"ALTER TABLE {history} ADD COLUMN {ident(name)} {typ}")


def _write_dates(
    con: duckdb.DuckDBPyConnection, rows: str, current: str, dates: list[date],
    current_date: date | None,
) -> dict[date, int]:
    """The dates' rows (temp table `rows`, with as_of_date) replace those dates' rows of
    `<current>_history` in one transaction; `current_date`'s rows (the current as-of date,
    when among them) also replace the current mart `current`, so a run for past dates leaves
    the current mart as it was. Returns the row count per date."""
    history = f"{current}_history"
    listed = ", ".join(date_literal(d) for d in sorted(set(dates)))
    _ensure_history(con, history, rows)
    with transaction(con):
        con.execute(f"DELETE FROM {history} WHERE as_of_date IN ({listed})")
        con.execute(f"INSERT INTO {history} BY NAME SELECT * FROM {rows}")
        if current_date is not None:
            con.execute(
                f"CREATE OR REPLACE TABLE {current} AS SELECT * FROM {rows} "
                f"WHERE as_of_date = {date_literal(current_date)}"
            )
        else:
            con.execute(f"CREATE TABLE IF NOT EXISTS {current} AS SELECT * FROM {rows} WHERE FALSE")
    counts = dict(con.execute(f"SELECT as_of_date, count(*) FROM {rows} GROUP BY 1").fetchall())
    return {d: counts.get(d, 0) for d in dates}


#: The marts `build_early_warning_for_dates` writes (schema `marts`), by name.
SIGNAL_HITS = "signal_hits"
RISK_PROFILE = "enterprise_risk_profile"


def _write_signal_hits(
    con: duckdb.DuckDBPyConnection, catalog: Catalog, dates: list[date],
    current_date: date | None, reuse: Reuse | None,
) -> dict[date, int]:
    """Signal hits of the firms monitored on each date, from the prepared temp tables
    (`_prepare_dates`): the dates' rows of marts.signal_hits_history (so later refreshes can
    tell new hits from old) and, for `current_date` when it is among them, marts.signal_hits.
    Returns rows per date."""
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _ew_new_hits AS "
        "SELECT k.as_of_date, h.enterprise_id, h.signal_id, h.dimension, h.severity, h.stage, "
        "h.reason, h.topic, h.hard_tier IS NOT NULL AS hard_trigger, h.month_end, "
        f"{text(catalog.version)} AS catalog_version "
        "FROM _ew_keys AS k JOIN _ew_hits AS h ON h.enterprise_id = k.enterprise_id "
        "AND h.month_end IS NOT DISTINCT FROM k.month_end"
    )
    kept = _carried_over(con, "_ew_new_hits", "marts.signal_hits_history", reuse)
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _ew_signal_hits AS "
        f"SELECT * FROM (SELECT * FROM _ew_new_hits{kept}) "
        "ORDER BY as_of_date, enterprise_id, signal_id"
    )
    return _write_dates(con, "_ew_signal_hits", "marts.signal_hits", dates, current_date)


def _write_risk_profiles(
    con: duckdb.DuckDBPyConnection, catalog: Catalog, dates: list[date],
    current_date: date | None, reuse: Reuse | None,
) -> dict[date, int]:
    """One decision per firm monitored on each date (its latest feature month end), from the
    prepared temp tables: PD and tier by the champion scorecard, or the expert catalog in
    cold start, hard triggers, dimension scores, risk_score, signals and merged reasons; each
    distinct firm and month end is decided once for all the dates. The rows go to
    marts.enterprise_risk_profile_history and, for `current_date` when it is among them, to
    marts.enterprise_risk_profile. Returns rows per date."""
    engine = current_engine(con)
    decided = decisions_sql(con, catalog, engine, "_ew_features", "_ew_hits")
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE _ew_new_profile AS
        SELECT d.enterprise_id, k.as_of_date,
            {", ".join(f"d.{x}_score" for x in DIMENSIONS)},
            d.risk_score, d.tier, d.signals, d.reasons, d.n_high, d.n_medium, d.n_low,
            d.month_end AS feature_month_end, f.industry_code,
            {text(catalog.version)} AS catalog_version,
            d.pd, d.engine, d.model_version, d.hard_triggers, d.reason_list
        FROM _ew_keys AS k
        JOIN ({decided}) AS d
          ON d.enterprise_id = k.enterprise_id AND d.month_end IS NOT DISTINCT FROM k.month_end
        LEFT JOIN _ew_features AS f
          ON f.enterprise_id = d.enterprise_id AND f.month_end IS NOT DISTINCT FROM d.month_end
        """
    )
    kept = _carried_over(
        con, "_ew_new_profile", "marts.enterprise_risk_profile_history", reuse
    )
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _ew_profile AS "
        f"SELECT * FROM (SELECT * FROM _ew_new_profile{kept}) "
        "ORDER BY as_of_date, risk_score DESC, enterprise_id"
    )
    return _write_dates(
        con, "_ew_profile", "marts.enterprise_risk_profile", dates, current_date
    )


_WRITERS = {SIGNAL_HITS: _write_signal_hits, RISK_PROFILE: _write_risk_profiles}


def build_early_warning_for_dates(
    con: duckdb.DuckDBPyConnection, catalog: Catalog, dates: list[date],
    current_date: date | None, marts: Collection[str] = (SIGNAL_HITS, RISK_PROFILE),
) -> dict[str, dict[date, int]]:
    """The signal hits and the risk profiles of the dates (`marts`: either or both) from one
    preparation: the feature rows of every monitored firm are the expensive part and both
    marts read the same ones, so a night prepares them once. Returns rows per date of each
    mart written, by mart name."""
    unknown = set(marts) - set(_WRITERS)
    if unknown:
        raise ValueError(f"unknown early-warning marts: {sorted(unknown)}")
    con.execute("CREATE SCHEMA IF NOT EXISTS marts")
    # both marts or neither: a firm's stored hits and profile are carried over together
    reuse = reuse_for(con, catalog, dates, current_date) if set(marts) == set(_WRITERS) else None
    _prepare_dates(con, catalog, dates, reuse)
    # signal hits first: a failed profile leaves them written, as the two steps did
    return {m: _WRITERS[m](con, catalog, dates, current_date, reuse)
            for m in _WRITERS if m in marts}


# No "decided on D" column: a decision at a month end is a pure function of the facts then,
# so a night that re-decides its window writes the same rows and the publish keeps them. (A
# warehouse built before keeps its old decided_as_of column, NULL in the rows written since.)
DECISIONS_DDL = """
CREATE TABLE IF NOT EXISTS marts.enterprise_decisions (
    enterprise_id VARCHAR NOT NULL, month_end DATE NOT NULL, engine VARCHAR,
    model_version VARCHAR, pd DOUBLE, tier VARCHAR, listed BOOLEAN, risk_score INTEGER,
    signals VARCHAR[], hard_triggers VARCHAR[], reasons VARCHAR, reason_list VARCHAR[],
    catalog_version VARCHAR,
    PRIMARY KEY (enterprise_id, month_end)
)"""


def build_decision_window(
    con: duckdb.DuckDBPyConnection, catalog: Catalog, as_of: date, current: bool = True
) -> int:
    """marts.enterprise_decisions for the firms monitored on D at each of the last
    `status_window_months` month ends on or before D, decided in one pass with what was known
    at each month end. Statuses and the exit rule of the watchlist are read from these rows,
    so they follow the facts, not the refreshes that happened to run. For the current as-of
    date the window's month ends are replaced in one transaction (older rows stay); for a
    past date only its firms' rows are upserted (a decision at a month end is a pure function
    of the facts then, so the current firms' rows do not change)."""
    return _decide_windows(con, catalog, [as_of], replace_window=current)


def build_decision_windows(
    con: duckdb.DuckDBPyConnection, catalog: Catalog, dates: list[date], current: date
) -> dict[date, int]:
    """The decision windows of several as-of dates (a backfill): the past dates' firms and
    month ends are decided together in one pass and upserted; the current date, when among
    them, replaces its window as a nightly run does. Returns the rows decided per date's pass."""
    past = sorted(d for d in dates if d != current)
    out: dict[date, int] = {}
    if past:
        n = _decide_windows(con, catalog, past, replace_window=False)
        out.update(dict.fromkeys(past, n))
    if current in dates:
        out[current] = _decide_windows(con, catalog, [current], replace_window=True)
    return out


def _decide_window_incrementally(
    con: duckdb.DuckDBPyConnection, catalog: Catalog, as_of: date, engine: Engine
) -> int | None:
    """D's window re-decided only where the facts or the population changed: a decision is a
    pure function of a firm's facts at a month end (with the engine and catalog), so a stored
    row whose facts tonight's dbt step did not recompute is what a full pass would write.
    Rows of firms no longer monitored on D leave the window; rows of month ends from the
    plan's first recomputed one, of the firms recomputed whole, and of (firm, month end)
    pairs not yet stored are decided. None (decide the whole window) when the facts may all
    have changed or a stored row of the window is from another engine or catalog version.
    Returns the window's rows, as the full pass does."""
    from_month_end = recomputed_from(con, as_of)
    if from_month_end is None:
        return None
    months = catalog.status_window_months - 1
    start, end = add_months(last_month_end(as_of), -months), last_month_end(as_of)
    window = f"month_end BETWEEN {date_literal(start)} AND {date_literal(end)}"
    (other,) = con.execute(
        f"SELECT count(*) FROM marts.enterprise_decisions WHERE {window} AND NOT "
        f"{_decided_by(engine, catalog)}").fetchone()
    if other:
        return None
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _dw_monitored AS SELECT DISTINCT enterprise_id FROM ("
        f"{monitored_enterprises_sql(con, catalog, as_of)}) WHERE enterprise_id IS NOT NULL")
    # a stored row (alias d) kept as it is: a monitored firm's, and not recomputed tonight
    kept = (
        f"d.{window} AND d.enterprise_id IN (SELECT enterprise_id FROM _dw_monitored) "
        f"AND d.month_end < {date_literal(from_month_end)} "
        f"AND d.enterprise_id NOT IN (SELECT enterprise_id FROM {RECOMPUTE_NETWORK_ENTERPRISES})"
    )
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _dw_todo AS "
        "SELECT f.enterprise_id, f.month_end FROM marts.fct_enterprise_month_end AS f "
        f"WHERE f.{window} AND f.enterprise_id IN (SELECT enterprise_id FROM _dw_monitored) "
        "AND NOT EXISTS (SELECT 1 FROM marts.enterprise_decisions AS d WHERE "
        f"d.enterprise_id = f.enterprise_id AND d.month_end = f.month_end AND {kept})")
    rel = build_decision_history(
        con, catalog, engine, start=start, end=end, population_sql="SELECT * FROM _dw_todo"
    )
    with transaction(con):
        con.execute(
            f"DELETE FROM marts.enterprise_decisions AS d WHERE d.{window} AND NOT ({kept})")
        _insert_decisions(con, catalog, rel, replace=False)
    return con.execute(
        f"SELECT count(*) FROM marts.enterprise_decisions WHERE {window}").fetchone()[0]


def _insert_decisions(
    con: duckdb.DuckDBPyConnection, catalog: Catalog, rel: str, *, replace: bool
) -> None:
    con.execute(
        f"INSERT {'OR REPLACE ' if replace else ''}INTO marts.enterprise_decisions "
        "BY NAME SELECT enterprise_id, month_end, engine, "
        "model_version, pd, tier, listed, risk_score, signals, hard_triggers, reasons, "
        f"reason_list, {text(catalog.version)} AS catalog_version FROM {rel}"
    )


def _decide_windows(
    con: duckdb.DuckDBPyConnection, catalog: Catalog, dates: list[date], *, replace_window: bool
) -> int:
    """One pass over the union of the dates' windows: (firm monitored on D, month end in D's
    window) for every D. The current date's window only where its facts changed, when
    tonight's dbt step recomputed only part of them (`_decide_window_incrementally`)."""
    con.execute("CREATE SCHEMA IF NOT EXISTS marts")
    con.execute(DECISIONS_DDL)
    if replace_window and len(dates) == 1:
        n = _decide_window_incrementally(con, catalog, dates[0], current_engine(con))
        if n is not None:
            return n
    months = catalog.status_window_months - 1
    windows = [(add_months(last_month_end(d), -months), last_month_end(d), d) for d in dates]
    population = " UNION ".join(
        "SELECT f.enterprise_id, f.month_end FROM marts.fct_enterprise_month_end AS f "
        f"WHERE f.month_end BETWEEN {date_literal(lo)} AND {date_literal(hi)} "
        f"AND f.enterprise_id IN ({monitored_enterprises_sql(con, catalog, d)})"
        for lo, hi, d in windows
    )
    start, end = min(w[0] for w in windows), max(w[1] for w in windows)
    rel = build_decision_history(
        con, catalog, current_engine(con), start=start, end=end, population_sql=population
    )
    with transaction(con):
        if replace_window:
            con.execute(
                "DELETE FROM marts.enterprise_decisions WHERE month_end BETWEEN "
                f"{date_literal(start)} AND {date_literal(end)}"
            )
        _insert_decisions(con, catalog, rel, replace=not replace_window)
    return con.execute(f"SELECT count(*) FROM {rel}").fetchone()[0]


def run_early_warning(con: duckdb.DuckDBPyConnection, catalog: Catalog, as_of: date) -> None:
    """The Python part of the engine for one as-of date (tests, back-tests): signal hits and
    the risk profile from one preparation, and the decision window. The decision marts that
    read them are dbt models (tag `decisions`)."""
    build_early_warning_for_dates(con, catalog, [as_of], as_of)
    build_decision_window(con, catalog, as_of)


# ---------------------------------------------------------------------------------------------
# Signal checks: one WARN check per catalog signal on the feature mart


def expected_signal_rates(con: duckdb.DuckDBPyConnection) -> dict[str, float]:
    """Each signal's hit rate among monitored firm-months in the latest back-test run."""
    if not (table_exists(con, "marts", "backtest_signals")
            and table_exists(con, "marts", "backtest_runs")):
        return {}
    rows = con.execute(
        "SELECT s.signal_id, s.fired_firm_months / r.population_firm_months "
        "FROM marts.backtest_signals AS s JOIN marts.backtest_runs AS r USING (run_id) "
        "WHERE r.run_id = (SELECT run_id FROM marts.backtest_runs ORDER BY ran_at DESC, "
        "run_id DESC LIMIT 1) AND r.population_firm_months > 0"
    ).fetchall()
    return {sid: float(rate) for sid, rate in rows}


def signal_band_verdict(
    hits: int, monitored: int, expected_rate: float | None, band: float, min_gap: int = 5
) -> tuple[bool, str]:
    """(passed, why): a signal's hit count is normal when its rate lies within
    [expected / band, expected x band], or differs from the expected count by fewer than
    `min_gap` firms (small books move by a few firms from night to night)."""
    if expected_rate is None:
        return True, "no expected band yet: run `risk backtest`"
    if monitored == 0:
        return True, "no monitored firms"
    expected = expected_rate * monitored
    lo, hi = expected / band, expected * band
    if lo <= hits <= hi or abs(hits - expected) < min_gap:
        return True, f"{hits} hits within the expected band {lo:.0f}-{hi:.0f}"
    side = "above" if hits > hi else "below"
    return False, (
        f"{hits} hits, {side} the expected band {lo:.0f}-{hi:.0f} (back-test rate "
        f"{expected_rate:.2%} of {monitored} monitored firms): a data problem or a real shock"
    )


def signal_check_summary(
    con: duckdb.DuckDBPyConnection,
    catalog: Catalog,
    signal: Signal,
    as_of: date,
    examples: int = 10,
) -> dict:
    """Hits of one signal as of D (read from marts.signal_hits, not recomputed), new ones
    since the previous refresh (marts.signal_hits_history), top examples with reasons, and
    the verdict against the signal's expected band from the latest back-test."""
    sid = text(signal.id)
    monitored = con.execute(
        "SELECT count(*) FROM marts.enterprise_risk_profile WHERE as_of_date = "
        f"{date_literal(as_of)}"
    ).fetchone()[0] if table_exists(con, "marts", "enterprise_risk_profile") else 0
    if table_exists(con, "marts", "signal_hits_history"):
        prev = (
            f"SELECT enterprise_id FROM marts.signal_hits_history WHERE signal_id = {sid} "
            "AND as_of_date = (SELECT max(as_of_date) FROM marts.signal_hits_history WHERE "
            f"as_of_date < {date_literal(as_of)})"
        )
    else:
        prev = "SELECT NULL::VARCHAR AS enterprise_id WHERE FALSE"
    now = f"SELECT * FROM marts.signal_hits WHERE signal_id = {sid}"
    hits, new = con.execute(
        f"SELECT count(*), count(*) FILTER (WHERE enterprise_id NOT IN ({prev})) FROM ({now})"
    ).fetchone()
    rows = con.execute(
        f"SELECT enterprise_id, enterprise_id NOT IN ({prev}) AS new, reason FROM ({now}) "
        f"ORDER BY new DESC, enterprise_id LIMIT {int(examples)}"
    ).fetchall()
    expected = expected_signal_rates(con).get(signal.id)
    passed, why = signal_band_verdict(hits, monitored, expected, catalog.signal_check_band)
    return {"hits": hits, "new_hits": new, "examples": rows, "monitored": monitored,
            "expected_rate": expected, "passed": passed, "verdict": why}


def _signal_check_spec(signal: Signal) -> AssetCheckSpec:
    return AssetCheckSpec(
        f"signal_{signal.id}",
        asset=SIGNAL_HITS_KEY,
        description=(
            f"[{signal.dimension}/{signal.stage}/{signal.severity}] {signal.description} "
            "WARN when its hit rate leaves the expected band from the latest back-test "
            "(catalog signal_check_band): a sudden jump or collapse."
        ),
        blocking=False,
    )


@multi_asset_check(specs=[_signal_check_spec(s) for s in CATALOG.signals])
def signal_checks(context: AssetCheckExecutionContext, warehouse: RiskWarehouse):
    """One check per catalog signal, all in one step (a step per signal costs the run more
    than the checks' queries)."""
    with warehouse.connect(read_only=True) as con:
        for signal in CATALOG.signals:
            s = signal_check_summary(con, CATALOG, signal, warehouse.as_of_date)
            yield AssetCheckResult(
                check_name=f"signal_{signal.id}",
                asset_key=SIGNAL_HITS_KEY,
                passed=s["passed"],
                severity=AssetCheckSeverity.WARN,
                description=s["verdict"],
                metadata={
                    "hits": s["hits"],
                    "new_hits": s["new_hits"],
                    "monitored_firms": s["monitored"],
                    "expected_rate": MetadataValue.float(s["expected_rate"] or 0.0),
                    "as_of_date": warehouse.as_of_date.isoformat(),
                    "catalog_version": CATALOG.version,
                    "examples": MetadataValue.md(
                        markdown_table(s["examples"], ["enterprise_id", "new", "reason"])
                    ),
                },
            )


# ---------------------------------------------------------------------------------------------
# Blocking data checks: broken inputs stop the watchlist from publishing


def loan_mart_problems(con: duckdb.DuckDBPyConnection, as_of: date) -> dict[str, int]:
    """Counts of broken-data conditions in marts.fct_loan_month_end as of D."""
    d, me = date_literal(as_of), date_literal(last_month_end(as_of))
    loan_rows, neg_dpd, neg_out = con.execute(
        f"SELECT count(*), count(*) FILTER (WHERE dpd < 0), "
        f"count(*) FILTER (WHERE outstanding_principal < 0) "
        f"FROM marts.fct_loan_month_end WHERE month_end <= {d}"
    ).fetchone()
    raw_loans = 0
    if table_exists(con, "raw", "loans"):
        raw_loans = con.execute(
            f"SELECT count(*) FROM raw.loans WHERE disbursement_date <= {me}"
        ).fetchone()[0]
    return {
        "loan_rows": loan_rows,
        "raw_loans_disbursed": raw_loans,
        "negative_dpd": neg_dpd,
        "negative_outstanding": neg_out,
    }


@multi_asset_check(
    specs=[
        AssetCheckSpec(
            "loan_rows_present_as_of",
            asset=LOANS_KEY,
            blocking=True,
            description="ERROR (blocks the watchlist): no loan rows as of D although raw.loans "
            "has loans disbursed by the last month end.",
        ),
        AssetCheckSpec(
            "dpd_not_negative",
            asset=LOANS_KEY,
            blocking=True,
            description="ERROR (blocks the watchlist): a negative days-past-due value.",
        ),
        AssetCheckSpec(
            "outstanding_principal_not_negative",
            asset=LOANS_KEY,
            blocking=True,
            description="ERROR (blocks the watchlist): a negative outstanding principal.",
        ),
    ],
)
def loan_mart_checks(context: AssetCheckExecutionContext, warehouse: RiskWarehouse):
    """The loan mart's blocking checks, from one scan of it."""
    with warehouse.connect() as con:
        p = loan_mart_problems(con, warehouse.as_of_date)
    yield AssetCheckResult(
        check_name="loan_rows_present_as_of",
        asset_key=LOANS_KEY,
        passed=not (p["loan_rows"] == 0 and p["raw_loans_disbursed"] > 0),
        severity=AssetCheckSeverity.ERROR,
        metadata={"loan_rows": p["loan_rows"], "raw_loans_disbursed": p["raw_loans_disbursed"]},
    )
    yield AssetCheckResult(
        check_name="dpd_not_negative",
        asset_key=LOANS_KEY,
        passed=p["negative_dpd"] == 0,
        severity=AssetCheckSeverity.ERROR,
        metadata={"rows_with_negative_dpd": p["negative_dpd"]},
    )
    yield AssetCheckResult(
        check_name="outstanding_principal_not_negative",
        asset_key=LOANS_KEY,
        passed=p["negative_outstanding"] == 0,
        severity=AssetCheckSeverity.ERROR,
        metadata={"rows_with_negative_outstanding": p["negative_outstanding"]},
    )


@asset_check(
    asset=FEATURES_KEY,
    name="feature_rows_present_as_of",
    description="ERROR (blocks the watchlist): loans exist as of D but no enterprise has a "
    "feature row with month_end <= D.",
    blocking=True,
)
def feature_rows_present_as_of(context: AssetCheckExecutionContext, warehouse: RiskWarehouse):
    d = date_literal(warehouse.as_of_date)
    with warehouse.connect() as con:
        features = con.execute(
            f"SELECT count(*) FROM marts.fct_enterprise_month_end WHERE month_end <= {d}"
        ).fetchone()[0]
        loans = con.execute(
            f"SELECT count(*) FROM marts.fct_loan_month_end WHERE month_end <= {d}"
        ).fetchone()[0]
    return AssetCheckResult(
        passed=not (features == 0 and loans > 0),
        severity=AssetCheckSeverity.ERROR,
        metadata={"feature_rows": features, "loan_rows": loans},
    )


# ---------------------------------------------------------------------------------------------
# Assets


def _current_among(warehouse: RiskWarehouse) -> date | None:
    """The run's current as-of date when it is one of the dates it decides, else None."""
    return next((d for d in warehouse.as_of_dates if warehouse.is_current(d)), None)


def _dates_metadata(warehouse: RiskWarehouse, rows: dict[date, int]) -> dict:
    """Which as-of dates this run decided, their row counts, and the current as-of date
    (the one the current marts show; a past-date run leaves them on it)."""
    last = max(rows)
    meta = {
        "as_of_date": last.isoformat(),
        "current_as_of_date": warehouse.as_of_date.isoformat(),
        "current_marts_replaced": warehouse.is_current(last),
    }
    if len(rows) > 1:
        meta["rows_by_as_of_date"] = MetadataValue.json({d.isoformat(): n for d, n in rows.items()})
    return meta


def _counts_by(con: duckdb.DuckDBPyConnection, table: str, column: str) -> dict[str, int]:
    return dict(
        con.execute(f"SELECT {column}, count(*) FROM {table} GROUP BY ALL ORDER BY 1").fetchall()
    )


SIGNAL_HITS_SPEC = AssetSpec(
    SIGNAL_HITS_KEY,
    group_name=GROUP,
    kinds=KINDS,
    owners=OWNERS,
    deps=[FEATURES_KEY, NETWORK_PD_KEY, LOANS_KEY, RAW_LOANS_KEY, RAW_APPLICATIONS_KEY],
    description=(
        "One row per triggered catalog signal per monitored firm as of D (firms with an "
        "outstanding loan or an application in the last 90 days), from each firm's latest "
        "feature row with month_end <= D: as_of_date, enterprise_id, signal_id, dimension, "
        "severity, stage, reason (plain language, the firm's own values), catalog_version. "
        "Also kept per refresh in marts.signal_hits_history (to tell new hits)."
    ),
)
PROFILE_SPEC = AssetSpec(
    PROFILE_KEY,
    group_name=GROUP,
    kinds=KINDS,
    owners=OWNERS,
    deps=[SIGNAL_HITS_KEY, PD_SCORECARD_KEY],
    description=(
        "Enterprise risk profile as of D, one row per monitored firm: credit/moral/"
        "operational/market/liquidity scores and risk_score (0-100, higher = riskier), tier "
        "(red/amber/green by the catalog's tier rules), signals (ids) and reasons."
    ),
)
#: asset key -> the mart `build_early_warning_for_dates` writes for it
_MARTS = {SIGNAL_HITS_KEY: SIGNAL_HITS, PROFILE_KEY: RISK_PROFILE}


def _signal_hits_result(
    con: duckdb.DuckDBPyConnection, warehouse: RiskWarehouse, rows: dict[date, int]
) -> MaterializeResult:
    last = max(rows)
    by_signal = _counts_by(
        con, f"marts.signal_hits_history WHERE as_of_date = {date_literal(last)}", "signal_id"
    )
    return MaterializeResult(
        asset_key=SIGNAL_HITS_KEY,
        metadata={
            "dagster/row_count": rows[last],
            "dagster/column_schema": column_schema(con, "marts", "signal_hits"),
            **_dates_metadata(warehouse, rows),
            "catalog_version": CATALOG.version,
            "hits_by_signal": MetadataValue.json(by_signal),
        },
    )


def _profile_result(
    con: duckdb.DuckDBPyConnection, warehouse: RiskWarehouse, rows: dict[date, int]
) -> MaterializeResult:
    last = max(rows)
    table = f"marts.enterprise_risk_profile_history WHERE as_of_date = {date_literal(last)}"
    return MaterializeResult(
        asset_key=PROFILE_KEY,
        metadata={
            "dagster/row_count": rows[last],
            "dagster/column_schema": column_schema(con, "marts", "enterprise_risk_profile"),
            **_dates_metadata(warehouse, rows),
            "tiers": MetadataValue.json(_counts_by(con, table, "tier")),
            "engine": MetadataValue.json(_counts_by(con, table, "engine")),
        },
    )


@multi_asset(
    name="signal_hits_and_risk_profile",
    specs=[SIGNAL_HITS_SPEC, PROFILE_SPEC],
    partitions_def=AS_OF_PARTITIONS,
    backfill_policy=SINGLE_RUN,
    can_subset=True,
)
def signal_hits_and_risk_profile(
    context: AssetExecutionContext, warehouse: RiskWarehouse
) -> Iterator[MaterializeResult]:
    """Both marts in one step: they read the same feature rows of every monitored firm, the
    expensive part, which two steps (two connections, so no shared temp tables) prepared
    twice a night. Still two assets, each selectable alone (the step then writes only it)."""
    marts = [m for k, m in _MARTS.items() if k in context.selected_asset_keys]
    with warehouse.connect() as con:
        rows = build_early_warning_for_dates(
            con, CATALOG, warehouse.as_of_dates, _current_among(warehouse), marts
        )
        if SIGNAL_HITS in rows:
            yield _signal_hits_result(con, warehouse, rows[SIGNAL_HITS])
        if RISK_PROFILE in rows:
            yield _profile_result(con, warehouse, rows[RISK_PROFILE])


DECISIONS_KEY = AssetKey(["marts", "enterprise_decisions"])


@asset(
    key=DECISIONS_KEY,
    partitions_def=AS_OF_PARTITIONS,
    backfill_policy=SINGLE_RUN,
    group_name=GROUP,
    kinds=KINDS,
    owners=OWNERS,
    deps=[PROFILE_KEY],
    description=(
        "Decision history: the tier, PD, hard triggers and reasons of every firm monitored on "
        "D at each of the last status_window_months month ends, decided with what was known "
        "at each month end (the same function as tonight's profile and the back-test). The "
        "watchlist's statuses, first_flagged_date and exit rule are read from it, so they "
        "depend on the facts only, not on which refreshes ran."
    ),
)
def enterprise_decisions(
    context: AssetExecutionContext, warehouse: RiskWarehouse
) -> MaterializeResult:
    with warehouse.connect() as con:
        rows = build_decision_windows(
            con, CATALOG, warehouse.as_of_dates, warehouse.as_of_date
        )
        n = rows[max(rows)]
        schema = column_schema(con, "marts", "enterprise_decisions")
        listed = con.execute(
            "SELECT month_end, count(*) FILTER (WHERE listed) FROM marts.enterprise_decisions "
            "GROUP BY 1 ORDER BY 1 DESC LIMIT 12"
        ).fetchall()
    return MaterializeResult(
        metadata={
            "dagster/row_count": n,
            "dagster/column_schema": schema,
            **_dates_metadata(warehouse, rows),
            "listed_by_month_end": MetadataValue.md(
                markdown_table(listed, ["month_end", "listed firms"])
            ),
        }
    )


early_warning_assets: list[AssetsDefinition] = [
    signal_hits_and_risk_profile,
    enterprise_decisions,
]
early_warning_checks: list[AssetChecksDefinition] = [
    signal_checks,
    loan_mart_checks,
    feature_rows_present_as_of,
]
