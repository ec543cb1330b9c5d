"""Back-test figures on small hand-made warehouses (in-memory DuckDB).

The hand-checked case (`hand`): window Jan-Jun 2024, outcomes observed up to 2025-06-30, so
the 12-month outcome of a month end is observed up to June 2024.

  A  defaults 2024-05-15; listed Feb (amber, all loans current), Mar, Apr (red) -> lead 3
  B  defaults 2024-12-10; listed Apr, Jun (amber, in arrears), Aug (outside window) -> lead 8
  C  defaults 2024-04-20; listed only Apr 30 (already in default) -> lead 0
  D  defaults 2025-03-15; never listed -> lead NULL
  I  defaults 2025-02-15; listed only Oct 2024 (outside window, current) -> lead 4
  E  performing, red all year; F performing, amber in March; G performing, never listed
  J  performing, outcome rows but no decision rows (counts as unlisted, unscored)
"""

from __future__ import annotations

import calendar
from datetime import date

import duckdb
import numpy as np
import pandas as pd
import pytest
from scipy.stats import ks_2samp
from sklearn.metrics import roc_auc_score, roc_curve

from assets.backtest import (
    backtest_summary,
    headline,
    observed_window,
    roc_points,
    run_backtest,
)
from assets.core.sql import RUN_CONTEXT

DECISIONS = "main.decisions"


def last_day(y: int, m: int) -> date:
    return date(y, m, calendar.monthrange(y, m)[1])


def add_months(d: date, k: int) -> date:
    """last_day(d + k months), as in fct_enterprise_outcomes."""
    i = d.year * 12 + d.month - 1 + k
    return last_day(i // 12, i % 12 + 1)


MONTHS_2024 = [last_day(2024, m) for m in range(1, 13)]
WINDOW = MONTHS_2024[:6]
AS_OF = date(2025, 6, 30)


def create_tables(con: duckdb.DuckDBPyConnection, feature_points: bool = False) -> None:
    con.execute("CREATE SCHEMA IF NOT EXISTS marts")
    con.execute(
        """
        CREATE TABLE marts.fct_enterprise_outcomes (
            enterprise_id VARCHAR, month_end DATE, outstanding_principal DECIMAL(18, 2),
            dpd_max INTEGER, in_default BOOLEAN, all_loans_current BOOLEAN,
            next_default_date DATE, default_within_6m BOOLEAN, default_within_12m BOOLEAN,
            dpd30_within_12m BOOLEAN, outcome_observed_6m BOOLEAN,
            outcome_observed_12m BOOLEAN)
        """
    )
    fp = (
        ", feature_points STRUCT(feature VARCHAR, bin_id INTEGER, bin_label VARCHAR, "
        "value DOUBLE, points DOUBLE, logit_contribution DOUBLE)[]"
        if feature_points
        else ""
    )
    con.execute(
        f"""
        CREATE TABLE main.decisions (
            enterprise_id VARCHAR, month_end DATE, pd DOUBLE, tier VARCHAR, listed BOOLEAN,
            signals VARCHAR[]{fp})
        """
    )


def insert(con: duckdb.DuckDBPyConnection, table: str, rows: list[tuple]) -> None:
    """Bulk insert through a DataFrame (executemany is slow for a few thousand rows)."""
    names = [r[0] for r in con.execute(f"DESCRIBE {table}").fetchall()][: len(rows[0])]
    frame = pd.DataFrame(rows, columns=names)  # noqa: F841 (read by DuckDB's replacement scan)
    con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM frame")


def outcome_row(firm: str, m: date, default: date | None, current: bool, as_of: date) -> tuple:
    known = default if default is not None and default <= as_of else None
    within = [known is not None and m < known <= add_months(m, k) for k in (6, 12)]
    in_default = known is not None and known <= m
    return (
        firm,
        m,
        1000,
        0 if current else 15,
        in_default,
        current,
        known if known and known > m else None,
        within[0],
        within[1],
        within[1],
        add_months(m, 6) <= as_of,
        add_months(m, 12) <= as_of,
    )


def build(
    con: duckdb.DuckDBPyConnection,
    firms: dict[str, dict],
    months: list[date] = MONTHS_2024,
    as_of: date = AS_OF,
) -> None:
    """firms: id -> {default, listed: {m: (tier, pd)}, signals: {m: [...]}, arrears: {m},
    no_decisions: bool}. Every firm has an outcome and (unless no_decisions) a decision row at
    every month end; unlisted rows are green with pd 1%."""
    create_tables(con)
    outcomes, decisions = [], []
    for firm, spec in firms.items():
        for m in months:
            current = m not in spec.get("arrears", set())
            outcomes.append(outcome_row(firm, m, spec.get("default"), current, as_of))
            if spec.get("no_decisions"):
                continue
            tier, p = spec.get("listed", {}).get(m, ("green", 0.01))
            decisions.append(
                (firm, m, p, tier, tier != "green", spec.get("signals", {}).get(m, []))
            )
    insert(con, "marts.fct_enterprise_outcomes", outcomes)
    insert(con, "main.decisions", decisions)
    # What a refresh leaves in the build file: the as-of date dbt built the outcomes for.
    con.execute(f"CREATE OR REPLACE TABLE {RUN_CONTEXT} AS SELECT DATE '{as_of}' AS as_of_date")


M = {i: last_day(2024, i) for i in range(1, 13)}
AMBER, RED = ("amber", 0.08), ("red", 0.2)
HAND = {
    "A": {
        "default": date(2024, 5, 15),
        "listed": {M[2]: AMBER, M[3]: RED, M[4]: RED},
        "signals": {M[2]: ["S_GOOD"], M[3]: ["S_GOOD"], M[4]: ["S_GOOD", "S_WEAK"]},
        "arrears": {M[3], M[4]},
    },
    "B": {
        "default": date(2024, 12, 10),
        "listed": {M[4]: AMBER, M[6]: AMBER, M[8]: AMBER},
        "signals": {M[4]: ["S_GOOD"], M[6]: ["S_GOOD"]},
        "arrears": {M[4], M[6], M[8]},
    },
    "C": {"default": date(2024, 4, 20), "listed": {M[4]: RED}, "signals": {M[4]: ["S_WEAK"]}},
    "D": {"default": date(2025, 3, 15)},
    "I": {
        "default": date(2025, 2, 15),
        "listed": {M[10]: AMBER},
        "signals": {M[3]: ["S_GOOD", "S_WEAK"]},
    },
    "E": {
        "listed": {m: RED for m in MONTHS_2024},
        "signals": {M[1]: ["S_GOOD", "S_WEAK"], M[2]: ["S_WEAK"]},
    },
    "F": {"listed": {M[3]: AMBER}},
    "G": {},
    "J": {"no_decisions": True},
}


@pytest.fixture
def hand() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    build(con, HAND)
    return con


def run(con: duckdb.DuckDBPyConnection, **kw) -> dict:
    kw.setdefault("window", WINDOW)
    return run_backtest(
        con, DECISIONS, model_version="m1", catalog_version="c1", signal_ids=["S_NEVER"], **kw
    )


def test_population_recall_precision(hand: duckdb.DuckDBPyConnection) -> None:
    f = run(hand)
    # A Jan-Apr (then in default), C Jan-Mar, the others Jan-Jun.
    assert f["population_firm_months"] == 4 + 3 + 7 * 6
    assert f["firm_months_without_decision"] == 6 and f["scored_firm_months"] == 43
    # within 6m: A 4, B Jun, C 3; within 12m: A 4, B 6, C 3, D Mar-Jun, I Feb-Jun
    assert (f["defaults_6m"], f["defaults_12m"]) == (8, 22)
    assert f["recall_6m"] == pytest.approx(4 / 8)  # A Feb-Apr, B Jun
    assert f["recall_12m"] == pytest.approx(5 / 22)  # + B Apr
    assert f["precision_red_6m"] == pytest.approx(2 / 8)  # A Mar, Apr of A Mar, Apr, E x6
    assert f["precision_amber_6m"] == pytest.approx(2 / 4)  # A Feb, B Jun of + B Apr, F Mar
    assert f["precision_listed_6m"] == pytest.approx(4 / 12)
    assert f["performing_listed_share"] == pytest.approx(7 / 27)  # E x6, F Mar
    assert f["watchlist_book_share"] == pytest.approx(12 / 49)
    assert f["watchlist_size_mean"] == pytest.approx(2.0)
    assert f["outcomes_as_of"] == AS_OF  # from the run context: the outcomes store no D


def test_firm_level_figures(hand: duckdb.DuckDBPyConnection) -> None:
    f = run(hand)
    assert f["defaulting_firms"] == 5  # A, B, C, D, I
    assert f["recall_firm"] == pytest.approx(2 / 5)  # A, B listed in the window
    assert f["listed_while_current_share"] == pytest.approx(2 / 5)  # A Feb, I Oct
    assert f["lead_time_n"] == 4 and f["lead_time_never_listed"] == 1
    leads = [0, 3, 4, 8]  # C, A, I, B
    assert f["lead_time_median"] == pytest.approx(np.percentile(leads, 50))
    assert f["lead_time_p25"] == pytest.approx(np.percentile(leads, 25))
    assert f["lead_time_p75"] == pytest.approx(np.percentile(leads, 75))
    assert f["lead_time_share_ge_7m"] == pytest.approx(1 / 4)
    dist = hand.execute(
        "SELECT lead_time_months, firms, share_of_defaulters FROM marts.backtest_lead_times "
        "ORDER BY lead_time_months NULLS LAST"
    ).fetchall()
    assert dist == [(0, 1, 0.2), (3, 1, 0.2), (4, 1, 0.2), (8, 1, 0.2), (None, 1, 0.2)]


def test_firm_level_figures_ignore_the_month_ends_the_engine_was_fitted_on(
    hand: duckdb.DuckDBPyConnection,
) -> None:
    """A scorecard fitted on February and March decides those months in-sample: A's listings
    there (its only one while current) must not count as early warning. The month-end
    figures (AUC, recall) still read every window month end."""
    everything = run(hand)
    f = run(hand, ignored_months=[M[2], M[3]])
    assert f["listed_while_current_share"] == pytest.approx(1 / 5)  # I Oct only
    leads = [0, 1, 4, 8]  # C, A (first listed out of sample in April), I, B
    assert f["lead_time_n"] == 4
    assert f["lead_time_median"] == pytest.approx(np.percentile(leads, 50))
    assert f["recall_6m"] == everything["recall_6m"]
    assert f["auc_6m"] == everything["auc_6m"]


def test_signals_lift_and_weak(hand: duckdb.DuckDBPyConnection) -> None:
    f = run(hand)
    rows = hand.execute(
        "SELECT signal_id, fired_firm_months, hit_rate_defaulters, hit_rate_performing, lift, "
        "precision_12m, first_fired_share, weak FROM marts.backtest_signals ORDER BY signal_id"
    ).fetchall()
    by_id = {r[0]: r[1:] for r in rows}
    # S_GOOD: A Feb-Apr, B Apr, B Jun, I Mar (defaulters) + E Jan (performing)
    n, hd, hp, lift, prec, first, weak = by_id["S_GOOD"]
    assert (n, hd, hp) == (7, pytest.approx(6 / 22), pytest.approx(1 / 27))
    assert lift == pytest.approx((6 / 22) / (1 / 27)) and prec == pytest.approx(6 / 7)
    assert first == pytest.approx(3 / 5) and weak is False  # first on A, B, I
    # S_WEAK: A Apr, I Mar + E Jan, E Feb; C Apr is in default (outside the population)
    n, hd, hp, lift, prec, first, weak = by_id["S_WEAK"]
    assert (n, hd, hp) == (4, pytest.approx(2 / 22), pytest.approx(2 / 27))
    assert lift == pytest.approx(27 / 22) and lift < 1.5 and weak is True
    assert first == pytest.approx(1 / 5)  # tied with S_GOOD on I
    # S_NEVER never fired on the population: no lift to judge, so not weak but silent
    assert by_id["S_NEVER"][0] == 0 and by_id["S_NEVER"][-1] is None
    assert f["weak_signals"] == 1 and f["weak_signal_ids"] == ["S_WEAK"]
    assert f["silent_signal_ids"] == ["S_NEVER"]


def test_calibration_and_cutoffs(hand: duckdb.DuckDBPyConnection) -> None:
    run(hand)
    cal = hand.execute(
        "SELECT band, firm_months, mean_pd, observed_rate_12m FROM marts.backtest_calibration "
        "WHERE band_kind = 'fixed' ORDER BY band_order"
    ).fetchall()
    assert cal == [
        ("1-2%", 31, pytest.approx(0.01), pytest.approx(17 / 31)),  # 22 - 3 - 2
        ("5-10%", 4, pytest.approx(0.08), pytest.approx(3 / 4)),
        ("20-50%", 8, pytest.approx(0.2), pytest.approx(2 / 8)),
    ]
    deciles = hand.execute(
        "SELECT sum(firm_months) FROM marts.backtest_calibration WHERE band_kind = 'decile'"
    ).fetchone()[0]
    assert deciles == 43
    cut = {
        r[0]: r[1:]
        for r in hand.execute(
            "SELECT cutoff, performing_listed_share, recall_6m, precision_6m, "
            "watchlist_size_mean FROM marts.backtest_cutoffs"
        ).fetchall()
    }
    # pd >= 5% is exactly the watchlist here
    assert cut[0.05] == pytest.approx((7 / 27, 4 / 8, 4 / 12, 2.0))
    # pd >= 1% lists every scored firm-month (J has no pd)
    assert cut[0.01] == pytest.approx((21 / 27, 1.0, 8 / 43, 43 / 6))
    assert cut[0.3] == (0.0, 0.0, None, 0.0)


def test_unobserved_outcomes_excluded(hand: duckdb.DuckDBPyConnection) -> None:
    assert observed_window(hand, DECISIONS) == WINDOW
    base = run(hand)
    wider = run(hand, window=MONTHS_2024)  # Jul-Dec: 12-month outcome not observed
    keys = ("population_firm_months", "defaults_12m", "recall_6m", "auc_12m", "lead_time_n")
    assert {k: wider[k] for k in keys} == {k: base[k] for k in keys}
    assert run(hand, window=None)["n_month_ends"] == 6


def test_writing_twice_appends_runs_and_replaces_scores(hand: duckdb.DuckDBPyConnection) -> None:
    first = run(hand)
    second = run(hand)
    assert first["run_id"] != second["run_id"]
    for table in ("backtest_runs", "backtest_signals", "backtest_lead_times", "backtest_cutoffs"):
        ids = hand.execute(f"SELECT DISTINCT run_id FROM marts.{table} ORDER BY 1").fetchall()
        assert sorted(r[0] for r in ids) == sorted([first["run_id"], second["run_id"]])
    scores = hand.execute(
        "SELECT run_id, count(*) FROM marts.backtest_scores GROUP BY 1"
    ).fetchall()
    assert scores == [(second["run_id"], 49)]
    summary = backtest_summary(hand)
    assert summary["run_id"] == second["run_id"] and summary["defaults_12m"] == 22
    assert backtest_summary(hand, first["run_id"])["run_id"] == first["run_id"]
    comment = hand.execute(
        "SELECT comment FROM duckdb_columns() WHERE table_name = 'backtest_runs' "
        "AND column_name = 'auc_12m'"
    ).fetchone()[0]
    assert "AUC" in comment
    # no temporary table left behind
    temps = hand.execute("SELECT count(*) FROM duckdb_tables() WHERE temporary").fetchone()[0]
    assert temps == 0


def test_no_observed_month_end_gives_empty_figures(hand: duckdb.DuckDBPyConnection) -> None:
    f = run(hand, window=[M[12]])  # 12-month outcome of December 2024 not observed yet
    assert f["population_firm_months"] == 0 and f["auc_12m"] is None
    assert hand.execute("SELECT count(*) FROM marts.backtest_scores").fetchone()[0] == 0
    assert headline(f)["window_end"] == "2024-12-31"


def test_failed_run_writes_nothing(hand: duckdb.DuckDBPyConnection) -> None:
    run(hand)
    hand.execute("INSERT INTO main.decisions SELECT * FROM main.decisions LIMIT 1")
    with pytest.raises(ValueError, match="more than one row"):
        run(hand)
    assert hand.execute("SELECT count(*) FROM marts.backtest_runs").fetchone()[0] == 1


# ---------------------------------------------------------------------------------------------
# AUC / KS / ROC / PSI against direct computations on random rows with many ties


@pytest.fixture
def random_rows() -> tuple[duckdb.DuckDBPyConnection, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    n = 600
    y12 = rng.random(n) < 0.2
    y6 = y12 & (rng.random(n) < 0.5)
    pd_ = np.round(np.clip(rng.normal(0.05 + 0.08 * y12, 0.05), 0, 1), 2)  # 2 decimals: ties
    con = duckdb.connect()
    create_tables(con)
    m = date(2023, 6, 30)
    outcomes = [
        (
            f"E{i}",
            m,
            1,
            0,
            False,
            True,
            None,
            bool(y6[i]),
            bool(y12[i]),
            bool(y12[i]),
            True,
            True,
        )
        for i in range(n)
    ]
    decisions = [(f"E{i}", m, float(pd_[i]), "green", False, []) for i in range(n)]
    # reference month: same firms, pd shifted
    ref = date(2022, 6, 30)
    ref_pd = np.round(np.clip(rng.normal(0.04, 0.03, n), 0, 1), 3)
    outcomes += [
        (f"E{i}", ref, 1, 0, False, True, None, False, False, False, True, True)
        for i in range(n)
    ]
    decisions += [(f"E{i}", ref, float(ref_pd[i]), "green", False, []) for i in range(n)]
    insert(con, "marts.fct_enterprise_outcomes", outcomes)
    insert(con, "main.decisions", decisions)
    return con, pd_, y6, y12, ref_pd


def test_auc_ks_match_sklearn_and_direct_ks(random_rows) -> None:
    con, pd_, y6, y12, ref_pd = random_rows
    f = run_backtest(
        con,
        "SELECT * FROM main.decisions",
        window=[date(2023, 6, 30)],
        model_version="m",
        catalog_version="c",
        reference_months=[date(2022, 6, 30)],
    )
    assert f["auc_12m"] == pytest.approx(roc_auc_score(y12, pd_), abs=1e-12)
    assert f["auc_6m"] == pytest.approx(roc_auc_score(y6, pd_), abs=1e-12)
    assert f["ks_12m"] == pytest.approx(ks_2samp(pd_[y12], pd_[~y12]).statistic, abs=1e-12)
    assert f["ks_6m"] == pytest.approx(ks_2samp(pd_[y6], pd_[~y6]).statistic, abs=1e-12)

    deciles = con.execute(
        "SELECT band_order, firm_months, pd_min, pd_max FROM marts.backtest_calibration "
        "WHERE band_kind = 'decile' ORDER BY band_order"
    ).fetchall()
    assert sum(d[1] for d in deciles) == len(pd_)
    assert all(a[3] < b[2] for a, b in zip(deciles, deciles[1:], strict=False))  # ties together
    assert all(1 <= d[0] <= 10 for d in deciles)

    # ROC: on each grid fpr, the best tpr sklearn reaches at or below it
    fpr, tpr, _ = roc_curve(y12, pd_, drop_intermediate=False)
    pts = roc_points(con, points=50)
    assert len(pts) == 51 and pts[-1]["fpr"] == 1.0 and pts[-1]["tpr"] == pytest.approx(1.0)
    for p in pts:
        expected = max(t for f_, t in zip(fpr, tpr, strict=True) if f_ <= p["fpr"] + 1e-12)
        assert p["tpr"] == pytest.approx(expected)

    # score PSI on the reference's deciles (numpy's default quantile = quantile_cont)
    edges = np.unique(np.quantile(ref_pd, np.arange(1, 10) / 10))
    a = np.bincount(np.searchsorted(edges, pd_, side="left"), minlength=len(edges) + 1) / len(pd_)
    e = np.bincount(np.searchsorted(edges, ref_pd, side="left"), minlength=len(edges) + 1)
    e = e / len(ref_pd)
    a, e = np.maximum(a, 1e-4), np.maximum(e, 1e-4)
    assert f["score_psi"] == pytest.approx(float(np.sum((a - e) * np.log(a / e))))


def test_feature_psi_against_train_share() -> None:
    con = duckdb.connect()
    create_tables(con, feature_points=True)
    con.execute(
        "CREATE TABLE marts.pd_scorecard_bins (model_version VARCHAR, feature VARCHAR, "
        "bin_id INTEGER, bin_label VARCHAR, train_share DOUBLE)"
    )
    con.execute(
        "INSERT INTO marts.pd_scorecard_bins VALUES ('m1', 'dso', 0, 'low', 0.5), "
        "('m1', 'dso', 1, 'high', 0.5), ('m1', 'lev', 0, 'all', 1.0), "
        "('m0', 'dso', 0, 'low', 0.1)"
    )
    m = date(2023, 6, 30)
    for i in range(10):
        con.execute(
            "INSERT INTO marts.fct_enterprise_outcomes VALUES "
            "(?, ?, 1, 0, false, true, NULL, false, false, false, true, true)",
            [f"E{i}", m],
        )
        con.execute(
            "INSERT INTO main.decisions VALUES (?, ?, 0.01, 'green', false, [], "
            "[{'feature': 'dso', 'bin_id': ?, 'bin_label': '', 'value': 0, 'points': 0, "
            "'logit_contribution': 0}, {'feature': 'lev', 'bin_id': 0, 'bin_label': '', "
            "'value': 0, 'points': 0, 'logit_contribution': 0}])",
            [f"E{i}", m, 0 if i < 8 else 1],
        )
    f = run_backtest(con, DECISIONS, window=[m], model_version="m1", catalog_version="c")
    psi = dict(
        con.execute(
            "SELECT subject, psi FROM marts.backtest_stability WHERE kind = 'feature'"
        ).fetchall()
    )
    assert psi["dso"] == pytest.approx((0.8 - 0.5) * np.log(0.8 / 0.5) + (0.2 - 0.5) * np.log(0.4))
    assert psi["lev"] == pytest.approx(0.0)
    assert f["feature_psi_max"] == pytest.approx(psi["dso"]) and f["features_shifted"] == 1


def test_list_order_auc_ranks_red_firms_first_whatever_their_pd(random_rows) -> None:
    """auc_6m_list_order reads the list as an officer does: red, amber, the rest, each by pd.
    Tier half the 6-month defaulters red (a hard trigger, pd unchanged): the order's AUC must
    equal scikit-learn's on (tier rank + pd), and beat pd alone."""
    con, pd_, y6, _, _ = random_rows
    red = y6 & (np.arange(len(pd_)) % 2 == 0)
    con.execute(
        "UPDATE main.decisions SET tier = 'red', listed = true "
        "WHERE month_end = DATE '2023-06-30' AND enterprise_id IN "
        f"({', '.join(repr(f'E{i}') for i in np.flatnonzero(red))})"
    )
    f = run_backtest(
        con, "SELECT * FROM main.decisions", window=[date(2023, 6, 30)],
        model_version="m", catalog_version="c",
    )
    order = pd_ + 2 * red
    assert f["auc_6m_list_order"] == pytest.approx(roc_auc_score(y6, order), abs=1e-12)
    assert f["auc_6m"] == pytest.approx(roc_auc_score(y6, pd_), abs=1e-12)
    assert f["auc_6m_list_order"] > f["auc_6m"]


#: One firm's month ends, 2024-01..2026-06 (VAT data from the first: warm-up through 2024-12).
MONTHS = [add_months(date(2023, 12, 31), k) for k in range(1, 31)]


def _one_firm_book(observed_through: date) -> duckdb.DuckDBPyConnection:
    """The feature and outcome marts of one firm over MONTHS, its 12-month outcome observed
    for the month ends up to `observed_through`."""
    from tests.conftest import create_mart_tables

    con = duckdb.connect()
    create_mart_tables(con, "fct_enterprise_outcomes", "fct_enterprise_month_end")
    con.executemany(
        "INSERT INTO marts.fct_enterprise_month_end (enterprise_id, month_end, revenue_1m) "
        "VALUES ('A', ?, 100)",
        [[m] for m in MONTHS],
    )
    con.executemany(
        "INSERT INTO marts.fct_enterprise_outcomes (enterprise_id, month_end, "
        "outcome_observed_12m) VALUES ('A', ?, ?)",
        [[m, m <= observed_through] for m in MONTHS],
    )
    return con


def test_decisions_run_to_the_last_month_end_so_late_defaults_count() -> None:
    """A default late in the 12-month horizon (up to a year after the window's last month end)
    was warned of, or not, at month ends after the window: the back-test must decide those
    too, or listed-while-current and lead time miss every warning given after the window.
    Here: VAT data from January 2024 (warm-up through December 2024), outcomes observed for
    January 2024 to June 2025, month ends to June 2026."""
    from assets.backtest_assets import backtest_month_ends

    con = _one_firm_book(date(2025, 6, 30))
    got = backtest_month_ends(con, None)
    assert got.windows == {"window": MONTHS[12:18]}  # 2025-01..06: observed, past the warm-up
    assert got.ignored == MONTHS[:12]  # the warm-up
    assert got.decide_from == date(2024, 1, 31)  # 12 months before the window
    assert got.decide_through == date(2026, 6, 30)  # not the window's end (2025-06)


def test_the_expert_catalog_is_judged_on_a_champions_out_of_time_window() -> None:
    """The expert catalog has no out-of-time window of its own; `oot_of` judges it on the
    champion's stored one, also when month ends after it have become observed since the fit
    (a back-test run a day after the refresh it follows, across a month end)."""
    from assets.backtest_assets import backtest_month_ends

    con = _one_firm_book(date(2025, 7, 31))
    con.execute("CREATE TABLE marts.pd_scorecard_models (model_version VARCHAR, "
                "oot_start DATE, oot_end DATE)")
    con.execute("INSERT INTO marts.pd_scorecard_models VALUES "
                "('pd-1', DATE '2025-01-31', DATE '2025-06-30')")
    assert backtest_month_ends(con, None).windows == {"window": MONTHS[12:19]}
    got = backtest_month_ends(con, None, oot_of="pd-1")
    assert got.windows == {"window": MONTHS[12:19], "oot": MONTHS[12:18]}  # not July 2025
    assert backtest_month_ends(con, None, out_of_time=False, oot_of="pd-1").windows == {
        "window": MONTHS[12:19]}
