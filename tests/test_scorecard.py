"""PD scorecard: point in time, SQL scoring = optbinning, champion/challenger, cold start.

Small synthetic warehouses built here with DuckDB (no dbt run): the three marts with only the
columns the test spec reads, so each fit takes about a second.
"""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
import yaml

from assets.core.month_ends import add_months
from assets.core.sql import date_literal
from assets.scorecard import (
    current_model,
    features_relation_sql,
    fit_scorecard,
    load_model,
    load_spec,
    promote,
    score_sql,
)
from assets.scorecard import fit as fit_module
from assets.scorecard.fit import fit_scorecard_detailed, fit_windows, model_card, warmup_end
from assets.scorecard.spec import SpecError, parse_spec
from assets.scorecard.sql import ScoringError, examples_sql

ROOT = Path(__file__).resolve().parents[1]
FIT_DATE = date(2024, 12, 31)
MONTHS = [add_months(date(2022, 1, 31), i) for i in range(36)]  # 2022-01 .. 2024-12

SPEC = {
    "min_defaults": 20,
    "holdout_months": 6,
    "train_months": None,
    "history_warmup_months": 0,
    "sample": {"max_non_defaults": 4000, "seed": 7},
    "binning": {"max_n_bins": 4, "min_bin_size": 0.05, "min_iv": 0.0, "max_features": 10},
    "features": [
        {"name": "x1", "mart": "enterprise"},
        {"name": "x2", "mart": "enterprise"},
        {"name": "grade", "mart": "enterprise", "dtype": "categorical"},
        {"name": "t1", "mart": "trends"},
    ],
}


def make_spec(**changes) -> object:
    return parse_spec({**SPEC, **changes})


def build_warehouse(path: Path, n_firms: int = 500, seed: int = 1) -> duckdb.DuckDBPyConnection:
    """Firm-months 2022-01..2024-12: x1 (strong, some NULLs), x2 (weak), grade (A/B/C),
    t1 (trend mart), noise; default_within_12m ~ logistic in them; a few rows in default."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n_firms):
        level = rng.normal()
        grade = rng.choice(["A", "B", "C"], p=[0.5, 0.35, 0.15])
        for m in MONTHS:
            x1 = level + rng.normal(scale=0.5)
            x2 = rng.normal()
            t1 = rng.normal()
            logit = -3.6 + 1.1 * x1 + 0.25 * x2 + 0.6 * t1 + {"A": 0, "B": 0.4, "C": 1.0}[grade]
            y = rng.random() < 1 / (1 + np.exp(-logit))
            rows.append({
                "enterprise_id": f"E{i:05d}", "month_end": m,
                "x1": None if rng.random() < 0.05 else round(x1, 3), "x2": round(x2, 3),
                "grade": grade, "noise": rng.normal(), "t1": round(t1, 3),
                "in_default": bool(rng.random() < 0.01), "default_within_12m": bool(y),
            })
    df = pd.DataFrame(rows)
    con = duckdb.connect(str(path))
    con.execute("create schema marts")
    con.register("df", df)
    con.execute("""create table marts.fct_enterprise_month_end as
        select enterprise_id, month_end::date as month_end, 1.0::double as revenue_1m,
               x1::double as x1, x2::double as x2, grade::varchar as grade,
               noise::double as noise from df""")
    con.execute("""create table marts.fct_enterprise_month_end_trends as
        select enterprise_id, month_end::date as month_end, t1::double as t1 from df""")
    con.execute("""create table marts.fct_enterprise_outcomes as
        select enterprise_id, month_end::date as month_end, in_default,
               default_within_12m and not in_default as default_within_12m from df""")
    con.unregister("df")
    return con


@pytest.fixture
def con(tmp_path: Path) -> duckdb.DuckDBPyConnection:
    c = build_warehouse(tmp_path / "wh.duckdb")
    yield c
    c.close()


def bins_of(con: duckdb.DuckDBPyConnection, version: str) -> pd.DataFrame:
    return con.execute(
        "select * exclude (model_version) from marts.pd_scorecard_bins "
        "where model_version = ? order by feature, bin_id", [version]
    ).df()


# ---------------------------------------------------------------------------------------------
# Point in time


def test_no_training_example_has_an_outcome_window_after_fit_date(con) -> None:
    spec = make_spec()
    result = fit_scorecard_detailed(con, FIT_DATE, spec)
    w = result.windows
    assert add_months(w.oot_end, 12) <= FIT_DATE < add_months(w.oot_end, 13)
    assert add_months(w.oot_start, spec.holdout_months - 1) == w.oot_end
    assert w.train_end < w.oot_start
    sample = result.sample
    assert sample["month_end"].max().date() <= w.train_end
    assert all(add_months(m.date(), 12) <= FIT_DATE for m in sample["month_end"])
    assert not sample.empty and sample["y"].sum() > 0
    # every example the fit can see, train and out of time
    bad = con.execute(f"""
        select count(*) from ({examples_sql(FIT_DATE, None, FIT_DATE)})
        where last_day(month_end + interval 12 month) > {date_literal(FIT_DATE)}
    """).fetchone()[0]
    assert bad == 0
    row = con.execute(
        "select oot_end, n_oot from marts.pd_scorecard_models where model_version = ?",
        [result.model_version],
    ).fetchone()
    assert row[0] == w.oot_end and row[1] > 0


def test_a_default_after_fit_date_does_not_change_the_fit(con) -> None:
    spec = make_spec()
    before = fit_scorecard(con, FIT_DATE, spec)
    # Defaults whose 12-month window ends after the fit date (month ends after 2023-12):
    # every one of those firm-months now defaults, and firms are in default later on.
    cutoff = date_literal(add_months(FIT_DATE, -12))
    con.execute(f"update marts.fct_enterprise_outcomes set default_within_12m = true "
                f"where month_end > {cutoff}")
    con.execute(f"update marts.fct_enterprise_outcomes set in_default = true "
                f"where month_end > {date_literal(FIT_DATE)}")
    after = fit_scorecard(con, FIT_DATE, spec)
    pd.testing.assert_frame_equal(bins_of(con, before), bins_of(con, after))
    models = con.execute(
        "select intercept, n_train, n_train_defaults, n_oot, n_oot_defaults, auc_oot "
        "from marts.pd_scorecard_models order by fitted_at"
    ).fetchall()
    assert models[0] == models[1]


# ---------------------------------------------------------------------------------------------
# SQL scoring = optbinning


def test_sql_scoring_equals_optbinning(con) -> None:
    spec = make_spec()
    result = fit_scorecard_detailed(con, FIT_DATE, spec)
    version, card = result.model_version, result.card
    model = load_model(con, version)
    assert {"x1", "grade", "t1"} <= set(model.features) <= {"x1", "x2", "grade", "t1"}

    # Out-of-time rows from the warehouse plus edge cases: NULLs, an unseen category, values
    # beyond every training value, exactly on a cut point.
    w = result.windows
    rel = features_relation_sql(
        f"month_end between {date_literal(w.oot_start)} and {date_literal(w.oot_end)}"
    )
    rows = con.execute(f"select enterprise_id, month_end, x1, x2, grade, t1 from ({rel})").df()
    cut = float(con.execute(
        "select min(lower_bound) from marts.pd_scorecard_bins "
        "where model_version = ? and feature = 'x1'", [version]
    ).fetchall()[0][0])
    edge = pd.DataFrame({
        "enterprise_id": ["Z1", "Z2", "Z3", "Z4", "Z5"],
        "month_end": pd.to_datetime([FIT_DATE] * 5),
        "x1": [None, 1e12, -1e12, cut, cut - 1e-9],
        "x2": [None, 0.0, 1e9, -1e9, 0.5],
        "grade": ["A", None, "ZZZ", "C", "B"],
        "t1": [0.0, None, 3.0, -3.0, 0.1],
    })
    rows = pd.concat([rows, edge], ignore_index=True)
    rows["month_end"] = pd.to_datetime(rows["month_end"])
    con.register("rows_to_score", rows)
    out = con.execute(
        "select * from ("
        + score_sql(con, version, "select * from rows_to_score", model.feature_specs) + ")"
    ).df()
    out = out.set_index(["enterprise_id", "month_end"]).loc[
        list(zip(rows["enterprise_id"], rows["month_end"], strict=True))
    ]
    assert len(out) == len(rows)
    X = rows[[f.name for f in spec.features]]
    expected_pd = card.predict_proba(X)[:, 1]
    np.testing.assert_allclose(out["pd"].to_numpy(), expected_pd, rtol=0, atol=1e-9)
    np.testing.assert_allclose(
        out["logit"].to_numpy(), np.log(expected_pd / (1 - expected_pd)), rtol=0, atol=1e-7
    )
    # optbinning's own score() sends an unseen category to the Missing bin while its
    # predict_proba gives it WoE 0; our unknown-category bin follows predict_proba.
    known = (rows["grade"] != "ZZZ").to_numpy()
    np.testing.assert_allclose(out["score"].to_numpy()[known], card.score(X)[known], atol=1e-9)
    # higher score = safer
    assert np.corrcoef(out["score"], out["pd"])[0, 1] < 0

    fp = {e: p for (e, _), p in zip(out.index, out["feature_points"], strict=True)}
    z1 = {f["feature"]: f for f in fp["Z1"]}
    assert z1["x1"]["bin_label"] == "Missing" and z1["x1"]["value"] is None
    z3 = {f["feature"]: f for f in fp["Z3"]}
    assert z3["grade"]["bin_label"].startswith("Unknown category")
    assert z3["grade"]["logit_contribution"] == 0.0
    z4 = {f["feature"]: f for f in fp["Z4"]}
    z5 = {f["feature"]: f for f in fp["Z5"]}
    assert z4["x1"]["bin_id"] == z5["x1"]["bin_id"] + 1  # [lower, upper): the cut opens a bin
    assert len(fp["Z2"]) == len(model.features)
    # riskiest term first
    contrib = [f["logit_contribution"] for f in fp["Z2"]]
    assert contrib == sorted(contrib, reverse=True)
    # with points_from_logit: the same PD, and only the terms reaching it (those a reason
    # could name), in the same order
    floor = sorted(contrib)[len(contrib) // 2]
    few = con.execute(
        "select * from ("
        + score_sql(con, version, "select * from rows_to_score", model.feature_specs,
                    points_from_logit=floor) + ")"
    ).df().set_index(["enterprise_id", "month_end"]).loc[out.index]
    np.testing.assert_array_equal(few["pd"].to_numpy(), out["pd"].to_numpy())
    for all_terms, kept in zip(out["feature_points"], few["feature_points"], strict=True):
        assert list(kept) == [t for t in all_terms if t["logit_contribution"] >= floor]
    assert 0 < len(few["feature_points"].loc["Z2"].iloc[0]) < len(fp["Z2"])


def test_missing_and_unseen_values_land_in_a_bin(con) -> None:
    version = fit_scorecard(con, FIT_DATE, make_spec())
    model = load_model(con, version)
    con.execute("""create table odd as select * from (values
        ('N1', DATE '2024-12-31', NULL::DOUBLE, NULL::DOUBLE, NULL::VARCHAR, NULL::DOUBLE),
        ('N2', DATE '2024-12-31', 'nan'::DOUBLE, 'inf'::DOUBLE, 'never-seen', '-inf'::DOUBLE))
        as t(enterprise_id, month_end, x1, x2, grade, t1)""")
    out = con.execute(score_sql(con, version, "select * from odd", model.feature_specs)).fetchall()
    assert len(out) == 2
    for row in out:
        assert len(row[6]) == len(model.features)
        assert all(fp["bin_id"] is not None and fp["points"] is not None for fp in row[6])
        assert 0 < row[4] < 1


# ---------------------------------------------------------------------------------------------
# Champion / challenger, cold start, transaction


def test_champion_kept_when_challenger_worse_and_replaced_when_not(con) -> None:
    good = make_spec()
    first = fit_scorecard(con, FIT_DATE, good)
    assert promote(con, first, good).promoted
    assert current_model(con).model_version == first

    # A month later, a challenger on the weak feature only: worse on its own OOT window,
    # where the champion is rescored.
    later = date(2025, 1, 31)
    weak = make_spec(features=[{"name": "x2", "mart": "enterprise"}])
    worse = fit_scorecard(con, later, weak)
    decision = promote(con, worse, weak)
    assert not decision.promoted
    assert decision.champion_auc_oot > decision.challenger_auc_oot
    assert current_model(con).model_version == first
    statuses = dict(con.execute(
        "select model_version, status from marts.pd_scorecard_models").fetchall())
    assert statuses == {first: "champion", worse: "challenger"}
    assert "not promoted" in con.execute(
        "select notes from marts.pd_scorecard_models where model_version = ?", [worse]
    ).fetchone()[0]

    # The same good specification refitted a month later is not worse: promoted.
    refit = fit_scorecard(con, later, good)
    decision = promote(con, refit, good)
    assert decision.promoted and decision.previous_champion == first
    assert decision.challenger_auc_oot >= decision.champion_auc_oot
    assert current_model(con).model_version == refit
    status = con.execute(
        "select status from marts.pd_scorecard_models where model_version = ?", [first]
    ).fetchone()[0]
    assert status == "retired"


def test_cold_start_fits_nothing(con) -> None:
    spec = make_spec(min_defaults=100_000)
    version = fit_scorecard(con, FIT_DATE, spec)
    status, notes, features = con.execute(
        "select status, notes, features from marts.pd_scorecard_models where model_version = ?",
        [version],
    ).fetchone()
    assert status == "cold_start" and features is None
    assert "min_defaults=100000" in notes and "expert signal catalog" in notes
    assert con.execute("select count(*) from marts.pd_scorecard_bins").fetchone()[0] == 0
    assert not promote(con, version, spec).promoted
    assert current_model(con) is None
    assert model_card(con, version)["model"]["status"] == "cold_start"
    # Nothing observed yet at all (fit date before any 12-month window ended).
    early = fit_scorecard(con, date(2022, 6, 30), make_spec())
    assert load_model(con, early).status == "cold_start"
    assert current_model(con) is None
    # A warm-up that leaves no month before the holdout says the history is too short.
    short = fit_scorecard(con, FIT_DATE, make_spec(history_warmup_months=30))
    assert load_model(con, short).status == "cold_start"
    assert "the history is too short" in model_card(con, short)["model"]["notes"]


def test_a_short_history_shrinks_the_holdout_instead_of_falling_back(con) -> None:
    # 36 months of history, the shipped 12-month warm-up and holdout: 12 observed month ends
    # remain after the warm-up, so a 12-month holdout would leave nothing to train on.
    spec = make_spec(holdout_months=12, history_warmup_months=12)
    w = fit_windows(con, FIT_DATE, spec)
    assert (w.train_start, w.train_end) == (date(2023, 1, 31), date(2023, 6, 30))
    assert (w.oot_start, w.oot_end, w.holdout_months) == (date(2023, 7, 31), date(2023, 12, 31), 6)
    version = fit_scorecard(con, FIT_DATE, spec)
    model = load_model(con, version)
    assert model.status == "challenger"
    assert "short history: the out-of-time holdout is 6 months, not 12" in (
        model_card(con, version)["model"]["notes"]
    )
    # A long enough history keeps the full holdout (nothing shrinks when it need not).
    long = fit_windows(con, FIT_DATE, make_spec(holdout_months=12, history_warmup_months=0))
    assert long.holdout_months == 12 and long.train_start == date(2022, 1, 31)
    # The floor: never below min_holdout_months, even if that leaves little to train on.
    tight = fit_windows(con, FIT_DATE, make_spec(
        holdout_months=12, history_warmup_months=15, min_holdout_months=8))
    assert tight.holdout_months == 8 and tight.train_start == tight.train_end == date(2023, 4, 30)
    with pytest.raises(SpecError, match="min_holdout_months"):
        make_spec(holdout_months=6, min_holdout_months=7)


def test_warm_up_counts_from_the_first_month_end_most_firms_have_vat_data(con) -> None:
    spec = make_spec(history_warmup_months=12)
    assert warmup_end(con, spec) == date(2023, 1, 31)
    # VAT data arrive from 2022-07 for most firms (a few earlier ones do not move the start).
    con.execute("""update marts.fct_enterprise_month_end set revenue_1m = null
                   where month_end < date '2022-07-01' and enterprise_id > 'E00010'""")
    assert warmup_end(con, spec) == date(2023, 7, 31)
    assert fit_windows(con, FIT_DATE, spec).train_start == date(2023, 7, 31)


def test_a_failed_fit_leaves_the_tables_as_they_were(con, monkeypatch) -> None:
    spec = make_spec()
    fit_scorecard(con, FIT_DATE, spec)
    tables = ["pd_scorecard_models", "pd_scorecard_bins", "pd_scorecard_calibration",
              "pd_scorecard_psi"]

    def counts() -> list[int]:
        return [con.execute(f"select count(*) from marts.{t}").fetchone()[0] for t in tables]

    before = counts()

    def boom(*args, **kwargs):
        raise RuntimeError("evaluation failed")

    monkeypatch.setattr(fit_module, "_evaluate", boom)
    with pytest.raises(RuntimeError, match="evaluation failed"):
        fit_scorecard(con, FIT_DATE, spec)
    assert counts() == before


def test_model_card_and_stored_tables(con) -> None:
    version = fit_scorecard(con, FIT_DATE, make_spec())
    card = model_card(con, version)
    m = card["model"]
    assert 0.5 < m["auc_oot"] <= 1 and 0 < m["ks_oot"] <= 1 and 0.5 < m["auc_train"] <= 1
    assert m["library"].startswith("optbinning 1.0.0")
    assert {s for s, *_ in card["calibration"]} == {"train", "oot"}
    assert any(kind == "score" for _, kind, _ in card["psi"])
    assert {f for f, *_ in card["features"]} == set(m["features"])
    assert [b for s, b, *_ in card["calibration"] if s == "train"] == list(range(1, 11))
    # every numeric feature's bins tile the real line: [lower, upper) back to back
    bins = con.execute(
        "select feature, bin_id, lower_bound, upper_bound from marts.pd_scorecard_bins "
        "where model_version = ? and categories is null and not is_missing "
        "order by feature, bin_id", [version]
    ).fetchall()
    by_feature: dict[str, list] = {}
    for f, _, lo, hi in bins:
        by_feature.setdefault(f, []).append((lo, hi))
    for edges in by_feature.values():
        assert edges[0][0] is None and edges[-1][1] is None
        assert all(a[1] == b[0] for a, b in zip(edges, edges[1:], strict=False))


def test_training_sample_is_capped_and_weighted(con) -> None:
    spec = make_spec(sample={"max_non_defaults": 1000, "seed": 3})
    result = fit_scorecard_detailed(con, FIT_DATE, spec)
    s = result.sample
    # weights keep the intercept calibrated: the weighted mean PD is the population's rate
    n_train, n_def = con.execute(
        "select n_train, n_train_defaults from marts.pd_scorecard_models "
        "where model_version = ?", [result.model_version]
    ).fetchall()[0]
    mean_pd = np.average(result.card.predict_proba(s)[:, 1], weights=s["w"])
    assert mean_pd == pytest.approx(n_def / n_train, rel=0.05)
    unweighted = np.mean(result.card.predict_proba(s)[:, 1])
    assert unweighted > 1.5 * n_def / n_train  # the sample itself is enriched in defaults
    nd = s[~s["y"]]
    assert len(nd) == 1000 and (s[s["y"]]["w"] == 1).all()
    assert nd["w"].iloc[0] == pytest.approx((n_train - n_def) / 1000)
    assert s["w"].sum() == pytest.approx(n_train)
    again = fit_scorecard_detailed(con, FIT_DATE, spec).sample
    assert sorted(zip(nd["enterprise_id"], nd["month_end"], strict=True)) == sorted(
        zip(again[~again["y"]]["enterprise_id"], again[~again["y"]]["month_end"], strict=True)
    )


def test_windows_follow_the_fit_date(con) -> None:
    spec = make_spec(train_months=6)
    w = fit_windows(con, date(2024, 6, 30), spec)
    assert w.oot_end == date(2023, 6, 30)
    assert w.oot_start == date(2023, 1, 31)
    assert (w.train_start, w.train_end) == (date(2022, 7, 31), date(2022, 12, 31))


# ---------------------------------------------------------------------------------------------
# Specification and the trends model


def test_shipped_spec_names_columns_of_the_marts() -> None:
    spec = load_spec()
    docs = {}
    for name in ("_enterprise_features__models.yml", "_enterprise_trends__models.yml"):
        path = ROOT / "dbt_project/models/marts/enterprise_features" / name
        for model in yaml.safe_load(path.read_text(encoding="utf-8"))["models"]:
            docs[model["name"]] = {c["name"] for c in model["columns"]}
    mart = {"enterprise": "fct_enterprise_month_end", "trends": "fct_enterprise_month_end_trends"}
    for f in spec.features:
        assert f.name in docs[mart[f.mart]], f.name
    assert spec.min_defaults == 50 and spec.holdout_months == 12
    with pytest.raises(SpecError, match="min_defaults"):
        parse_spec({**SPEC, "min_defaults": 0})
    with pytest.raises(SpecError, match="surprise"):
        parse_spec({**SPEC, "surprise": 1})
    with pytest.raises(SpecError, match="twice"):
        parse_spec({**SPEC, "features": SPEC["features"] * 2})


def _trends_sql() -> str:
    """The trends model as a full build compiles it (the incremental macros render as on a
    first build), reading the registered frame `fem`."""
    import jinja2

    sql = (ROOT / "dbt_project/models/marts/enterprise_features/"
           "fct_enterprise_month_end_trends.sql").read_text(encoding="utf-8")
    return jinja2.Template(sql).render(
        config=lambda **_: "", month_end_materialization=lambda: "table",
        recompute_nothing=lambda: False, recompute_only_enterprises=lambda _: "",
        ref=lambda name: "fem", this="this",
    )


def test_trends_model_is_point_in_time() -> None:
    """Each row reads only its own and earlier month ends: changing later rows leaves the
    earlier results unchanged; own-baseline and filing-history columns are as documented."""
    con = duckdb.connect()
    n = len(MONTHS)
    revenue_1m = [100.0] * n
    revenue_1m[0] = None            # before the first filing
    revenue_1m[20] = None           # a missed filing
    base = pd.DataFrame({
        "enterprise_id": "E1",
        "month_end": MONTHS,
        "revenue_1m": revenue_1m,
        "revenue_3m": [300.0] * 24 + [150.0] * (n - 24),
        "revenue_3m_yoy": [None] * 12 + [0.1 * i for i in range(n - 12)],
        "electricity_3m": [30.0] * n,
        "tax_arrears": [float(i) for i in range(n)],
        "utility_late_payments_6m": [0] * 30 + [3] * (n - 30),
        "dpd_max_12m": [0] * 30 + [40] * (n - 30),
        "outstanding_to_revenue_12m": [0.5] * n,
    })
    con.register("fem", base)
    first = con.execute(_trends_sql() + " order by month_end").df()
    r = first.set_index(first["month_end"].dt.date)
    assert r.loc[MONTHS[24], "revenue_3m_vs_own_avg_12m"] == pytest.approx(0.5)
    assert r.loc[MONTHS[24], "revenue_3m_vs_own_peak_12m"] == pytest.approx(0.5)
    assert np.isnan(r.loc[MONTHS[3], "revenue_3m_vs_own_avg_12m"])  # < 6 earlier months
    assert r.loc[MONTHS[32], "dpd_max_12m_change_3m"] == 40
    assert r.loc[MONTHS[33], "dpd_max_12m_change_3m"] == 0
    assert r.loc[MONTHS[35], "dpd_max_12m_change_6m"] == 40
    assert r.loc[MONTHS[30], "utility_late_payments_6m_change_3m"] == 3
    assert r.loc[MONTHS[10], "tax_arrears_change_6m"] == 6
    assert pd.isna(r.loc[MONTHS[19], "months_since_missed_vat_filing"])
    assert r.loc[MONTHS[20], "months_since_missed_vat_filing"] == 0
    assert r.loc[MONTHS[25], "months_since_missed_vat_filing"] == 5
    assert pd.isna(r.loc[MONTHS[0], "months_since_first_vat_filing"])
    assert r.loc[MONTHS[5], "months_since_first_vat_filing"] == 4

    changed = base.copy()
    later = changed["month_end"] > MONTHS[17]
    for col in ("revenue_3m", "electricity_3m", "tax_arrears", "dpd_max_12m"):
        changed.loc[later, col] = changed.loc[later, col] * 7 + 1
    changed.loc[later, "revenue_1m"] = None
    con.unregister("fem")
    con.register("fem", changed)
    second = con.execute(_trends_sql() + " order by month_end").df()
    upto = first["month_end"] <= pd.Timestamp(MONTHS[17])
    pd.testing.assert_frame_equal(first[upto], second[upto])


def test_score_sql_refuses_unknown_model_or_missing_features(con) -> None:
    version = fit_scorecard(con, FIT_DATE, make_spec())
    model = load_model(con, version)
    rel = "select * from marts.fct_enterprise_month_end left join " \
          "marts.fct_enterprise_month_end_trends using (enterprise_id, month_end)"
    with pytest.raises(ScoringError, match="no fitted scorecard"):
        score_sql(con, "nope", rel, model.feature_specs)
    with pytest.raises(ScoringError, match="do not cover"):
        score_sql(con, version, rel, model.feature_specs[1:])
    # extra features (not in the model) are ignored
    extra = [*model.feature_specs, *make_spec(features=[{"name": "noise", "mart": "enterprise"}])
             .features]
    a = con.execute(f"select sum(pd) from ({score_sql(con, version, rel, extra)})").fetchall()
    b = con.execute(f"select sum(pd) from ({score_sql(con, version, rel, model.feature_specs)})"
                    ).fetchall()
    assert a == b


def test_no_informative_feature_is_a_cold_start(con) -> None:
    spec = make_spec(
        features=[{"name": "noise", "mart": "enterprise"}],
        binning={"max_n_bins": 4, "min_bin_size": 0.05, "min_iv": 0.5, "max_features": 5},
    )
    version = fit_scorecard(con, FIT_DATE, spec)
    model = load_model(con, version)
    assert model.status == "cold_start" and current_model(con) is None
    assert "min_iv=0.5" in model_card(con, version)["model"]["notes"]
    temp = con.execute("select count(*) from duckdb_tables() where temporary").fetchall()[0][0]
    assert temp == 0


def test_champion_that_cannot_be_rescored_gives_way(con) -> None:
    first = fit_scorecard(con, FIT_DATE, make_spec())
    promote(con, first, make_spec())
    con.execute("alter table marts.fct_enterprise_month_end drop column x1")
    spec = make_spec(features=[f for f in SPEC["features"] if f["name"] != "x1"])
    second = fit_scorecard(con, FIT_DATE, spec)
    decision = promote(con, second, spec)
    assert decision.promoted and "could not be rescored" in decision.reason
    assert current_model(con).model_version == second


def test_a_candidate_with_no_values_in_training_is_left_out_and_named(con) -> None:
    """A look-back longer than the history leaves a candidate all NULL in the training window
    (revenue_12m_yoy on a 48-month book): the fit leaves it out and says so, instead of
    failing the night."""
    con.execute("alter table marts.fct_enterprise_month_end add column empty double")
    con.execute("alter table marts.fct_enterprise_month_end add column flat double default 1")
    spec = make_spec(features=[*SPEC["features"], {"name": "empty", "mart": "enterprise"},
                               {"name": "flat", "mart": "enterprise"}])
    version = fit_scorecard(con, FIT_DATE, spec)
    model = load_model(con, version)
    assert model.status != "cold_start" and "x1" in model.features
    assert "empty" not in model.features and "flat" not in model.features
    notes = model_card(con, version)["model"]["notes"]
    assert "fewer than 2 distinct values in training: empty, flat" in notes


def test_a_candidate_whose_look_back_was_not_yet_filled_in_training_is_left_out(con) -> None:
    """A predictive feature that exists only in the last training month ends (a look-back
    longer than the history before them) is left out and named; it is kept once the gate is
    off, so the gate is what removes it."""
    con.execute("alter table marts.fct_enterprise_month_end add column late double")
    # Filled from 2023-04 on; training here is 2022-01..2023-06 (outcomes observed by the fit
    # date, then a 6-month holdout), so it is NULL in 15 of 18 training month ends.
    con.execute(
        "update marts.fct_enterprise_month_end set late = x1 where month_end >= '2023-04-30'"
    )
    features = [*SPEC["features"], {"name": "late", "mart": "enterprise"}]
    version = fit_scorecard(con, FIT_DATE, make_spec(features=features))
    model = load_model(con, version)
    assert model.status != "cold_start" and "late" not in model.features
    notes = model_card(con, version)["model"]["notes"]
    assert "look-back not yet filled in the training window: late (missing in" in notes
    shares = r"late \(missing in 8[0-9]% of training firm-months, [0-9]+% at 2024-12-31\)"
    assert re.search(shares, notes)

    kept = fit_scorecard(con, FIT_DATE, make_spec(features=features, max_missing_excess=1.0))
    assert "late" in load_model(con, kept).features


def _diversion_like_sample(n: int = 40_000, seed: int = 3) -> pd.DataFrame:
    """A feature shaped like fund_diversion_max_share on a bank's book: zero for 85% of
    firm-months, benign small values (ordinary transfers) up to 0.3 at the base default rate,
    and a rare tail above 0.5 where most firms default."""
    rng = np.random.default_rng(seed)
    u = rng.random(n)
    share = np.where(u < 0.85, 0.0, np.where(
        u < 0.92, rng.uniform(0.0, 0.1, n), np.where(
            u < 0.993, rng.uniform(0.1, 0.3, n), rng.uniform(0.5, 1.0, n))))
    rate = np.where(share >= 0.5, 0.73, np.where((share > 0) & (share < 0.1), 0.037, 0.034))
    return pd.DataFrame({"share": share, "y": rng.random(n) < rate, "w": 1.0})


def test_each_numerical_feature_keeps_the_trend_with_more_information() -> None:
    """optbinning's auto_asc_desc reads this feature as descending and leaves it one bin
    (IV 0, never selected); binned both ways, the ascending bins carry the tail's risk and
    the scorecard uses it."""
    df = _diversion_like_sample()
    binning = {**SPEC["binning"], "max_n_bins": 6, "min_bin_size": 0.005,
               "min_prebin_size": 0.005}
    features = [{"name": "share", "mart": "enterprise"}]

    guessed = make_spec(features=features, binning={**binning, "monotonic_trend": "auto_asc_desc"})
    card, _, _ = fit_module.fit_optbinning_scorecard(df, guessed)
    if card is not None:
        assert card.binning_process_.get_binned_variable("share").binning_table.iv < 0.01

    both = make_spec(features=features, binning=binning)
    assert both.binning.monotonic_trend == "ascending_or_descending"  # the default
    assert fit_module.monotonic_binnings(df, both, ["share"])[0] == {"share": "ascending"}
    card, _, _ = fit_module.fit_optbinning_scorecard(df, both)
    table = card.binning_process_.get_binned_variable("share").binning_table
    table.build()
    assert table.iv > 0.3
    tail = card.binning_process_.transform(
        pd.DataFrame({"share": [0.0, 0.8]}), metric="event_rate")
    assert tail["share"].iloc[1] > 0.5 > tail["share"].iloc[0]


def test_the_scorecard_reuses_the_cut_points_found_when_choosing_the_trend() -> None:
    """The selection and the scorecard take each numerical feature's cut points from the
    binning that chose its trend, fixed, instead of solving the same binning twice more; the
    bins are those a binning solved from scratch with that trend finds."""
    df = _diversion_like_sample()
    rng = np.random.default_rng(11)
    df["size"] = rng.lognormal(0.0, 1.0, len(df)) * np.where(df["y"], 0.7, 1.0)
    binning = {**SPEC["binning"], "max_n_bins": 6, "min_bin_size": 0.005,
               "min_prebin_size": 0.005}
    spec = make_spec(features=[{"name": "share", "mart": "enterprise"},
                               {"name": "size", "mart": "enterprise"}], binning=binning)
    names = ["share", "size"]
    card, _, _ = fit_module.fit_optbinning_scorecard(df, spec)
    trends, splits = fit_module.monotonic_binnings(df, spec, names)
    assert trends == {"share": "ascending", "size": "descending"}
    fresh = fit_module._binning_process(spec, names, trends).fit(
        df[names], df["y"].astype(int).to_numpy(), sample_weight=df["w"].to_numpy())
    for name in names:
        used = card.binning_process_.get_binned_variable(name)
        assert list(used.user_splits) == splits[name]  # given, not searched again
        assert len(used.splits) >= 2
        np.testing.assert_array_equal(used.splits, fresh.get_binned_variable(name).splits)
        woe = [b.binning_table.build()["WoE"].iloc[:-1].to_numpy(dtype=float)  # no Totals
               for b in (used, fresh.get_binned_variable(name))]
        np.testing.assert_allclose(woe[0], woe[1])


def test_binning_in_threads_finds_the_bins_of_one_thread(monkeypatch) -> None:
    """The features are binned in threads (BINNING_THREADS); each feature's trend, cut points
    and the scorecard's points are those of binning them one after another."""
    df = _diversion_like_sample()
    rng = np.random.default_rng(5)
    df["size"] = rng.lognormal(0.0, 1.0, len(df)) * np.where(df["y"], 0.7, 1.0)
    df["late"] = rng.poisson(np.where(df["y"], 1.5, 0.4))
    binning = {**SPEC["binning"], "max_n_bins": 6, "min_bin_size": 0.005,
               "min_prebin_size": 0.005}
    names = ["share", "size", "late"]
    spec = make_spec(features=[{"name": n, "mart": "enterprise"} for n in names],
                     binning=binning)
    results = {}
    for threads in (1, 3):
        monkeypatch.setattr(fit_module, "BINNING_THREADS", threads)
        assert fit_module._binning_process(spec, names).n_jobs == threads
        card, _, _ = fit_module.fit_optbinning_scorecard(df, spec)
        results[threads] = (fit_module.monotonic_binnings(df, spec, names),
                            card.table(style="summary").to_dict("records"))
    assert results[1] == results[3]
    assert results[1][0][0] == {"share": "ascending", "size": "descending", "late": "ascending"}


def test_the_model_notes_say_which_way_each_feature_was_binned(con) -> None:
    """A validator reads the direction of every numerical feature's bins in the notes."""
    version = fit_scorecard(con, FIT_DATE, make_spec())
    model = load_model(con, version)
    notes = model_card(con, version)["model"]["notes"]
    numerical = [f for f in model.features if f != "grade"]
    assert numerical
    for feature in numerical:
        assert re.search(rf"default rate (ascending|descending) with the value: [a-z0-9_, ]*"
                         rf"\b{feature}\b", notes), notes


def test_max_features_keeps_the_features_of_highest_information_value(con) -> None:
    """The cap is applied: with room for one feature, the fit keeps the strongest (x1)."""
    binning = {**SPEC["binning"], "max_features": 1}
    model = load_model(con, fit_scorecard(con, FIT_DATE, make_spec(binning=binning)))
    assert list(model.features) == ["x1"]
    both = load_model(con, fit_scorecard(con, FIT_DATE, make_spec()))
    assert len(both.features) > 1


def test_training_months_are_the_model_s_training_window() -> None:
    """The back-test's in-sample month ends: those inside the model's training window; none
    for no model, an unknown one, or a cold-start row (no window)."""
    from assets.scorecard.fit import training_months
    from assets.scorecard.sql import DDL, MODELS

    c = duckdb.connect()
    for stmt in DDL:
        c.execute(stmt)
    c.execute(
        f"INSERT INTO {MODELS} (model_version, status, fitted_at, fit_date, train_start, "
        "train_end) VALUES ('m', 'champion', now()::TIMESTAMP, DATE '2025-12-31', "
        "DATE '2024-03-31', DATE '2024-05-31'), ('cold', 'cold_start', now()::TIMESTAMP, "
        "DATE '2025-12-31', NULL, NULL)"
    )
    months = [date(2024, m, 29 if m == 2 else 30 if m in (4, 6) else 31) for m in range(1, 8)]
    assert training_months(c, "m", months) == months[2:5]
    assert training_months(c, None, months) == []
    assert training_months(c, "cold", months) == []
    assert training_months(c, "unknown", months) == []
