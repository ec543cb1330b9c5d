"""The scorecard's SQL: tables, training examples, the features relation and scoring.

A fitted scorecard is rows in `marts.pd_scorecard_bins`, so scoring is one SQL statement run
inside DuckDB (`score_sql`): each firm-month's feature values become one list, each value
finds its bin among the model's bins (interval by counting the cut points at or below it,
category by equality, NULL to the missing bin, an unseen category to the unknown-category
bin), and the bins' log-odds terms and points are summed. No Python touches the rows, so a
million firms score in seconds. `feature_bins_sql` gives the same bin assignment in long form
(one row per firm-month x feature, unnest + hash join) for per-bin statistics such as PSI.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

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


def feature_bins_sql(
    model_version: str, features_relation: str, features: Sequence[FeatureSpec]
) -> str:
    """One row per firm x month end x model feature with the bin its value falls in:
    enterprise_id, month_end, feature, value, bin_id, bin_label, points, logit_contribution.
    `features` must cover the model's features (others are unpivoted and dropped)."""
    version = text(model_version)
    items = []
    for f in features:
        num, txt, shown = _value_exprs(f)
        items.append(
            f"{{'feature': {text(f.name)}, 'num': {num}, 'txt': {txt}, 'value': {shown}}}"
        )
    return f"""
        with bins as (
            select * from {BINS} where model_version = {version}
        ),
        feature_meta as (
            select
                feature,
                bool_or(categories is not null)                                 as is_categorical,
                max(case when is_missing then bin_id end)                       as missing_bin,
                max(case when len(categories) = 0 then bin_id end)              as unknown_bin,
                list(lower_bound order by lower_bound)
                    filter (where lower_bound is not null and categories is null
                            and not is_missing)                                 as cuts
            from bins
            group by feature
        ),
        category_bins as (
            select feature, bin_id, unnest(categories) as category
            from bins
            where len(categories) > 0
        ),
        long as (
            select enterprise_id, month_end, u.feature, u.num, u.txt, u.value
            from (
                select r.enterprise_id, r.month_end, unnest([{", ".join(items)}]) as u
                from ({features_relation}) as r
            )
        ),
        assigned as (
            select
                l.enterprise_id, l.month_end, l.feature, l.value,
                case
                    when m.is_categorical and l.txt is null then m.missing_bin
                    when m.is_categorical then coalesce(c.bin_id, m.unknown_bin)
                    when l.num is null then m.missing_bin
                    -- [lower, upper): the bin index is the number of cut points <= value
                    else len(list_filter(coalesce(m.cuts, []), lambda x: x <= l.num))
                end as bin_id
            from long as l
            join feature_meta as m on m.feature = l.feature
            left join category_bins as c on c.feature = l.feature and c.category = l.txt
        )
        select
            a.enterprise_id, a.month_end, a.feature, a.value, a.bin_id, b.bin_label,
            b.points, b.logit_contribution
        from assigned as a
        join bins as b on b.feature = a.feature and b.bin_id = a.bin_id"""


def score_sql(
    model_version: str,
    features_relation: str,
    features: Sequence[FeatureSpec] | None = None,
    *,
    with_feature_points: bool = True,
) -> str:
    """Score a features relation (e.g. `features_relation_sql(...)`) with one model.

    Returns enterprise_id, month_end, model_version, logit, pd = 1/(1+exp(-logit)), score
    (points; HIGHER = SAFER: score = offset - factor * logit) and feature_points, a list of
    STRUCT(feature, bin_id, bin_label, value, points, logit_contribution) sorted riskiest term
    first, so reasons can name what adds most risk. `features`: the model's features with
    their dtype (`ScorecardModel.feature_specs`); default the candidates of scorecard.yml.
    Fails (DuckDB error()) if the model is unknown, has no bins or `features` misses one.

    How: each row's feature values become one list (the unpivot, in `features` order); the
    model's bins, read once into a single-row `model` relation (one list entry per feature
    with its cut points, category positions, missing and unknown-category bin), are joined
    to every row, and each value picks its bin by position. No GROUP BY over the scored rows
    (re-aggregating 15 structs per firm is what made the long-form version slow), so 1M firms
    score in seconds.
    """
    if features is None:
        from assets.scorecard.spec import load_spec

        features = load_spec().features
    version = text(model_version)
    items = []
    for f in features:
        num, txt, shown = _value_exprs(f)
        items.append(f"{{'num': {num}, 'txt': {txt}, 'value': {shown}}}")
    order = ", ".join(f"({i}, {text(f.name)})" for i, f in enumerate(features, start=1))
    names = ", ".join(text(f.name) for f in features)
    points = (
        """,
            list_select(p, list_grade_up(list_transform(p, lambda x: -x.logit_contribution)))
                                                                    as feature_points"""
        if with_feature_points
        else ""
    )
    return f"""
        with bins as (
            select *, row_number() over (partition by feature order by bin_id) as pos
            from {BINS} where model_version = {version}
        ),
        per_feature as (
            select
                feature,
                bool_or(categories is not null)                         as is_cat,
                coalesce(list(lower_bound order by bin_id) filter (
                    where lower_bound is not null and categories is null and not is_missing),
                    [])                                                 as cuts,
                max(case when is_missing then pos end)                  as missing_pos,
                max(case when len(categories) = 0 then pos end)         as unknown_pos,
                list(struct_pack(feature, bin_id, bin_label, points, logit_contribution)
                     order by bin_id)                                   as fbins
            from bins
            group by feature
        ),
        categories as (
            select feature, list(category order by category) as cat_keys,
                   list(pos order by category) as cat_pos
            from (select feature, pos, unnest(categories) as category
                  from bins where len(categories) > 0)
            group by feature
        ),
        model as (
            select
                any_value(m.intercept) as intercept,
                list(struct_pack(is_cat := p.is_cat, cuts := p.cuts,
                                 missing_pos := p.missing_pos, unknown_pos := p.unknown_pos,
                                 cat_keys := c.cat_keys, cat_pos := c.cat_pos,
                                 fbins := p.fbins) order by fl.idx) as meta
            from (values {order}) as fl(idx, feature)
            left join per_feature as p using (feature)
            left join categories as c using (feature)
            left join (select intercept from {MODELS} where model_version = {version}) as m
                on true
        ),
        checked as (
            select
                case
                    when intercept is null then error(
                        'score_sql: no fitted scorecard ' || {version})
                    when exists (select 1 from per_feature where feature not in ({names}))
                        then error('score_sql: the features passed do not cover model '
                                   || {version})
                    else intercept
                end as intercept,
                meta
            from model
        ),
        picked as (
            select
                r.enterprise_id,
                r.month_end,
                m.intercept,
                list_transform([{", ".join(items)}], lambda it, i: struct_pack(
                    b := m.meta[i].fbins[
                        case
                            when m.meta[i].is_cat and it.txt is null then m.meta[i].missing_pos
                            when m.meta[i].is_cat then coalesce(
                                m.meta[i].cat_pos[list_position(m.meta[i].cat_keys, it.txt)],
                                m.meta[i].unknown_pos)
                            when it.num is null then m.meta[i].missing_pos
                            -- [lower, upper): the bin is 1 + the number of cut points <= value
                            else 1 + len(list_filter(m.meta[i].cuts, lambda c: c <= it.num))
                        end],
                    value := it.value)) as raw
            from ({features_relation}) as r, checked as m
        ),
        terms as (
            select
                enterprise_id, month_end, intercept,
                list_transform(list_filter(raw, lambda x: x.b is not null), lambda x: struct_pack(
                    feature := x.b.feature, bin_id := x.b.bin_id, bin_label := x.b.bin_label,
                    value := x.value, points := x.b.points,
                    logit_contribution := x.b.logit_contribution)) as p
            from picked
        )
        select
            enterprise_id,
            month_end,
            {version}                                                    as model_version,
            intercept + list_sum(list_transform(p, lambda x: x.logit_contribution)) as logit,
            1.0 / (1.0 + exp(-logit))                                    as pd,
            list_sum(list_transform(p, lambda x: x.points))              as score{points}
        from terms"""


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
