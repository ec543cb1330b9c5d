"""The PD scorecard as a Dagster asset: refit as of the run's date, champion/challenger, card.

All logic is in `assets/scorecard/` (no Dagster there); this module only wires it into the
graph after the feature and outcome marts and reports the model card as metadata. The lead
wires the asset into a job and a monthly schedule (orchestration/).
"""

from datetime import date

import duckdb
from dagster import (
    AssetExecutionContext,
    AssetKey,
    Config,
    MaterializeResult,
    MetadataValue,
    asset,
)

from assets.core.metadata import markdown_table, table_exists
from assets.core.resources import RiskWarehouse
from assets.dbt_assets import mart_key
from assets.scorecard import load_spec
from assets.scorecard.fit import fit_scorecard, model_card, promote

PD_SCORECARD_KEY = AssetKey(["models", "pd_scorecard"])


#: A run with this tag set to "force" refits (the model_backtest job carries it).
REFIT_TAG = "risk/scorecard_refit"


class ScorecardRefit(Config):
    """force: refit even if a model was already fitted in the as-of date's month."""

    force: bool = False


def fitted_this_month(con: duckdb.DuckDBPyConnection, as_of: date) -> str | None:
    """The latest model (any status) fitted with a fit date in as_of's month, if any."""
    if not table_exists(con, "marts", "pd_scorecard_models"):
        return None
    row = con.execute(
        "SELECT model_version FROM marts.pd_scorecard_models WHERE date_trunc('month', "
        "fit_date) = date_trunc('month', ?::DATE) ORDER BY fitted_at DESC LIMIT 1",
        [as_of],
    ).fetchone()
    return row[0] if row else None


def _num(x: object, digits: int = 4) -> object:
    return round(x, digits) if isinstance(x, float) else x


def card_metadata(card: dict, promotion_note: str) -> dict[str, object]:
    """The model card as Dagster metadata (figures, markdown tables)."""
    m = card["model"]
    meta: dict[str, object] = {
        "model_version": m["model_version"],
        "status": m["status"],
        "promotion": promotion_note,
        "fit_date": str(m["fit_date"]),
        "training_window": f"{m['train_start']} .. {m['train_end']}",
        "oot_window": f"{m['oot_start']} .. {m['oot_end']}",
        "n_train": MetadataValue.int(int(m["n_train"] or 0)),
        "n_train_defaults": MetadataValue.int(int(m["n_train_defaults"] or 0)),
        "n_oot": MetadataValue.int(int(m["n_oot"] or 0)),
        "n_oot_defaults": MetadataValue.int(int(m["n_oot_defaults"] or 0)),
        "notes": m["notes"] or "",
        "library": m["library"] or "",
    }
    for k in ("auc_train", "ks_train", "auc_oot", "ks_oot"):
        if m.get(k) is not None:
            meta[k] = MetadataValue.float(float(m[k]))
    psi_score = next((p for item, kind, p in card["psi"] if kind == "score"), None)
    if psi_score is not None:
        meta["psi_score"] = MetadataValue.float(float(psi_score))
    if card["features"]:
        meta["features"] = MetadataValue.md(markdown_table(
            [[f, n, _num(lo, 1), _num(hi, 1), _num(rng, 1), _num(c), _num(p)]
             for f, n, lo, hi, rng, c, p in card["features"]],
            ["feature", "bins", "min points", "max points", "points range", "coefficient",
             "PSI oot vs train"],
        ))
    if card["calibration"]:
        meta["calibration"] = MetadataValue.md(markdown_table(
            [[s, b, _num(lo, 1), _num(hi, 1), n, _num(p), _num(o)]
             for s, b, lo, hi, n, p, o in card["calibration"]],
            ["sample", "band (1 = riskiest)", "score from", "score to", "n", "predicted PD",
             "observed 12m default rate"],
        ))
    return meta


@asset(
    key=PD_SCORECARD_KEY,
    group_name="early_warning",
    kinds={"python", "duckdb", "scikit-learn"},
    owners=["team:credit-risk"],
    deps=[
        mart_key("fct_enterprise_month_end"),
        mart_key("fct_enterprise_outcomes"),
        mart_key("fct_enterprise_month_end_trends"),
    ],
    description=(
        "PD scorecard: probability that a performing enterprise defaults within 12 months, "
        "learned from the bank's own history point in time (monotonic WoE bins + logistic "
        "regression, optbinning), out-of-time validated on the last 12 observed month ends. "
        "Stored as tables marts.pd_scorecard_models / _bins / _calibration / _psi and scored "
        "in SQL (assets.scorecard.score_sql); a refit replaces the champion only if its OOT "
        "AUC is not worse on the same window. Fewer defaults than min_defaults: cold start, "
        "no model, the engine keeps the expert signal catalog."
    ),
)
def pd_scorecard(
    context: AssetExecutionContext, config: ScorecardRefit, warehouse: RiskWarehouse
) -> MaterializeResult:
    """Refit as of the warehouse's as-of date, apply champion/challenger, report the card.
    The nightly run refits on the first night of a month (no fit dated in D's month yet);
    the monthly job and `risk backtest` force a refit."""
    spec = load_spec()
    with warehouse.connect() as con:
        fitted = fitted_this_month(con, warehouse.as_of_date)
        force = config.force or context.run.tags.get(REFIT_TAG) == "force"
        if fitted and not force:
            card = model_card(con, fitted)
            note = f"kept: {fitted} was fitted this month (refit monthly, or force)"
            context.log.info(f"PD scorecard: {note}")
            return MaterializeResult(metadata=card_metadata(card, note))
        version = fit_scorecard(con, warehouse.as_of_date, spec)
        decision = promote(con, version, spec)
        card = model_card(con, version)
    if card["model"]["status"] == "cold_start":
        note = "cold start: no model fitted"
    else:
        note = ("promoted to champion: " if decision.promoted else "kept as challenger: ")
        note += decision.reason
    context.log.info(f"PD scorecard {version}: {card['model']['status']}; {note}")
    return MaterializeResult(metadata=card_metadata(card, note))


pd_scorecard_assets = [pd_scorecard]
