"""`risk backtest` as a Dagster asset: the early warning measured on the bank's own outcomes.

The decisions for every month end of the window come from the same function that decides
tonight (`assets.signals.decisions`), in one pass over the month-end history; the figures and
marts come from `assets.backtest` (plain SQL, no ground truth). Two runs per materialization
when a champion scorecard exists: the whole default window, and the model's out-of-time window
(the honest figures: the in-time months were trained on).

The results reach analysts at once: the asset publishes its own tables (and the scorecard's,
when the run refit it) when they are the build file's only changes since the last publish.
A build file that holds a refresh that did not publish (failed blocking checks, a kill) is
never published from here; the results then wait for the next successful refresh.
"""

import os
from dataclasses import dataclass
from datetime import date

import duckdb
from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetSpec,
    MaterializeResult,
    MetadataValue,
    multi_asset,
)

from assets.backtest.run import backtest_summary, observed_window, run_backtest
from assets.core import publish, settings
from assets.core.metadata import markdown_table, table_exists
from assets.core.month_ends import add_months
from assets.core.resources import RiskWarehouse
from assets.dbt_assets import mart_key
from assets.publish_assets import DROP_COLUMNS, PUBLISHED_SCHEMAS
from assets.scorecard import load_spec
from assets.scorecard import sql as scorecard_sql
from assets.scorecard.fit import training_months, warmup_end
from assets.scorecard_assets import PD_SCORECARD_KEY
from assets.signals.catalog import Catalog, load_catalog
from assets.signals.decisions import Engine, build_decision_history, current_engine

BACKTEST_MARTS = (
    "backtest_runs",
    "backtest_scores",
    "backtest_signals",
    "backtest_calibration",
    "backtest_cutoffs",
    "backtest_lead_times",
    "backtest_stability",
)
DESCRIPTIONS = {
    "backtest_runs": "One row per back-test run: window, engine (model or catalog version), "
    "AUC/KS at 6 and 12 months, recall, precision of red and amber, share of performing "
    "firms listed, share of defaulters listed while current, lead-time distribution, PSI.",
    "backtest_scores": "Firm x month end of the latest run: PD, tier, listed, observed "
    "outcomes (default within 6/12 months, dpd>30 within 12 months).",
    "backtest_signals": "Per catalog signal and run: hit rate among later defaulters and "
    "among performing firms, lift, precision, share of defaulters on which it fired first, "
    "weak (lift < 1.5).",
    "backtest_calibration": "Predicted PD against the observed 12-month default rate, by PD "
    "band and decile, per run.",
    "backtest_cutoffs": "How amber PD cut-offs trade recall against the share of performing "
    "firms listed and the watchlist's size, per run.",
    "backtest_lead_times": "Distribution of months from first listing to default, per run.",
    "backtest_stability": "PSI of the score and of each model feature against the training "
    "window, per run.",
}
WINDOW_MONTHS = 24
#: What a scorecard refit writes (published with the back-test when this run refit it).
SCORECARD_TABLES = frozenset(
    {scorecard_sql.MODELS, scorecard_sql.BINS, scorecard_sql.CALIBRATION, scorecard_sql.PSI}
)


def publish_backtest(
    context: AssetExecutionContext, warehouse: RiskWarehouse
) -> dict[str, object]:
    """Publish the back-test's tables now when they (and a refit's scorecard tables) are all
    that changed since the last publish; otherwise leave them for the next refresh."""
    if not warehouse.build_aside:
        return {"published": False}
    selection = context.run.asset_selection  # empty (not None) when the whole job runs
    refit = not selection or PD_SCORECARD_KEY in selection
    tables = {f"marts.{m}" for m in BACKTEST_MARTS} | (SCORECARD_TABLES if refit else set())
    try:
        result = publish.publish(
            warehouse.warehouse_path, warehouse.published_path, schemas=PUBLISHED_SCHEMAS,
            drop_columns=DROP_COLUMNS, memory_limit=settings.duckdb_memory_limit(),
            only=tables,
        )
    except publish.NotPublished as exc:
        context.log.warning(f"back-test {exc}; its results are published with the next refresh")
        return {"published": False, "not_published_because": str(exc)}
    changed = set(result.rewritten) | set(result.appended)
    if changed & SCORECARD_TABLES:
        # A refit may change the champion, hence tonight's decisions: the build file is marked
        # newer than the publish, so the next refresh rebuilds (refresh_plan) and does not skip.
        os.utime(warehouse.warehouse_path)
    context.log.info(
        f"published the back-test to {result.path}: {', '.join(sorted(changed)) or 'nothing new'}"
        f" in {result.seconds:.1f}s"
    )
    return {"published": True, "published_tables": MetadataValue.json(sorted(changed)),
            "publish_seconds": round(result.seconds, 2)}


@dataclass(frozen=True)
class BacktestMonths:
    """The month ends one back-test reads. `windows`: label -> month ends judged (each with an
    observed 12-month outcome); `reference`: the model's training month ends (the PSI's
    reference); `ignored`: month ends whose decisions are not early warning (in-sample or
    inside the warm-up); decisions are taken for every month end in [`decide_from`,
    `decide_through`]."""

    windows: dict[str, list[date]]
    reference: list[date]
    ignored: list[date]
    decide_from: date
    decide_through: date


def backtest_month_ends(
    con: duckdb.DuckDBPyConnection,
    model_version: str | None,
    *,
    window_months: int = WINDOW_MONTHS,
    out_of_time: bool = True,
    fitted_on: str | None = None,
    oot_of: str | None = None,
) -> BacktestMonths:
    """Which month ends a back-test of model `model_version` (None: the expert catalog) judges,
    ignores and decides (see `backtest`). `oot_of`: whose stored out-of-time window is the
    "oot" window (default the model's own; the expert catalog, which has none, is judged on a
    champion's this way)."""
    # one scan: every month end, and whether any of its outcomes is observed over 12 months
    month_ends = con.execute(
        "select month_end, bool_or(outcome_observed_12m) from marts.fct_enterprise_outcomes "
        "group by 1 order by 1"
    ).fetchall()
    observed = [m for m, is_observed in month_ends if is_observed]
    if not observed:
        raise ValueError(
            "no month end has an observed 12-month outcome yet: the warehouse needs more than "
            "12 months of loan history for a back-test"
        )
    # Month ends inside the history's warm-up (look-backs NULL because the warehouse starts)
    # are left out: no engine is meant to decide there, and they would drag every figure.
    warmed_up = warmup_end(con, load_spec())
    decidable = [m for m in observed if warmed_up is None or m >= warmed_up] or observed
    windows = {"window": decidable[-window_months:]}
    reference = training_months(con, model_version, observed)
    if out_of_time and (oot_of or model_version):
        oot = con.execute(
            "select oot_start, oot_end from marts.pd_scorecard_models where model_version = ?",
            [oot_of or model_version],
        ).fetchone()
        if oot and oot[0]:
            windows["oot"] = [m for m in observed if oot[0] <= m <= oot[1]]
    start = min(min(w) for w in windows.values() if w)
    # Early warning is judged on decisions the engine could take for real: not in-sample, not
    # inside the warm-up.
    in_sample = training_months(con, fitted_on, observed) if fitted_on else reference
    ignored = sorted({*in_sample, *(m for m in observed if m not in decidable)})
    # Lead times and listed-while-current read the decisions of the 12 months before each
    # default: from 12 months before the first window month end up to the warehouse's last
    # month end, because a default late in the 12-month horizon was warned of, or not, at
    # month ends after the window (until 2026-11-30 the decisions stopped at the window's
    # end, so those warnings went uncounted).
    return BacktestMonths(
        windows=windows,
        reference=reference,
        ignored=ignored,
        decide_from=add_months(start, -12),
        decide_through=month_ends[-1][0],
    )


def backtest(
    con: duckdb.DuckDBPyConnection,
    catalog: Catalog,
    *,
    engine: Engine | None = None,
    window_months: int = WINDOW_MONTHS,
    out_of_time: bool = True,
    fitted_on: str | None = None,
    oot_of: str | None = None,
) -> list[dict[str, object]]:
    """Back-test `engine` (default: the current one) on the last `window_months` month ends
    with an observed 12-month outcome after the history's warm-up, and on the champion's
    out-of-time window; returns the backtest_runs rows written. The firm-level figures ignore
    the decisions at the training months of model `fitted_on` (default: the engine's own), so
    two engines compared on one window can be judged on the same month ends; `oot_of` names
    the model whose out-of-time window the "oot" run reads (default the engine's own)."""
    engine = engine or current_engine(con)
    months = backtest_month_ends(
        con, engine.model_version, window_months=window_months, out_of_time=out_of_time,
        fitted_on=fitted_on, oot_of=oot_of,
    )
    decisions = build_decision_history(
        con, catalog, engine, start=months.decide_from, end=months.decide_through
    )
    version = engine.model_version or f"expert catalog {catalog.version}"
    if not engine.model_version:
        # Cold start has no PD; the expert risk score (0-100) ranks the firms instead.
        con.execute(
            f"create or replace temp view _hist_ranked as select * replace "
            f"(coalesce(pd, risk_score / 100.0) as pd) from {decisions}"
        )
        decisions = "_hist_ranked"
    rows = []
    for label, window in months.windows.items():
        if not window:
            continue
        rows.append(
            run_backtest(
                con,
                decisions,
                window=window,
                model_version=version,
                catalog_version=catalog.version,
                signal_ids=[s.id for s in catalog.signals],
                reference_months=months.reference or None,
                ignored_months=months.ignored,
            )
            | {"label": label, "engine": engine.name}
        )
    return rows


@multi_asset(
    specs=[
        AssetSpec(
            key=AssetKey(["marts", name]),
            group_name="early_warning",
            kinds={"python", "duckdb"},
            owners=["team:credit-risk"],
            description=DESCRIPTIONS[name],
            deps=[
                PD_SCORECARD_KEY,
                mart_key("fct_enterprise_outcomes"),
                mart_key("fct_enterprise_month_end"),
                mart_key("fct_enterprise_month_end_trends"),
                mart_key("fct_enterprise_month_end_network_pd"),
            ],
        )
        for name in BACKTEST_MARTS
    ],
    name="early_warning_backtest",
)
def early_warning_backtest(context: AssetExecutionContext, warehouse: RiskWarehouse):
    """Back-test the early warning on observed outcomes only (runs unchanged on a bank's own
    warehouse)."""
    catalog = load_catalog()
    with warehouse.connect() as con:
        runs = backtest(con, catalog)
        summary = backtest_summary(con, runs[-1]["run_id"]) if runs else {}
        n_scores = (
            con.execute("select count(*) from marts.backtest_scores").fetchone()[0]
            if table_exists(con, "marts", "backtest_scores")
            else 0
        )
    published = publish_backtest(context, warehouse)
    figures = [
        "auc_6m", "auc_6m_list_order", "ks_6m", "auc_12m", "ks_12m", "recall_6m",
        "precision_red_6m",
        "precision_amber_6m", "performing_listed_share", "listed_while_current_share",
        "lead_time_median", "psi_score",
    ]
    table = markdown_table(
        [[r["label"], r["window_start"], r["window_end"], *[_fmt(r.get(f)) for f in figures]]
         for r in runs],
        ["run", "from", "to", *figures],
    )
    for name in BACKTEST_MARTS:
        meta: dict[str, object] = {"engine": runs[0]["engine"] if runs else "none"}
        if name == "backtest_runs":
            meta.update(published)
            meta["figures"] = MetadataValue.md(table)
            meta["summary"] = MetadataValue.json(
                {k: v for k, v in summary.items() if isinstance(v, int | float | str)}
            )
        if name == "backtest_scores":
            meta["dagster/row_count"] = n_scores
        yield MaterializeResult(asset_key=AssetKey(["marts", name]), metadata=meta)


def _fmt(v: object) -> object:
    return round(v, 3) if isinstance(v, float) else v


backtest_assets = [early_warning_backtest]
__all__ = ["backtest", "backtest_assets", "observed_window"]
