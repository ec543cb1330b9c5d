"""Fit, evaluate, store and promote the PD scorecard (no Dagster here).

`fit_scorecard(con, fit_date, spec)` builds the point-in-time examples and the training sample
in DuckDB, fits optbinning's BinningProcess + Scorecard on the sample only, writes the model
as rows (models, bins, calibration, PSI) in one transaction, and evaluates it by scoring in
SQL with the very bins it wrote, so the figures describe what production will compute.
`promote(con, version)` applies the champion/challenger rule; `current_model(con)` returns the
champion or None (cold start, or never fitted).
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from importlib.metadata import version as package_version

import duckdb
import pandas as pd

from assets.core.metadata import table_exists
from assets.core.month_ends import add_months, months_between
from assets.core.sql import date_literal, ident, literal, text
from assets.scorecard.spec import FeatureSpec, ScorecardSpec, load_spec
from assets.scorecard.sql import (
    BINS,
    CALIBRATION,
    DDL,
    FEATURE_MART,
    MODELS,
    PSI,
    auc_ks_sql,
    examples_sql,
    feature_bins_sql,
    features_relation_sql,
    psi_sql,
    score_sql,
)

TRAIN_SAMPLE = "_pd_scorecard_train"
OOT_EXAMPLES = "_pd_scorecard_oot"
COUNT_COLUMNS = ("n_train", "n_train_defaults", "n_oot", "n_oot_defaults")
#: Threads optbinning bins features in (one per core, at most 4: DuckDB is idle meanwhile).
BINNING_THREADS = max(1, min(4, os.cpu_count() or 1))


# ---------------------------------------------------------------------------------------------
# Dates


@dataclass(frozen=True)
class Windows:
    """Training and out-of-time month ends of one fit (all outcome windows end <= fit_date)."""

    fit_date: date
    train_start: date
    train_end: date
    oot_start: date
    oot_end: date

    @property
    def holdout_months(self) -> int:
        return months_between(self.oot_start, self.oot_end) + 1


def warmup_end(con: duckdb.DuckDBPyConnection, spec: ScorecardSpec) -> date | None:
    """The first month end after the history's warm-up: `history_warmup_months` after the
    first month end at which most firms have VAT data (before it the 12-month look-backs are
    NULL because the warehouse starts). None without feature rows."""
    history_start = con.execute(f"""
        select min(month_end) from (
            select month_end from {FEATURE_MART}
            group by month_end having avg((revenue_1m is not null)::int) >= 0.5)
    """).fetchone()[0]
    if history_start is None:
        return None
    return add_months(history_start, spec.history_warmup_months)


def training_months(
    con: duckdb.DuckDBPyConnection, model_version: str | None, month_ends: Sequence[date]
) -> list[date]:
    """The month ends among `month_ends` model `model_version` was trained on (none without a
    model, or for a cold-start row): its decisions there are in-sample."""
    if not model_version:
        return []
    train = con.execute(
        f"select train_start, train_end from {MODELS} where model_version = ?", [model_version]
    ).fetchone()
    if not train or train[0] is None:
        return []
    return [m for m in month_ends if train[0] <= m <= train[1]]


def fit_windows(
    con: duckdb.DuckDBPyConnection, fit_date: date, spec: ScorecardSpec
) -> Windows | None:
    """Out of time = the last `holdout_months` month ends whose 12-month window ended by
    fit_date; training = the `train_months` before them, not earlier than
    `history_warmup_months` after the warehouse's history starts (the first month end at
    which most firms have VAT data). On a short history the holdout shrinks (not below
    `min_holdout_months`) to leave `min_train_months` to train on. None when no month end
    qualifies."""
    latest = con.execute(
        f"select max(month_end), min(month_end) from ({examples_sql(fit_date, None, fit_date)})"
    ).fetchone()
    if latest[0] is None:
        return None
    oot_end = latest[0]
    first = latest[1]
    warmed_up = warmup_end(con, spec)
    if warmed_up:
        first = max(first, warmed_up)
    usable = months_between(first, oot_end) + 1  # observed month ends after the warm-up
    holdout = spec.holdout_months
    if usable - holdout < spec.min_train_months:
        holdout = max(spec.min_holdout_months, min(holdout, usable - spec.min_train_months))
    oot_start = add_months(oot_end, -(holdout - 1))
    train_end = add_months(oot_start, -1)
    train_start = first
    if spec.train_months:
        train_start = max(train_start, add_months(train_end, -(spec.train_months - 1)))
    return Windows(fit_date, train_start, train_end, oot_start, oot_end)


# ---------------------------------------------------------------------------------------------
# Models as read back


@dataclass(frozen=True)
class ScorecardModel:
    """One row of marts.pd_scorecard_models, plus the dtype of each feature (from its bins)."""

    model_version: str
    status: str
    fit_date: date
    intercept: float | None
    features: tuple[str, ...]
    categorical: frozenset[str] = field(default_factory=frozenset)
    auc_oot: float | None = None
    oot_start: date | None = None
    oot_end: date | None = None

    @property
    def feature_specs(self) -> list[FeatureSpec]:
        """The features as score_sql wants them (mart is irrelevant there)."""
        return [
            FeatureSpec(
                name=f,
                mart="enterprise",
                dtype="categorical" if f in self.categorical else "numerical",
            )
            for f in self.features
        ]


def load_model(con: duckdb.DuckDBPyConnection, model_version: str) -> ScorecardModel | None:
    if not table_exists(con, "marts", "pd_scorecard_models"):
        return None
    row = con.execute(
        f"select model_version, status, fit_date, intercept, features, auc_oot, oot_start, "
        f"oot_end from {MODELS} where model_version = ?",
        [model_version],
    ).fetchone()
    if row is None:
        return None
    cats = con.execute(
        f"select distinct feature from {BINS} where model_version = ? and categories is not null",
        [model_version],
    ).fetchall()
    return ScorecardModel(
        model_version=row[0], status=row[1], fit_date=row[2], intercept=row[3],
        features=tuple(row[4] or ()), categorical=frozenset(c[0] for c in cats),
        auc_oot=row[5], oot_start=row[6], oot_end=row[7],
    )


def current_model(con: duckdb.DuckDBPyConnection) -> ScorecardModel | None:
    """The champion, or None: nothing fitted yet or only cold starts (the engine then runs on
    the expert signal catalog). A later cold start does not retire a working champion."""
    if not table_exists(con, "marts", "pd_scorecard_models"):
        return None
    row = con.execute(
        f"select model_version from {MODELS} where status = 'champion' "
        "order by fitted_at desc limit 1"
    ).fetchone()
    return load_model(con, row[0]) if row else None



#: The relation `champion_pd_sql` scores: a CTE the dbt model that uses it defines.
CHAMPION_FEATURES = "champion_features"


def champion_pd_sql(con: duckdb.DuckDBPyConnection) -> str:
    """SQL scoring the champion stored in the warehouse now on the rows of a relation named
    `champion_features` (enterprise_id, month_end and the model's feature columns), giving
    enterprise_id, month_end, model_version, logit, pd, score; '' with no champion.

    For the network features' "another firm on red by its PD" (stored in
    main.dbt_pd_champion for fct_enterprise_month_end_network_pd): read before the dbt step,
    so it is the model in use, fitted before this build's features, and scoring stays
    `score_sql`'s only."""
    model = current_model(con)
    return "" if model is None else _champion_score_sql(con, model)


def _champion_score_sql(con: duckdb.DuckDBPyConnection, model: ScorecardModel) -> str:
    return score_sql(
        con, model.model_version, f"select * from {CHAMPION_FEATURES}", model.feature_specs,
        with_feature_points=False,
    )


def champion_fingerprint(con: duckdb.DuckDBPyConnection) -> str:
    """A short hash of what the champion scores with: its scoring SQL (`champion_pd_sql`),
    intercept and bins ('' with no champion). The network PD facts built with one champion
    stay valid while the fingerprint does (refresh_plan.plan_recompute)."""
    model = current_model(con)
    if model is None:
        return ""
    digest = hashlib.sha256(_champion_score_sql(con, model).encode())
    for query in (f"SELECT intercept FROM {MODELS}",
                  f"SELECT feature, bin_id, lower_bound, upper_bound, categories, is_missing, "
                  f"logit_contribution FROM {BINS}"):
        rows = con.execute(f"{query} WHERE model_version = ? ORDER BY ALL",
                           [model.model_version]).fetchall()
        digest.update(repr(rows).encode())
    return digest.hexdigest()[:16]


# ---------------------------------------------------------------------------------------------
# Training data


def _feature_select(spec: ScorecardSpec) -> str:
    cols = []
    for f in spec.features:
        cast = "varchar" if f.dtype == "categorical" else "double"
        cols.append(f"cast(f.{ident(f.name)} as {cast}) as {ident(f.name)}")
    return ", ".join(cols)


def _build_training_tables(
    con: duckdb.DuckDBPyConnection, w: Windows, spec: ScorecardSpec
) -> dict[str, int]:
    """Temp tables: the training sample (all defaults + seeded hash sample of non-defaults,
    weight = non-defaults / sampled) with features, and the out-of-time examples."""
    fit = w.fit_date
    train_rel = features_relation_sql(
        f"month_end between {date_literal(w.train_start)} and {date_literal(w.train_end)}"
    )
    seed = literal(spec.sample.seed)
    cap = literal(spec.sample.max_non_defaults)
    con.execute(f"""
        create or replace temp table {TRAIN_SAMPLE} as
        with ex as ({examples_sql(fit, w.train_start, w.train_end)}),
        counts as (select count(*) filter (where not y) as n_nd from ex),
        nd as (
            select enterprise_id, month_end from ex where not y
            order by hash(enterprise_id, month_end, {seed}) limit {cap}
        ),
        picked as (
            select enterprise_id, month_end, true as y, 1.0::double as w from ex where y
            union all
            select enterprise_id, month_end, false, counts.n_nd / count(*) over ()
            from nd, counts
        )
        select p.enterprise_id, p.month_end, p.y, p.w, {_feature_select(spec)}
        from picked as p
        join ({train_rel}) as f using (enterprise_id, month_end)
    """)
    con.execute(f"""
        create or replace temp table {OOT_EXAMPLES} as
        {examples_sql(fit, w.oot_start, w.oot_end)}
    """)
    train_ex = examples_sql(fit, w.train_start, w.train_end)
    row = con.execute(f"""
        select
            (select count(*) from ({train_ex})),
            (select count(*) filter (where y) from ({train_ex})),
            (select count(distinct enterprise_id) filter (where y) from ({train_ex})),
            (select count(*) from {TRAIN_SAMPLE}),
            (select count(*) filter (where not y) from {TRAIN_SAMPLE}),
            (select count(*) from {OOT_EXAMPLES}),
            (select count(*) filter (where y) from {OOT_EXAMPLES})
    """).fetchone()
    keys = ("n_train", "n_train_defaults", "n_default_firms", "n_sample", "n_sample_nd",
            "n_oot", "n_oot_defaults")
    return dict(zip(keys, (int(v or 0) for v in row), strict=True))


# ---------------------------------------------------------------------------------------------
# Fitting


def _library() -> str:
    versions = (f"{p} {package_version(p)}" for p in ("optbinning", "scikit-learn"))
    return "; ".join(versions)


def _binning_process(
    spec: ScorecardSpec,
    names: list[str],
    trends: Mapping[str, str] | None = None,
    splits: Mapping[str, Sequence[float]] | None = None,
):
    """optbinning's BinningProcess over `names` with the spec's options: monotonic trend for
    numerical features (`trends` fixes it per feature), category grouping for categorical
    ones, IV-based selection. `splits`: cut points already found for a numerical feature on
    this sample with this trend, fixed so optbinning does not search for them again."""
    from optbinning import BinningProcess

    b = spec.binning
    categorical = [n for n in names if spec.feature(n).dtype == "categorical"]
    trends = trends or {}
    splits = splits or {}

    def fixed(n: str) -> dict:
        cuts = [float(c) for c in splits.get(n, ())]
        return {"user_splits": cuts, "user_splits_fixed": [True] * len(cuts)} if cuts else {}
    return BinningProcess(
        variable_names=names,
        categorical_variables=categorical or None,
        # features are binned independently, in threads: the CP solver and scikit-learn's
        # pre-binning tree release the GIL (100k fit of seed 62626: 58.1 to 50.7 s, same bins)
        n_jobs=BINNING_THREADS,
        max_n_prebins=b.max_n_prebins,
        max_n_bins=b.max_n_bins,
        min_bin_size=b.min_bin_size,
        split_digits=b.split_digits,
        # optbinning applies `top` only with a `strategy`: without it the cap was ignored
        selection_criteria={"iv": {"min": b.min_iv, "strategy": "highest",
                                   "top": b.max_features}},
        binning_fit_params={
            n: {"monotonic_trend": trends.get(n, b.monotonic_trend),
                "min_prebin_size": b.min_prebin_size, **fixed(n)}
            for n in names
            if n not in categorical
        },
    )


def monotonic_binnings(
    df: pd.DataFrame, spec: ScorecardSpec, names: list[str]
) -> tuple[dict[str, str], dict[str, list[float]]]:
    """Each numerical feature's trend and the cut points of its binning with that trend.

    With `ascending_or_descending`, the trend of the two whose binning carries the higher
    information value on the training sample (optbinning's own `auto_asc_desc` guesses from
    the first pre-bins: on fund_diversion_max_share, zero for 85% of firm-months, flat up to
    0.3, then 73% defaulting above 0.5, it guessed descending and left one bin, IV 0, so the
    scorecard never used it); otherwise the spec's trend and no cut points. The selection
    and the scorecard reuse the cut points instead of solving the same binning twice more
    (fits at 100k: 42 to 29 s; 1M: 150 to 109 s). The same cut points; with a sampled,
    weighted training set the bins' weighted counts move slightly (optbinning truncates each
    pre-bin's to an integer, and the reused cut points leave one pre-bin per bin): at 1M WoE
    by at most 5e-5."""
    numerical = [n for n in names if spec.feature(n).dtype == "numerical"]
    if spec.binning.monotonic_trend != "ascending_or_descending" or not numerical:
        return {}, {}
    y, weight = df["y"].astype(int).to_numpy(), df["w"].to_numpy()
    iv, cuts = {}, {}
    for trend in ("ascending", "descending"):
        fitted = _binning_process(spec, numerical, dict.fromkeys(numerical, trend)).fit(
            df[numerical], y, sample_weight=weight)
        iv[trend] = fitted.summary().set_index("name")["iv"].astype(float)
        cuts[trend] = {n: list(fitted.get_binned_variable(n).splits) for n in numerical}
    trends = {n: "descending" if iv["descending"][n] > iv["ascending"][n] else "ascending"
              for n in numerical}
    return trends, {n: cuts[trend][n] for n, trend in trends.items()}


def _logistic(spec: ScorecardSpec):
    from sklearn.linear_model import LogisticRegression

    lr = spec.logistic_regression
    return LogisticRegression(C=lr.C, max_iter=lr.max_iter, solver=lr.solver)


def unusable_candidates(df: pd.DataFrame, spec: ScorecardSpec) -> list[str]:
    """Candidates with fewer than two distinct values in the training sample (all NULL, e.g.
    a 24-month look-back on a short history, or constant): nothing to bin, and optbinning
    fails on an empty column, so they are left out and named in the model's notes."""
    return [f.name for f in spec.features if df[f.name].nunique(dropna=True) < 2]


def missing_shares_now(
    con: duckdb.DuckDBPyConnection, spec: ScorecardSpec, fit_date: date
) -> tuple[date | None, dict[str, float]]:
    """Each candidate's missing share at the latest month end on or before fit_date: the
    month end the model will score next, against which the training window is judged."""
    (latest,) = con.execute(
        f"select max(month_end) from {FEATURE_MART} where month_end <= {date_literal(fit_date)}"
    ).fetchone()
    if latest is None:
        return None, {}
    shares = ", ".join(
        f"avg(case when {ident(f.name)} is null then 1.0 else 0.0 end)" for f in spec.features
    )
    rel = features_relation_sql(f"month_end = {date_literal(latest)}")
    row = con.execute(f"select {shares} from ({rel})").fetchone()
    names = [f.name for f in spec.features]
    return latest, {n: float(v) for n, v in zip(names, row, strict=True) if v is not None}


def unavailable_candidates(
    df: pd.DataFrame, spec: ScorecardSpec, missing_now: dict[str, float]
) -> dict[str, tuple[float, float]]:
    """Candidates the training window had not yet filled: their weighted missing share in the
    training sample exceeds their share now by more than `max_missing_excess` (a look-back
    longer than the history before most training month ends). Bins learned on the few month
    ends where such a feature existed would move every PD once it fills in, so it is left out
    until the history is long enough. Returns name -> (share in training, share now)."""
    weight = df["w"].to_numpy()
    total = float(weight.sum()) or 1.0
    unusable = set(unusable_candidates(df, spec))  # named once, under their own reason
    out: dict[str, tuple[float, float]] = {}
    for f in spec.features:
        if f.name not in missing_now or f.name in unusable:
            continue
        train = float((df[f.name].isna().to_numpy() * weight).sum()) / total
        if train - missing_now[f.name] > spec.max_missing_excess:
            out[f.name] = (train, missing_now[f.name])
    return out


def fit_optbinning_scorecard(
    df: pd.DataFrame, spec: ScorecardSpec, left_out: Sequence[str] = ()
):
    """Bin every usable candidate (see `unusable_candidates`; `left_out` names more to skip)
    and keep those the IV criteria select; then drop, one at a time,
    any feature whose logistic coefficient has the wrong sign (WoE rises with safety, so a
    coefficient >= 0 means collinearity flipped it), so every bin's points read the way its
    event rate says; then fit optbinning's Scorecard on the kept features (a feature's bins
    do not depend on the others, so they are the ones selected). Returns (Scorecard or None
    when no feature qualifies, dropped features, unusable candidates)."""
    from optbinning import Scorecard

    y, weight = df["y"].astype(int).to_numpy(), df["w"].to_numpy()
    unusable = unusable_candidates(df, spec)
    candidates = [f.name for f in spec.features if f.name not in unusable + list(left_out)]
    if not candidates:
        return None, [], unusable
    trends, splits = monotonic_binnings(df, spec, candidates)
    process = _binning_process(spec, candidates, trends, splits).fit(
        df[candidates], y, sample_weight=weight)
    names = list(process.get_support(names=True))
    if not names:
        return None, [], unusable
    x_woe = process.transform(
        df[names], metric="woe", metric_special="empirical", metric_missing="empirical"
    )
    dropped: list[str] = []
    while len(names) > 1:
        model = _logistic(spec).fit(x_woe[names], y, sample_weight=weight)
        wrong = [(c, n) for n, c in zip(names, model.coef_.ravel(), strict=True) if c >= 0]
        if not wrong:
            break
        worst = max(wrong)[1]
        dropped.append(worst)
        names.remove(worst)
    card = Scorecard(
        binning_process=_binning_process(spec, names, trends, splits),
        estimator=_logistic(spec),
        scaling_method="pdo_odds",
        scaling_method_params={
            "pdo": spec.scaling.pdo,
            "odds": spec.scaling.odds,
            "scorecard_points": spec.scaling.base_points,
        },
        rounding=False,
    )
    card.fit(
        df[names], y, sample_weight=weight,
        metric_special="empirical", metric_missing="empirical",
    )
    return card, dropped, unusable


def _scaled(logit_term: float, intercept: float, n: int, spec: ScorecardSpec) -> float:
    """optbinning's pdo_odds points of one bin (for the unknown-category bin it lacks)."""
    factor = spec.scaling.pdo / math.log(2)
    offset = spec.scaling.base_points - factor * math.log(spec.scaling.odds)
    return -(logit_term + intercept / n) * factor + offset / n


def _fmt(x: float) -> str:
    return f"{x:.6g}"


def bins_frame(card, spec: ScorecardSpec, model_version: str) -> pd.DataFrame:
    """The fitted scorecard as rows of marts.pd_scorecard_bins (Special bins dropped: no
    special codes are used; categorical features get an explicit unknown-category bin with
    WoE 0, which is what optbinning's predict_proba gives an unseen category)."""
    table = card.table(style="detailed")
    intercept = float(card.estimator_.intercept_[0])
    selected = list(card.binning_process_.get_support(names=True))
    n = len(selected)
    rows = []
    for name in selected:
        optb = card.binning_process_.get_binned_variable(name)
        t = table[table["Variable"] == name].reset_index(drop=True)
        total = float(t["Count"].sum())
        categorical = optb.dtype == "categorical"
        splits = list(optb.splits)
        n_bins = len(splits) if categorical else len(splits) + 1
        for _, r in t.iterrows():
            bin_id = int(r["Bin id"])
            label = str(r["Bin"])
            if label == "Special":
                continue
            is_missing = label == "Missing"
            lower = upper = None
            cats = None
            if categorical:
                cats = [] if is_missing else None
                if not is_missing:
                    cats = [str(c) for c in splits[bin_id]]
                    label = ", ".join(cats)
                else:
                    cats = None
            elif not is_missing:
                lower = float(splits[bin_id - 1]) if bin_id > 0 else None
                upper = float(splits[bin_id]) if bin_id < n_bins - 1 else None
                label = f"[{_fmt(lower) if lower is not None else '-inf'}, " \
                        f"{_fmt(upper) if upper is not None else 'inf'})"
            coef = float(r["Coefficient"])
            woe = float(r["WoE"])
            rows.append({
                "model_version": model_version, "feature": name, "bin_id": bin_id,
                "bin_label": label, "lower_bound": lower, "upper_bound": upper,
                "categories": cats, "is_missing": is_missing,
                "train_count": int(round(float(r["Count"]))),
                "train_share": float(r["Count"]) / total if total else None,
                "train_event_rate": float(r["Event rate"]) if float(r["Count"]) else None,
                "woe": woe,
                "coefficient": coef, "logit_contribution": coef * woe,
                "points": float(r["Points"]),
            })
        if categorical:
            coef = float(t["Coefficient"].iloc[0])
            rows.append({
                "model_version": model_version, "feature": name, "bin_id": n_bins + 2,
                "bin_label": "Unknown category (not seen in training)", "lower_bound": None,
                "upper_bound": None, "categories": [], "is_missing": False, "train_count": 0,
                "train_share": 0.0, "train_event_rate": None, "woe": 0.0, "coefficient": coef,
                "logit_contribution": 0.0, "points": _scaled(0.0, intercept, n, spec),
            })
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------------------
# Writing and evaluating


def _ensure_tables(con: duckdb.DuckDBPyConnection) -> None:
    for stmt in DDL:
        con.execute(stmt)


def _insert_model_row(con: duckdb.DuckDBPyConnection, row: dict) -> None:
    cols = list(row)
    con.execute(
        f"insert into {MODELS} ({', '.join(cols)}) values ({', '.join('?' for _ in cols)})",
        [row[c] for c in cols],
    )


def _evaluate(
    con: duckdb.DuckDBPyConnection, model: ScorecardModel, spec: ScorecardSpec, w: Windows
) -> dict:
    """AUC/KS in and out of time, calibration by score band, PSI (score and features), all
    by scoring in SQL with the stored bins."""
    version = model.model_version
    v = text(version)
    feats = model.feature_specs
    oot_window = f"month_end between {date_literal(w.oot_start)} and {date_literal(w.oot_end)}"
    oot_rel = (
        f"select f.* from ({features_relation_sql(oot_window)}) as f "
        f"semi join {OOT_EXAMPLES} as e using (enterprise_id, month_end)"
    )
    con.execute(f"""
        create or replace temp table _pd_scorecard_scored as
        select 'train' as sample, s.enterprise_id, s.month_end, s.y, s.w, x.pd, x.score
        from {TRAIN_SAMPLE} as s
        join ({score_sql(con, version, f'select * from {TRAIN_SAMPLE}', feats,
                         with_feature_points=False)}) as x using (enterprise_id, month_end)
        union all
        select 'oot', e.enterprise_id, e.month_end, e.y, 1.0, x.pd, x.score
        from {OOT_EXAMPLES} as e
        join ({score_sql(con, version, oot_rel, feats, with_feature_points=False)}) as x
            using (enterprise_id, month_end)
    """)
    out: dict = {}
    for sample in ("train", "oot"):
        rel = f"select * from _pd_scorecard_scored where sample = {text(sample)}"
        auc, ks, _ = con.execute(auc_ks_sql(rel, weight_col="w")).fetchone() or (None, None, 0)
        out[f"auc_{sample}"], out[f"ks_{sample}"] = auc, ks
    # Score bands: deciles (or `calibration_bands`) of the training sample's score.
    k = spec.calibration_bands
    probs = ", ".join(literal(i / k) for i in range(1, k))
    con.execute(f"""
        create or replace temp table _pd_scorecard_banded as
        select s.*, 1 + len(list_filter(edges.e, lambda x: x <= s.score)) as band
        from _pd_scorecard_scored as s,
             (select quantile_cont(score, [{probs}]) as e
              from _pd_scorecard_scored where sample = 'train') as edges
    """)
    con.execute(f"""
        insert into {CALIBRATION}
        select {v}, sample, band, min(score), max(score), count(*),
               sum(w * pd) / sum(w), sum(w * y::int) / sum(w)
        from _pd_scorecard_banded group by sample, band order by sample, band
    """)
    # Score PSI over the same bands (the training sample weighted to its population).
    psi_score = con.execute(f"""
        with shares as (
            select sample, band, sum(w) / sum(sum(w)) over (partition by sample) as share
            from _pd_scorecard_banded group by sample, band
        )
        {psi_sql("select band as key, share from shares where sample = 'train'",
                 "select band as key, share from shares where sample = 'oot'")}
    """).fetchone()[0]
    con.execute(f"insert into {PSI} values ({v}, 'score', 'score', ?)", [psi_score])
    # Feature PSI over the feature's own bins.
    train_bins = f"""
        select fb.feature, fb.bin_id, sum(s.w) as n
        from ({feature_bins_sql(con, version, f'select * from {TRAIN_SAMPLE}', feats)}) as fb
        join {TRAIN_SAMPLE} as s using (enterprise_id, month_end)
        group by all"""
    oot_bins = f"""
        select feature, bin_id, count(*)::double as n
        from ({feature_bins_sql(con, version, oot_rel, feats)}) group by all"""
    con.execute(f"""
        insert into {PSI}
        with t as ({train_bins}), o as ({oot_bins}),
        j as (
            select feature,
                   greatest(coalesce(t.n, 0) / sum(coalesce(t.n, 0)) over (partition by feature),
                            1e-4) as e,
                   greatest(coalesce(o.n, 0) / sum(coalesce(o.n, 0)) over (partition by feature),
                            1e-4) as a
            from t full join o using (feature, bin_id)
        )
        select {v}, feature, 'feature', sum((a - e) * ln(a / e)) from j group by feature
    """)
    out["psi_score"] = psi_score
    con.execute("drop table if exists _pd_scorecard_scored")
    con.execute("drop table if exists _pd_scorecard_banded")
    return out


def new_version(fit_date: date, fitted_at: datetime) -> str:
    return f"pd-{fit_date.isoformat()}-{fitted_at:%Y%m%dT%H%M%S%f}"


@dataclass
class FitResult:
    """A stored fit plus what produced it (tests compare SQL scoring with `card`)."""

    model_version: str
    status: str
    windows: Windows | None
    card: object | None = None
    sample: pd.DataFrame | None = None
    dropped: list[str] = field(default_factory=list)


def fit_scorecard(
    con: duckdb.DuckDBPyConnection, fit_date: date, spec: ScorecardSpec | None = None
) -> str:
    """Fit one scorecard as of fit_date and store it; returns its model_version.

    Status 'challenger' (run `promote` next) or 'cold_start' when the training window has
    fewer than `min_defaults` defaulting enterprises (then nothing is fitted)."""
    return fit_scorecard_detailed(con, fit_date, spec).model_version


def fit_scorecard_detailed(
    con: duckdb.DuckDBPyConnection, fit_date: date, spec: ScorecardSpec | None = None
) -> FitResult:
    """`fit_scorecard`, returning the fitted optbinning Scorecard and sample as well."""
    spec = spec or load_spec()
    fitted_at = datetime.now(UTC).replace(tzinfo=None)
    version = new_version(fit_date, fitted_at)
    base = {
        "model_version": version, "fitted_at": fitted_at, "fit_date": fit_date,
        "library": _library(),
    }
    w = fit_windows(con, fit_date, spec)
    try:
        return _fit(con, version, base, w, spec)
    finally:
        con.execute(f"drop table if exists {TRAIN_SAMPLE}")
        con.execute(f"drop table if exists {OOT_EXAMPLES}")


def _write_cold_start(
    con: duckdb.DuckDBPyConnection, row: dict, w: Windows | None, counts: dict[str, int]
) -> None:
    if w:
        row |= {
            "train_start": w.train_start, "train_end": w.train_end,
            "oot_start": w.oot_start, "oot_end": w.oot_end,
            **{k: counts[k] for k in COUNT_COLUMNS},
        }
    con.execute("begin transaction")
    try:
        _ensure_tables(con)
        _insert_model_row(con, row)
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise


def _fit(
    con: duckdb.DuckDBPyConnection, version: str, base: dict, w: Windows | None,
    spec: ScorecardSpec,
) -> FitResult:
    counts = _build_training_tables(con, w, spec) if w else {}
    n_firms = counts.get("n_default_firms", 0)
    if w is None or n_firms < spec.min_defaults:
        if w is None:
            window = "none (no outcome observed yet)"
        elif w.train_start > w.train_end:  # warm-up + holdout leave no month: history too short
            window = (
                f"none (the history is too short: after {spec.history_warmup_months} warm-up "
                f"months and the {w.holdout_months}-month holdout ending {w.oot_end}, no "
                "month end is left to train on)"
            )
        else:
            window = f"{w.train_start} .. {w.train_end}"
        notes = (
            f"cold start: {n_firms} defaulting enterprises "
            f"({counts.get('n_train_defaults', 0)} default firm-months) in the training window "
            f"{window}, fewer than min_defaults={spec.min_defaults}; no model fitted, the "
            "early-warning engine keeps the expert signal catalog."
        )
        _write_cold_start(con, {**base, "status": "cold_start", "notes": notes}, w, counts)
        return FitResult(version, "cold_start", w)

    df = con.execute(f"select * from {TRAIN_SAMPLE} order by enterprise_id, month_end").df()
    latest, missing_now = missing_shares_now(con, spec, w.fit_date)
    unavailable = unavailable_candidates(df, spec, missing_now)
    card, dropped, unusable = fit_optbinning_scorecard(df, spec, left_out=list(unavailable))
    if card is None:
        notes = (
            f"cold start: no candidate feature reached min_iv={spec.binning.min_iv} on "
            f"{counts['n_train_defaults']} default firm-months ({n_firms} enterprises); no "
            "model fitted, the early-warning engine keeps the expert signal catalog."
        )
        _write_cold_start(con, {**base, "status": "cold_start", "notes": notes}, w, counts)
        return FitResult(version, "cold_start", w, None, df)
    bins = bins_frame(card, spec, version)
    selected = list(card.binning_process_.get_support(names=True))
    intercept = float(card.estimator_.intercept_[0])
    weight = (counts["n_train"] - counts["n_train_defaults"]) / max(counts["n_sample_nd"], 1)
    notes = (
        f"sample: all {counts['n_train_defaults']} default firm-months "
        f"({n_firms} enterprises) + {counts['n_sample_nd']} non-default firm-months "
        f"weighted {weight:.4g}; score = points, higher = safer "
        f"(pdo {spec.scaling.pdo:g}, {spec.scaling.base_points:g} at odds "
        f"{spec.scaling.odds:g}:1)"
    )
    trends = {n: (card.binning_process_.binning_fit_params or {}).get(n, {}).get(
        "monotonic_trend") for n in selected}
    for trend in ("ascending", "descending"):
        if named := [n for n, t in trends.items() if t == trend]:
            notes += f"; default rate {trend} with the value: {', '.join(named)}"
    if dropped:
        notes += f"; dropped for wrong-sign coefficient: {', '.join(dropped)}"
    if unusable:
        notes += f"; left out, fewer than 2 distinct values in training: {', '.join(unusable)}"
    if unavailable:
        shares = ", ".join(
            f"{n} (missing in {t:.0%} of training firm-months, {now:.0%} at {latest})"
            for n, (t, now) in unavailable.items()
        )
        notes += f"; left out, look-back not yet filled in the training window: {shares}"
    if w.holdout_months < spec.holdout_months:
        notes += (
            f"; short history: the out-of-time holdout is {w.holdout_months} months, not "
            f"{spec.holdout_months}, to leave {months_between(w.train_start, w.train_end) + 1} "
            "months to train on"
        )
    row = {
        **base, "status": "challenger", "train_start": w.train_start, "train_end": w.train_end,
        "oot_start": w.oot_start, "oot_end": w.oot_end,
        **{k: counts[k] for k in COUNT_COLUMNS},
        "intercept": intercept, "features": selected, "notes": notes,
    }
    con.execute("begin transaction")
    try:
        _ensure_tables(con)
        _insert_model_row(con, row)
        con.register("_pd_scorecard_bins_df", bins)
        con.execute(f"insert into {BINS} by name select * from _pd_scorecard_bins_df")
        con.unregister("_pd_scorecard_bins_df")
        model = load_model(con, version)
        metrics = _evaluate(con, model, spec, w)
        con.execute(
            f"update {MODELS} set auc_train = ?, ks_train = ?, auc_oot = ?, ks_oot = ? "
            "where model_version = ?",
            [metrics["auc_train"], metrics["ks_train"], metrics["auc_oot"], metrics["ks_oot"],
             version],
        )
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    return FitResult(version, "challenger", w, card, df, dropped)


# ---------------------------------------------------------------------------------------------
# Champion / challenger


@dataclass(frozen=True)
class Promotion:
    """What `promote` decided and on which figures."""

    model_version: str
    promoted: bool
    previous_champion: str | None
    challenger_auc_oot: float | None
    champion_auc_oot: float | None
    reason: str


def oot_auc(
    con: duckdb.DuckDBPyConnection, model: ScorecardModel, on: ScorecardModel
) -> float | None:
    """AUC of `model` rescored in SQL on the out-of-time window of `on` (same examples)."""
    rel = features_relation_sql(
        f"month_end between {date_literal(on.oot_start)} and {date_literal(on.oot_end)}"
    )
    ex = examples_sql(on.fit_date, on.oot_start, on.oot_end)
    scored = f"""
        select e.y, x.pd from ({ex}) as e
        join ({score_sql(con, model.model_version, rel, model.feature_specs,
                         with_feature_points=False)}) as x using (enterprise_id, month_end)"""
    row = con.execute(auc_ks_sql(scored)).fetchone()
    return row[0] if row else None


def promote(
    con: duckdb.DuckDBPyConnection, new_version: str, spec: ScorecardSpec | None = None
) -> Promotion:
    """Champion/challenger: the new fit becomes champion (the old one 'retired') when there is
    no champion or its OOT AUC is not worse than the champion's AUC rescored on the same OOT
    window (minus `max_auc_drop`); otherwise it stays 'challenger'. Cold starts never promote."""
    spec = spec or load_spec()
    new = load_model(con, new_version)
    if new is None:
        raise KeyError(f"no scorecard model {new_version!r}")
    if new.status != "challenger":
        return Promotion(new_version, False, None, new.auc_oot, None,
                         f"status is {new.status}: nothing to promote")
    champ = current_model(con)
    rescore_error = ""
    try:
        champ_auc = oot_auc(con, champ, new) if champ else None
    except duckdb.Error as exc:  # e.g. a feature the champion reads is gone from the marts
        champ_auc, rescore_error = None, str(exc).splitlines()[0]
    drop = spec.champion_challenger.max_auc_drop
    if champ is None:
        promoted, reason = True, "no champion yet"
    elif new.auc_oot is None:
        promoted, reason = False, "challenger has no out-of-time AUC (no OOT defaults)"
    elif champ_auc is None:
        promoted = True
        reason = (f"champion {champ.model_version} could not be rescored on the same window"
                  f" ({rescore_error or 'no OOT AUC'})")
    elif new.auc_oot >= champ_auc - drop:
        promoted = True
        reason = (f"OOT AUC {new.auc_oot:.4f} >= champion {champ.model_version} "
                  f"{champ_auc:.4f} on the same window" + (f" - {drop}" if drop else ""))
    else:
        promoted = False
        reason = (f"OOT AUC {new.auc_oot:.4f} < champion {champ.model_version} "
                  f"{champ_auc:.4f} on the same window" + (f" - {drop}" if drop else "")
                  + ": champion kept")
    con.execute("begin transaction")
    try:
        if promoted:
            if champ:
                con.execute(f"update {MODELS} set status = 'retired' where model_version = ?",
                            [champ.model_version])
            con.execute(f"update {MODELS} set status = 'champion' where model_version = ?",
                        [new_version])
        con.execute(
            f"update {MODELS} set notes = coalesce(notes || '; ', '') || ? where model_version = ?",
            [("promoted: " if promoted else "not promoted: ") + reason, new_version],
        )
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    return Promotion(new_version, promoted, champ.model_version if champ else None,
                     new.auc_oot, champ_auc, reason)


# ---------------------------------------------------------------------------------------------
# Model card


def model_card(con: duckdb.DuckDBPyConnection, model_version: str) -> dict:
    """What a validator reads about one fit: the models row, calibration, PSI and each
    feature's points range (plain data; the Dagster asset renders it)."""
    cur = con.execute(f"select * from {MODELS} where model_version = ?", [model_version])
    cols = [d[0] for d in cur.description]
    row = cur.fetchone()
    if row is None:
        raise KeyError(f"no scorecard model {model_version!r}")
    card: dict = {"model": dict(zip(cols, row, strict=True))}
    if card["model"]["status"] == "cold_start":
        return card | {"calibration": [], "psi": [], "features": []}
    card["calibration"] = con.execute(
        f"select sample, band, score_lower, score_upper, n, predicted_pd, observed_rate "
        f"from {CALIBRATION} where model_version = ? order by sample desc, band",
        [model_version],
    ).fetchall()
    card["psi"] = con.execute(
        f"select item, kind, psi from {PSI} where model_version = ? "
        "order by kind desc, psi desc",
        [model_version],
    ).fetchall()
    card["features"] = con.execute(
        f"""select b.feature, count(*) as bins, min(b.points), max(b.points),
                   max(b.points) - min(b.points) as points_range, any_value(b.coefficient),
                   any_value(p.psi)
            from {BINS} as b
            left join {PSI} as p on p.model_version = b.model_version and p.item = b.feature
            where b.model_version = ? group by b.feature order by points_range desc""",
        [model_version],
    ).fetchall()
    return card


__all__ = [
    "FitResult", "Promotion", "ScorecardModel", "Windows", "add_months", "current_model",
    "fit_scorecard", "fit_scorecard_detailed", "fit_windows", "load_model", "model_card", "oot_auc",
    "promote",
]
