"""The scorecard's SQL: tables, training examples, the features relation and scoring.

A fitted scorecard is rows in `marts.pd_scorecard_bins`, so scoring is one SQL statement run
inside DuckDB (`score_sql`): the bins are written into it as one CASE per feature (interval
by the cut points at or below the value, category by equality, NULL to the missing bin, an
unseen category to the unknown-category bin), and the bins' log-odds terms and points are
summed. No Python touches the rows, so a million firms score in seconds. `feature_bins_sql`
gives the same bin assignment in long form (one row per firm-month x feature) for per-bin
statistics such as PSI.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import duckdb

from assets.core.sql import date_literal, ident, text
from assets.scorecard.spec import FeatureSpec

FEATURE_MART = "marts.fct_enterprise_month_end"
TRENDS_MART = "marts.fct_enterprise_month_end_trends"
OUTCOMES_MART = "marts.fct_enterprise_outcomes"
MODELS = "marts.pd_scorecard_models"
BINS = "marts.pd_scorecard_bins"
CALIBRATION = "marts.pd_scorecard_calibration"
PSI = "marts.pd_scorecard_psi"

DDL = [
    "create schema if not exists marts",
    f"""create table if not exists {MODELS} (
        model_version VARCHAR PRIMARY KEY, status VARCHAR NOT NULL, fitted_at TIMESTAMP NOT NULL,
        fit_date DATE NOT NULL, train_start DATE, train_end DATE, oot_start DATE, oot_end DATE,
        n_train BIGINT, n_train_defaults BIGINT, n_oot BIGINT, n_oot_defaults BIGINT,
        intercept DOUBLE, auc_train DOUBLE, ks_train DOUBLE, auc_oot DOUBLE, ks_oot DOUBLE,
        features VARCHAR[], library VARCHAR, notes VARCHAR)""",
    f"""create table if not exists {BINS} (
        model_version VARCHAR NOT NULL, feature VARCHAR NOT NULL, bin_id INTEGER NOT NULL,
        bin_label VARCHAR, lower_bound DOUBLE, upper_bound DOUBLE, categories VARCHAR[],
        is_missing BOOLEAN NOT NULL, train_count BIGINT, train_share DOUBLE,
        train_event_rate DOUBLE, woe DOUBLE, coefficient DOUBLE, logit_contribution DOUBLE,
        points DOUBLE, PRIMARY KEY (model_version, feature, bin_id))""",
    f"""create table if not exists {CALIBRATION} (
        model_version VARCHAR NOT NULL, sample VARCHAR NOT NULL, band INTEGER NOT NULL,
        score_lower DOUBLE, score_upper DOUBLE, n BIGINT, predicted_pd DOUBLE,
        observed_rate DOUBLE)""",
    f"""create table if not exists {PSI} (
        model_version VARCHAR NOT NULL, item VARCHAR NOT NULL, kind VARCHAR NOT NULL,
        psi DOUBLE)""",
]


def features_relation_sql(month_end_filter_sql: str = "true") -> str:
    """Both feature marts side by side per enterprise x month end (the trends columns added
    to fct_enterprise_month_end), restricted by a boolean SQL over `month_end`."""
    return (
        f"select * from {FEATURE_MART} "
        f"left join {TRENDS_MART} using (enterprise_id, month_end) "
        f"where {month_end_filter_sql}"
    )


def examples_sql(fit_date: date, start: date | None, end: date) -> str:
    """Performing firm-months in [start, end] whose 12-month outcome window ended on or
    before fit_date, with the label: nothing after fit_date can reach a training example."""
    lower = f"and o.month_end >= {date_literal(start)}" if start else ""
    return f"""
        select o.enterprise_id, o.month_end, o.default_within_12m as y
        from {OUTCOMES_MART} as o
        where not o.in_default
          and last_day(o.month_end + interval 12 month) <= {date_literal(fit_date)}
          and o.month_end <= {date_literal(end)} {lower}"""


def _value_exprs(f: FeatureSpec) -> tuple[str, str, str]:
    """(numeric value, text value, shown value) of one feature column of relation `r`."""
    col = f"r.{ident(f.name)}"
    if f.dtype == "categorical":
        txt = f"cast({col} as varchar)"
        return "cast(null as double)", txt, txt
    num = f"nullif(cast({col} as double), 'nan'::double)"
    return num, "cast(null as varchar)", f"cast({num} as varchar)"


#: One term of `score_sql`'s feature_points.
FEATURE_POINT = (
    "STRUCT(feature VARCHAR, bin_id INTEGER, bin_label VARCHAR, value VARCHAR, points DOUBLE, "
    "logit_contribution DOUBLE)"
)


class ScoringError(ValueError):
    """The model is unknown, has no bins, or the features passed do not cover it."""


def _double(x: float | None) -> str:
    """An exact DOUBLE literal (a decimal literal would be read as DECIMAL)."""
    return "cast(null as double)" if x is None else f"cast('{float(x)!r}' as double)"


def _bin_position_sql(f: FeatureSpec, value: str, bins: list[tuple]) -> str:
    """SQL of the position (1-based, bin_id order) of the bin that `value`, feature f's value
    (a column: DOUBLE, or VARCHAR for a categorical feature), falls in; NULL when no bin
    takes it. Bins are rows
    (bin_id, bin_label, lower_bound, upper_bound, categories, is_missing, points,
    logit_contribution). An interval bin is [lower, upper): 1 + the number of cut points
    (lower bounds) at or below the value; a category bin by equality; NULL goes to the missing
    bin, an unseen category to the unknown-category bin (empty categories)."""
    missing = next((i for i, b in enumerate(bins, 1) if b[5]), None)
    whens = [f"when {value} is null then {missing or 'null'}"]
    if f.dtype == "categorical":
        unknown = next((i for i, b in enumerate(bins, 1) if b[4] is not None and not b[4]), None)
        for i, b in enumerate(bins, 1):
            if b[4]:
                whens.append(f"when {value} in ({', '.join(text(c) for c in b[4])}) then {i}")
        return f"case {' '.join(whens)} else {unknown or 'null'} end"
    cuts = [b[2] for b in bins if b[2] is not None and b[4] is None and not b[5]]
    if cuts != sorted(cuts):
        raise ScoringError(f"score_sql: the cut points of {f.name} are not ascending")
    for i, cut in enumerate(cuts, 1):
        whens.append(f"when {value} < {_double(cut)} then {i}")
    return f"case {' '.join(whens)} else {len(cuts) + 1} end"


class _CompiledModel:
    """A model's bins read once and written into SQL: per feature used, a CASE giving the
    position of the bin a row's value falls in (`_bin_position_sql`), and picks of that bin's
    term, points or whole row by position. `score_sql` and `feature_bins_sql` both assign
    bins through it, so the rule lives in one place."""

    def __init__(
        self, con: duckdb.DuckDBPyConnection, model_version: str,
        features: Sequence[FeatureSpec] | None,
    ) -> None:  # fmt: skip
        if features is None:
            from assets.scorecard.spec import load_spec

            features = load_spec().features
        row = con.execute(f"select intercept from {MODELS} where model_version = ?",
                          [model_version]).fetchone()
        if row is None or row[0] is None:
            raise ScoringError(f"score_sql: no fitted scorecard {model_version}")
        self.intercept = row[0]
        by_feature: dict[str, list[tuple]] = {}
        for feature, *b in con.execute(
            f"select feature, bin_id, bin_label, lower_bound, upper_bound, categories, "
            f"is_missing, points, logit_contribution from {BINS} where model_version = ? "
            "order by feature, bin_id", [model_version]
        ).fetchall():
            by_feature.setdefault(feature, []).append(tuple(b))
        if not by_feature:
            raise ScoringError(f"score_sql: scorecard {model_version} has no bins")
        missing = sorted(set(by_feature) - {f.name for f in features})
        if missing:
            raise ScoringError(
                f"score_sql: the features passed do not cover model {model_version}: {missing}"
            )
        self.used = [(f, by_feature[f.name]) for f in features if f.name in by_feature]

    def positions_sql(self, features_relation: str) -> str:
        """enterprise_id, month_end, _pos_<i> (the bin's position) and _value_<i> (the value
        as shown) per feature used, for each row of `features_relation`."""
        values, positions = [], []
        for i, (f, bins) in enumerate(self.used):
            num, txt, shown = _value_exprs(f)
            values.append(f"{txt if f.dtype == 'categorical' else num} as _in_{i}, "
                          f"{shown} as _value_{i}")
            positions.append(f"{_bin_position_sql(f, f'_in_{i}', bins)} as _pos_{i}")
        shown = "".join(f", _value_{i}" for i in range(len(self.used)))
        return f"""
            select enterprise_id, month_end, {", ".join(positions)}{shown}
            from (
                select r.enterprise_id, r.month_end, {", ".join(values)}
                from ({features_relation}) as r
            )"""

    def picks(self, expr, keep=lambda b: True, none: str = "null") -> str:
        """Per feature, `expr(bin)` of the row's bin (`keep`: the bins that may be picked;
        the others give NULL, and so does a feature none can be picked of: `none`)."""
        out = []
        for i, (f, bins) in enumerate(self.used):
            whens = " ".join(
                f"when {k} then {expr(b, f, i)}" for k, b in enumerate(bins, 1) if keep(b)
            )
            out.append(f"case _pos_{i} {whens} end" if whens else none)
        return ", ".join(out)

    def terms(self, points_from_logit: float | None = None) -> str:
        """The list of the row's terms (FEATURE_POINT structs), in feature order, only those
        whose logit_contribution reaches `points_from_logit` when given."""
        structs = self.picks(
            lambda b, f, i: (
                f"struct_pack(feature := {text(f.name)}, bin_id := {int(b[0])}, "
                f"bin_label := {text(b[1]) if b[1] is not None else 'cast(null as varchar)'}, "
                f"value := _value_{i}, points := {_double(b[6])}, "
                f"logit_contribution := {_double(b[7])})"),
            keep=lambda b: points_from_logit is None or (
                b[7] is not None and b[7] >= points_from_logit),
            none=f"cast(null as {FEATURE_POINT})",
        )
        return f"list_filter([{structs}], lambda x: x is not null)"


def score_sql(
    con: duckdb.DuckDBPyConnection,
    model_version: str,
    features_relation: str,
    features: Sequence[FeatureSpec] | None = None,
    *,
    with_feature_points: bool = True,
    points_from_logit: float | None = None,
) -> str:
    """Score a features relation (e.g. `features_relation_sql(...)`) with one model.

    Returns enterprise_id, month_end, model_version, logit, pd = 1/(1+exp(-logit)), score
    (points; HIGHER = SAFER: score = offset - factor * logit) and feature_points, a list of
    STRUCT(feature, bin_id, bin_label, value, points, logit_contribution) sorted riskiest term
    first, so reasons can name what adds most risk (with `points_from_logit`, only the terms
    whose logit_contribution reaches it: the rest cost time and name no reason). `features`:
    the model's features with their dtype (`ScorecardModel.feature_specs`); default the
    candidates of scorecard.yml; features the model does not use are ignored. Raises
    ScoringError if the model is unknown, has no bins or `features` misses one of its
    features.

    How: the model's bins (read from `marts.pd_scorecard_bins` through `con`) are written
    into the statement as one CASE per feature that gives the position of the row's bin, and
    the bins' log-odds terms and points are picked by position. Plain SQL over the rows, no
    join and no list lambdas per value: 6M firm-months score in 2.5 s at 1M, where matching
    each value against list-valued bins took 46 s.
    """
    model = _CompiledModel(con, model_version, features)
    logits = model.picks(lambda b, f, i: _double(b[7]))
    points = model.picks(lambda b, f, i: _double(b[6]))
    terms = f", {model.terms(points_from_logit)} as p" if with_feature_points else ""
    sorted_points = (
        """,
            list_select(p, list_grade_up(list_transform(p, lambda x: -x.logit_contribution)))
                                                                    as feature_points"""
        if with_feature_points
        else ""
    )
    return f"""
        select
            enterprise_id,
            month_end,
            {text(model_version)}                                        as model_version,
            logit,
            1.0 / (1.0 + exp(-logit))                                    as pd,
            score{sorted_points}
        from (
            select
                enterprise_id, month_end,
                {_double(model.intercept)} + list_sum([{logits}])         as logit,
                list_sum([{points}])                                     as score{terms}
            from ({model.positions_sql(features_relation)})
        )"""


def feature_bins_sql(
    con: duckdb.DuckDBPyConnection,
    model_version: str,
    features_relation: str,
    features: Sequence[FeatureSpec],
) -> str:
    """One row per firm x month end x model feature with the bin its value falls in:
    enterprise_id, month_end, feature, value, bin_id, bin_label, points, logit_contribution
    (the long form of `score_sql`'s terms, for per-bin statistics such as PSI). `features`
    must cover the model's features (others are dropped)."""
    model = _CompiledModel(con, model_version, features)
    return f"""
        select enterprise_id, month_end, t.feature, t.value, t.bin_id, t.bin_label, t.points,
               t.logit_contribution
        from (
            select enterprise_id, month_end, unnest({model.terms()}) as t
            from ({model.positions_sql(features_relation)})
        )"""


def auc_ks_sql(
    relation: str, pd_col: str = "pd", label_col: str = "y", weight_col: str = "1"
) -> str:
    """Weighted AUC (ties count half) and KS of a scored relation, in one grouped pass:
    the same figures for a 100k sample or a 12M-row out-of-time population."""
    return f"""
        with g as (
            select {pd_col} as p,
                   sum(case when {label_col} then {weight_col} else 0 end) as pos,
                   sum(case when {label_col} then 0 else {weight_col} end) as neg
            from ({relation})
            group by 1
        ),
        c as (
            select pos, neg,
                   coalesce(sum(neg) over (order by p rows between unbounded preceding
                                           and 1 preceding), 0) as neg_below,
                   sum(pos) over (order by p rows unbounded preceding) as cum_pos,
                   sum(neg) over (order by p rows unbounded preceding) as cum_neg
            from g
        ),
        t as (select sum(pos) as tp, sum(neg) as tn from g)
        select
            case when t.tp > 0 and t.tn > 0
                 then sum(c.pos * (c.neg_below + 0.5 * c.neg)) / (t.tp * t.tn) end as auc,
            case when t.tp > 0 and t.tn > 0
                 then max(abs(c.cum_pos / t.tp - c.cum_neg / t.tn)) end as ks,
            count(*) as n_groups
        from c, t
        group by t.tp, t.tn"""


def psi_sql(expected: str, actual: str) -> str:
    """PSI between two relations of (key, share); empty shares floored at 1e-4."""
    return f"""
        select sum((a - e) * ln(a / e)) as psi from (
            select greatest(coalesce(e.share, 0), 1e-4) as e,
                   greatest(coalesce(a.share, 0), 1e-4) as a
            from ({expected}) as e full join ({actual}) as a using (key))"""


__all__ = [
    "BINS", "CALIBRATION", "DDL", "FEATURE_MART", "MODELS", "OUTCOMES_MART", "PSI",
    "TRENDS_MART", "auc_ks_sql", "examples_sql", "feature_bins_sql", "features_relation_sql",
    "psi_sql", "score_sql",
]
