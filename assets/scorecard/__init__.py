"""PD scorecard learned from the bank's own history (issue 8 section 2), without Dagster.

The probability that a performing enterprise defaults within 12 months, fitted point in time
on firm-months whose 12-month outcome window had ended by the fit date, validated out of
time on the most recent such months, stored as tables and scored in SQL in the warehouse.

Why optbinning (BinningProcess + Scorecard over scikit-learn's LogisticRegression): a credit
scorecard must be explainable bin by bin to credit officers and validators. optbinning's
binning is solved as a constrained optimisation with an explicit monotonic trend (ascending,
descending or one peak/valley), minimum bin sizes and missing-value bins, so every feature
turns into a handful of weight-of-evidence bins whose risk order makes business sense; the
logistic regression on WoE then gives one coefficient per feature and points per bin (PDO
scaling). The whole model is therefore a small table of intervals and numbers, which we store
in `marts.pd_scorecard_bins` (no pickle: auditable, diffable, versioned by model_version) and
apply with a SQL join, so scoring a million firms never leaves DuckDB. Gradient boosting would
rank slightly better on rich data but could not be stored or explained this way.

Modules:
- `spec`: scorecard.yml as a pydantic model (`load_spec`).
- `sql`: tables, point-in-time examples, `features_relation_sql`, `score_sql`, AUC/KS/PSI SQL.
- `fit`: `fit_scorecard`, `promote`, `current_model`.
"""

from assets.scorecard.fit import (
    Promotion,
    ScorecardModel,
    current_model,
    fit_scorecard,
    load_model,
    promote,
)
from assets.scorecard.spec import FeatureSpec, ScorecardSpec, load_spec
from assets.scorecard.sql import features_relation_sql, score_sql

__all__ = [
    "FeatureSpec", "Promotion", "ScorecardModel", "ScorecardSpec", "current_model",
    "features_relation_sql", "fit_scorecard", "load_model", "load_spec", "promote",
    "score_sql",
]
