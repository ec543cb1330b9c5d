"""How much ranking does the PD scorecard leave on the table? A model-agnostic check.

python benchmarks/backtest_model_ceiling.py --warehouse W.duckdb [--exclude region_code]

Needs the `bench` extra (`uv sync --extra dev --extra bench`: LightGBM) and a warehouse where
`risk backtest` ran: its latest run must be the champion's out-of-time window. Read-only.

Protocol (the scorecard's own, assets/scorecard/sql.examples_sql):
- Training: the champion's training firm-months (not in default, 12-month outcome observed by
  its fit date), every column of the feature marts (fct_enterprise_month_end and _trends;
  identifiers, dates, text and `is_default` left out), unweighted.
- Test: the firm-months of the latest back-test run, with the champion's stored PD.
- Boosting rounds: 4-fold cross-validation grouped by firm on the training rows only.
- Firm-disjoint figures: the training labels (defaults up to 12 months after the training
  window) overlap the out-of-time horizon, so a flexible model can recognise a firm it saw
  default. Each firm is therefore also scored by a model trained on the other half of the
  firms (2 folds by a hash of enterprise_id): those are the figures to read.
- `--exclude`: columns left out. The default, region_code, is drawn at random by this
  project's generator and only lets the model memorise firms; on a bank's own book pass
  `--exclude ''`.

Prints the 6- and 12-month AUC of the scorecard and of LightGBM (all columns, 12- and
6-month labels; the scorecard's own features, 12-month label), and the top features by gain.
Then the trade-off the watchlist lives on, per model (LightGBM firm-disjoint): at the cut-off
that lists 2, 3 or 4% of the performing firm-months (no default within 12 months), the share
of the firms defaulting within 12 months of a test month end that it lists, and that it lists
while all their loans are current. Test month ends only, so below `risk backtest`'s own
listed-while-current, which also reads decisions after the window; comparable across models.
Measured on a generated 100k book (seed 31337, out of time 2025-05..2025-10, 40 s): firm-disjoint
LightGBM 6-month AUC 0.910 (12-month label) and 0.920 (6-month label) against the scorecard's
0.867 before the binning fix of 2026-11-29 and 0.891 after it.
"""

from __future__ import annotations

import argparse
import time

import duckdb
import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GroupKFold

CATEGORICAL = ["industry_code", "region_code", "size_class", "status_at_month_end",
               "tax_rating", "tax_rating_prev"]
#: Keys, a constant on a population out of default, and a calendar year (time, not risk).
NOT_FEATURES = {"enterprise_id", "month_end", "is_default", "tax_rating_year"}
SEED = 20261129
PARAMS = dict(
    objective="binary", learning_rate=0.03, num_leaves=31, min_data_in_leaf=100,
    feature_fraction=0.7, bagging_fraction=0.8, bagging_freq=1, lambda_l2=10.0,
    cat_smooth=20, min_data_per_group=100, max_cat_threshold=16,
    verbose=-1, seed=SEED, deterministic=True, force_col_wise=True,
)


def _columns(con: duckdb.DuckDBPyConnection, exclude: set[str]) -> tuple[list[str], list[str]]:
    """(numerical, categorical) feature columns of the two feature marts."""
    rows = con.execute(
        "select table_name, column_name, data_type from duckdb_columns() "
        "where schema_name = 'marts' and table_name in "
        "('fct_enterprise_month_end', 'fct_enterprise_month_end_trends') "
        "order by table_name, column_index").fetchall()
    numerical: list[str] = []
    for table, col, dtype in rows:
        if col in NOT_FEATURES or col in CATEGORICAL or col in exclude or dtype == "VARCHAR":
            continue
        numerical.append(f"{'t' if table.endswith('trends') else 'f'}.{col}")
    return numerical, [c for c in CATEGORICAL if c not in exclude]


def _frames(con, numerical, categorical, champion) -> tuple[pd.DataFrame, pd.DataFrame]:
    fit_date, train_start, train_end = champion[1:4]
    cols = ", ".join([f"cast({c} as double) as {c.split('.')[1]}" for c in numerical]
                     + [f"f.{c}" for c in categorical])

    def joined(a: str) -> str:
        def on(t: str) -> str:
            return f"{t}.enterprise_id = {a}.enterprise_id and {t}.month_end = {a}.month_end"

        return (f"join marts.fct_enterprise_month_end as f on {on('f')} "
                f"left join marts.fct_enterprise_month_end_trends as t on {on('t')}")

    train = con.execute(f"""
        select o.enterprise_id, o.default_within_12m as y12, o.default_within_6m as y6, {cols}
        from marts.fct_enterprise_outcomes as o {joined('o')}
        where not o.in_default and last_day(o.month_end + interval 12 month) <= ?
          and o.month_end between ? and ?""", [fit_date, train_start, train_end]).df()
    test = con.execute(f"""
        select s.enterprise_id, s.default_within_12m as y12, s.default_within_6m as y6,
               s.all_loans_current, s.pd as scorecard_pd, {cols}
        from marts.backtest_scores as s {joined('s')}
        where s.run_id = (select run_id from marts.backtest_runs order by ran_at desc limit 1)
        """).df()
    for c in categorical:
        cats = sorted(set(train[c].dropna()) | set(test[c].dropna()))
        train[c] = pd.Categorical(train[c], categories=cats)
        test[c] = pd.Categorical(test[c], categories=cats)
    return train, test


def _auc(y, score) -> float:
    return float(roc_auc_score(np.asarray(y, bool), np.asarray(score, float)))


#: Shares of performing firm-months listed at which the models are compared.
SHARES = (0.02, 0.03, 0.04)


def _listed_at_shares(test: pd.DataFrame, score) -> list[tuple[float, float]]:
    """Per share of SHARES: (defaulting firms listed, listed while all loans current), with
    the cut-off that lists that share of the performing firm-months."""
    score = np.asarray(score, float)
    defaulting = test.y12.to_numpy(bool)
    performing = score[~defaulting]
    firms = test.enterprise_id[defaulting]
    out = []
    for share in SHARES:
        listed = score >= np.quantile(performing, 1 - share)
        frame = pd.DataFrame({
            "firm": firms, "listed": listed[defaulting],
            "current": listed[defaulting] & test.all_loans_current.to_numpy(bool)[defaulting]})
        per_firm = frame.groupby("firm")[["listed", "current"]].any()
        out.append((float(per_firm.listed.mean()), float(per_firm.current.mean())))
    return out


def _lightgbm(train, test, features, label, categorical, threads):
    """(AUC 6m, AUC 12m) scored by the model on all training firms, the same firm-disjoint,
    the fitted model and the firm-disjoint scores."""
    import lightgbm as lgb

    params = PARAMS | {"num_threads": threads}
    cat = [c for c in features if c in categorical]
    x, y = train[features], train[label].to_numpy()
    folds = list(GroupKFold(n_splits=4).split(x, y, train.enterprise_id))
    cv = lgb.cv(params, lgb.Dataset(x, y, categorical_feature=cat, free_raw_data=False),
                num_boost_round=3000, folds=folds, stratified=False, metrics=["auc"],
                callbacks=[lgb.early_stopping(100, verbose=False)])
    rounds = int(np.argmax(next(v for k, v in cv.items() if k.endswith("auc-mean")))) + 1

    def fit(mask):
        return lgb.train(params, lgb.Dataset(x[mask], y[mask], categorical_feature=cat),
                         num_boost_round=rounds)

    model = fit(np.ones(len(x), bool))
    seen = model.predict(test[features])
    half = (pd.util.hash_pandas_object(train.enterprise_id, index=False) % 2).to_numpy()
    half_test = (pd.util.hash_pandas_object(test.enterprise_id, index=False) % 2).to_numpy()
    unseen = np.empty(len(test))
    for k in (0, 1):
        scored = half_test == 1 - k
        unseen[scored] = fit(half == k).predict(test.loc[scored, features])
    return ((_auc(test.y6, seen), _auc(test.y12, seen)),
            (_auc(test.y6, unseen), _auc(test.y12, unseen)), model, unseen)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--warehouse", required=True)
    ap.add_argument("--exclude", default="region_code",
                    help="comma-separated columns to leave out ('' for none)")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    started = time.perf_counter()
    con = duckdb.connect(args.warehouse, read_only=True)
    champion = con.execute(
        "select model_version, fit_date, train_start, train_end, oot_start, oot_end, features "
        "from marts.pd_scorecard_models where status = 'champion' "
        "order by fitted_at desc limit 1").fetchone()
    if champion is None:
        raise SystemExit("no champion scorecard: run `risk backtest` first")
    window = con.execute("select window_start, window_end from marts.backtest_runs "
                         "order by ran_at desc limit 1").fetchone()
    if window != champion[4:6]:
        raise SystemExit(f"the latest back-test ({window}) is not the champion's out-of-time "
                         f"window {champion[4:6]}: run `risk backtest --no-refit`")
    exclude = {c.strip() for c in args.exclude.split(",") if c.strip()}
    numerical, categorical = _columns(con, exclude)
    train, test = _frames(con, numerical, categorical, champion)
    everything = [c.split(".")[1] for c in numerical] + categorical
    print(f"champion {champion[0]}: trained {champion[2]}..{champion[3]}, "
          f"out of time {champion[4]}..{champion[5]}")
    print(f"training {len(train):,} firm-months ({int(train.y12.sum()):,} 12-month defaults); "
          f"test {len(test):,} ({int(test.y6.sum()):,} 6-month defaults); "
          f"{len(everything)} columns\n")
    print(f"{'model':<44} {'AUC 6m':>7} {'AUC 12m':>8} {'6m unseen':>10} {'12m unseen':>11}")
    print(f"{'scorecard (stored PD)':<44} {_auc(test.y6, test.scorecard_pd):7.3f} "
          f"{_auc(test.y12, test.scorecard_pd):8.3f}")
    gain = None
    listed = {"scorecard (stored PD)": _listed_at_shares(test, test.scorecard_pd)}
    for name, features, label in (
        ("LightGBM, all columns, 12-month label", everything, "y12"),
        ("LightGBM, all columns, 6-month label", everything, "y6"),
        ("LightGBM, the scorecard's features", list(champion[6]), "y12"),
    ):
        seen, unseen, model, scores = _lightgbm(
            train, test, features, label, categorical, args.threads)
        print(f"{name:<44} {seen[0]:7.3f} {seen[1]:8.3f} {unseen[0]:10.3f} {unseen[1]:11.3f}")
        listed[f"{name} (unseen)"] = _listed_at_shares(test, scores)
        if gain is None:
            gain = pd.Series(model.feature_importance("gain"), index=model.feature_name())
    gain = (gain / gain.sum()).sort_values(ascending=False).head(10)
    print("\ntop columns by gain (all columns, 12-month label):")
    for col, share in gain.items():
        used = " (in the scorecard)" if col in champion[6] else ""
        print(f"  {col:<44} {share:.3f}{used}")
    print(f"\ndefaulting firms listed / listed while current, at the cut-off listing this share "
          f"of performing firm-months ({int(test[test.y12].enterprise_id.nunique()):,} firms "
          "default within 12 months of a test month end):")
    print(f"{'model':<55}" + "".join(f"{f'{s:.0%}':>15}" for s in SHARES))
    for name, figures in listed.items():
        print(f"{name:<55}" + "".join(f"{a:>7.1%} /{c:>6.1%}" for a, c in figures))
    print(f"\nseconds: {time.perf_counter() - started:.1f}")


if __name__ == "__main__":
    main()
