"""Decisions by PD, hard triggers, merged reasons, cold start and signal-check bands, on a
hand-built warehouse with a hand-written champion scorecard (one feature, dpd_max_12m)."""

from __future__ import annotations

from datetime import date

import duckdb
import pytest
from conftest import create_mart_tables

from assets import early_warning as ew
from assets.contract import TABLES, raw_table_ddl
from assets.scorecard.sql import BINS, DDL, MODELS
from assets.signals.catalog import load_catalog
from assets.signals.decisions import current_engine

CAT = load_catalog()
AS_OF = date(2026, 3, 31)
HEALTHY = {
    "status_at_month_end": "active", "revenue_3m_yoy": 0.05, "tax_rating": "A",
    "tax_rating_prev": "A", "tax_rating_downgraded": False, "revenue_6m_yoy": 0.04,
    "dpd_max": 0, "dpd_max_12m": 0,
    "is_default": False, "fund_diversion_max_share": 0.0,
    "abnormal_operation_currently_listed": False, "dishonest_debtor_listed_12m": 0,
}
# log-odds of default = intercept + term of the dpd_max_12m bin:
#   [-inf, 1) -> -4 + 0 = PD 1.8% (green); [1, 31) -> -4 + 2.2 = 14% (amber);
#   [31, +inf) -> -4 + 4 = 50% (red). NULL -> 0.
MODEL_BINS = [
    (0, "(-inf, 1)", None, 1.0, False, 0.0),
    (1, "[1, 31)", 1.0, 31.0, False, 2.2),
    (2, "[31, inf)", 31.0, None, False, 4.0),
    (3, "Missing", None, None, True, 0.0),
]


def _warehouse(path=None) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(str(path) if path else ":memory:")
    create_mart_tables(con, "fct_enterprise_month_end", "fct_loan_month_end")
    con.execute("CREATE SCHEMA IF NOT EXISTS raw")
    con.execute(raw_table_ddl(TABLES["loans"]))
    con.execute(raw_table_ddl(TABLES["loan_applications"]))
    return con


def _firm(con, firm: str, **features) -> None:
    row = {**HEALTHY, **features}
    names = ["enterprise_id", "month_end", *row]
    con.execute(
        f"INSERT INTO marts.fct_enterprise_month_end ({', '.join(names)}) "
        f"VALUES ({', '.join('?' * len(names))})",
        [firm, AS_OF, *row.values()],
    )
    con.execute(
        "INSERT INTO marts.fct_loan_month_end (loan_id, enterprise_id, month_end, "
        "outstanding_principal, dpd, risk_class, ifrs9_stage, ifrs9_stage_dpd_floor, is_default) "
        "VALUES (?, ?, ?, 100000, ?, 'normal', 1, 1, FALSE)",
        [f"L-{firm}", firm, AS_OF, row["dpd_max"]],
    )


def _champion(con) -> None:
    for stmt in DDL:
        con.execute(stmt)
    con.execute(
        f"INSERT INTO {MODELS} (model_version, status, fitted_at, fit_date, intercept, features) "
        "VALUES ('test-model', 'champion', now()::TIMESTAMP, DATE '2026-03-31', -4.0, "
        "['dpd_max_12m'])"
    )
    for bin_id, label, lo, hi, missing, term in MODEL_BINS:
        con.execute(
            f"INSERT INTO {BINS} (model_version, feature, bin_id, bin_label, lower_bound, "
            "upper_bound, is_missing, logit_contribution, points) VALUES "
            "('test-model', 'dpd_max_12m', ?, ?, ?, ?, ?, ?, ?)",
            [bin_id, label, lo, hi, missing, term, -20 * term],
        )


def _profile(con) -> dict[str, dict]:
    ew.run_early_warning(con, CAT, AS_OF)
    cur = con.execute("SELECT * FROM marts.enterprise_risk_profile")
    names = [d[0] for d in cur.description]
    return {r[0]: dict(zip(names, r, strict=True)) for r in cur.fetchall()}


def test_tiers_follow_pd_cutoffs_from_the_catalog() -> None:
    con = _warehouse()
    _champion(con)
    _firm(con, "low")
    _firm(con, "mid", dpd_max_12m=10)
    _firm(con, "high", dpd_max_12m=45, dpd_max=45)
    got = _profile(con)
    assert CAT.pd_tiers.amber < 0.14 < CAT.pd_tiers.red < 0.5  # the bins above straddle them
    assert {f: got[f]["tier"] for f in got} == {"low": "green", "mid": "amber", "high": "red"}
    assert got["high"]["pd"] == pytest.approx(0.5)
    assert got["mid"]["risk_score"] == round(100 * got["mid"]["pd"])
    assert {r["engine"] for r in got.values()} == {"pd_scorecard test-model"}


@pytest.mark.parametrize(
    "trigger, features",
    [
        ("loan_defaulted", {"is_default": True}),
        ("dishonest_debtor_listed", {"dishonest_debtor_listed_12m": 1}),
        ("status_revoked_or_cancelled", {"status_at_month_end": "revoked"}),
        ("fund_diversion", {"fund_diversion_max_share": 0.6}),
    ],
)
def test_hard_triggers_list_a_firm_whatever_its_pd(trigger, features) -> None:
    con = _warehouse()
    _champion(con)
    _firm(con, "x", **features)  # dpd_max_12m = 0: PD 1.8%, green by PD
    got = _profile(con)["x"]
    assert got["pd"] < CAT.pd_tiers.amber
    assert got["tier"] == CAT.hard_triggers[trigger] == "red"
    assert trigger in got["hard_triggers"]


def test_network_trigger_lists_a_firm_amber_and_names_the_other_firm() -> None:
    """Risk that travels: a firm whose guaranteed party defaulted is amber whatever its PD (the
    scorecard does not see the network), and the reason names the other firm; a circle member
    in default alone gives a reason but no trigger."""
    trigger = "network_guaranteed_party_in_default"
    con = _warehouse()
    _champion(con)
    _firm(con, "x", guaranteed_parties_in_default=1, guarantees_given_in_default=300000,
          guaranteed_party_in_default="Firm Q (91330102000000Q01X)")
    _firm(con, "y", circle_members_in_default=1, guarantee_circle_members=4,
          circle_member_in_default="Firm Q (91330102000000Q01X)")
    got = _profile(con)
    assert got["x"]["pd"] < CAT.pd_tiers.amber
    assert got["x"]["tier"] == CAT.hard_triggers[trigger] == "amber"
    assert trigger in got["x"]["hard_triggers"]
    assert any("Firm Q (91330102000000Q01X)" in r for r in got["x"]["reason_list"])
    assert got["y"]["tier"] == "green"
    assert "network_circle_member_in_default" in got["y"]["signals"]


def test_reasons_merge_one_topic_into_its_strongest_reason() -> None:
    """A defaulted loan 296 days past due reads once; a D rating downgraded from A once."""
    con = _warehouse()
    _firm(con, "x", is_default=True, dpd_max=296, dpd_max_12m=296, tax_rating="D",
          tax_rating_prev="A", tax_rating_downgraded=True)
    got = _profile(con)["x"]
    assert {"loan_defaulted", "overdue_now", "tax_rating_poor",
            "tax_rating_downgraded"} <= set(got["signals"])
    reasons = got["reason_list"]
    assert reasons[0] == "a loan has defaulted (over 90 days past due)"  # the hard trigger
    assert not any("296 days past due" in r for r in reasons)
    assert sum("tax credit rating" in r for r in reasons) == 1
    assert len(reasons) == len({*reasons}) <= CAT.max_reasons


def test_model_reasons_name_the_feature_with_the_firms_value() -> None:
    con = _warehouse()
    _champion(con)
    _firm(con, "x", dpd_max_12m=45, dpd_max=45)
    reasons = _profile(con)["x"]["reason_list"]
    assert reasons == ["a loan was up to 45 days past due in the last 12 months"]


def test_cold_start_uses_the_expert_catalog_and_says_so() -> None:
    con = _warehouse()
    _firm(con, "x", revenue_3m_yoy=-0.6, revenue_6m_yoy=-0.5,
          abnormal_operation_currently_listed=True)
    assert current_engine(con).model_version is None
    got = _profile(con)["x"]
    assert got["tier"] == "red" and got["pd"] is None
    assert got["engine"].startswith("expert_catalog (cold start")
    # A cold-start row of the scorecard table gives its reason on every output.
    for stmt in DDL:
        con.execute(stmt)
    con.execute(
        f"INSERT INTO {MODELS} (model_version, status, fitted_at, fit_date, notes) VALUES "
        "('cs', 'cold_start', now()::TIMESTAMP, DATE '2026-03-31', '12 defaults < 50')"
    )
    assert _profile(con)["x"]["engine"] == "expert_catalog (cold start: 12 defaults < 50)"


@pytest.mark.parametrize(
    "hits, monitored, rate, passed",
    [
        (10, 1000, 0.01, True),    # exactly expected
        (18, 1000, 0.01, True),    # inside [5, 20]
        (60, 1000, 0.01, False),   # a jump
        (0, 10000, 0.01, False),   # a collapse (100 expected)
        (3, 100, 0.01, True),      # 1 expected: a few firms more is noise, not a data problem
        (7, 1000, None, True),     # no back-test yet: nothing to compare with
    ],
)
def test_signal_check_warns_only_outside_its_band(hits, monitored, rate, passed) -> None:
    ok, why = ew.signal_band_verdict(hits, monitored, rate, CAT.signal_check_band)
    assert ok is passed, why


def _decide_at(con, month_end: date) -> list[tuple]:
    from assets.signals.decisions import build_decision_history

    pop = (
        "SELECT enterprise_id, month_end FROM marts.fct_enterprise_month_end "
        f"WHERE month_end = DATE '{month_end.isoformat()}'"
    )
    rel = build_decision_history(
        con, CAT, current_engine(con), start=month_end, end=month_end, population_sql=pop
    )
    return con.execute(f"SELECT enterprise_id, month_end, pd, tier FROM {rel}").fetchall()


def test_a_decision_never_reads_facts_dated_after_its_month_end() -> None:
    """Deciding month end m with later month ends in the marts (however alarming) gives the
    same decision as without them: scoring as of D reads nothing after D."""
    con = _warehouse()
    _champion(con)
    _firm(con, "x", dpd_max_12m=10)
    first = _decide_at(con, AS_OF)
    later = date(2026, 4, 30)
    row = {**HEALTHY, "dpd_max_12m": 120, "dpd_max": 120, "is_default": True,
           "dishonest_debtor_listed_12m": 2}
    names = ["enterprise_id", "month_end", *row]
    con.execute(
        f"INSERT INTO marts.fct_enterprise_month_end ({', '.join(names)}) "
        f"VALUES ({', '.join('?' * len(names))})",
        ["x", later, *row.values()],
    )
    assert _decide_at(con, AS_OF) == first
    assert len(first) == 1 and first[0][3] == "amber"  # from the month end's own facts


def test_a_missing_value_reads_as_what_is_missing() -> None:
    """A feature whose missing bin adds risk says what is missing (its `reason_missing`);
    a feature without one shows its template with n/a; a value reads as the template."""
    from assets.signals.decisions import feature_reason_sql

    _, reason = feature_reason_sql(CAT, "feature", "value")
    got = duckdb.sql(
        f"SELECT {reason} FROM (VALUES ('revenue_1m_yoy', NULL), ('revenue_1m_yoy', '-0.56'), "
        "('loans_outstanding', NULL), ('dpd_max_12m', NULL), ('dpd_max_12m', '45'), "
        "('principal_due_90d_to_avg_monthly_revenue', '0.0'), "
        "('principal_due_90d_to_avg_monthly_revenue', '1.5')) AS t(feature, value)"
    ).fetchall()
    assert [r[0] for r in got] == [
        CAT.feature_reasons["revenue_1m_yoy"].reason_missing,
        "revenue of the last month down 56% year on year",
        "no loan outstanding",
        "a loan was up to n/a days past due in the last 12 months",
        "a loan was up to 45 days past due in the last 12 months",
        CAT.feature_reasons["principal_due_90d_to_avg_monthly_revenue"].reason_zero,
        "principal due in 90 days is 1.50 months of revenue",
    ]


def test_reason_missing_has_no_placeholder_and_needs_english() -> None:
    from pydantic import ValidationError

    from assets.signals.catalog import FeatureReason

    base = {"topic": "revenue", "reason": "revenue {value_change}"}
    FeatureReason(**base, reason_missing="no revenue", reason_missing_zh="无营收")
    with pytest.raises((ValidationError, ValueError), match="no \\{placeholder\\} allowed"):
        FeatureReason(**base, reason_missing="revenue {value}")
    with pytest.raises((ValidationError, ValueError), match="needs the English"):
        FeatureReason(**base, reason_missing_zh="无营收")
    with pytest.raises((ValidationError, ValueError), match="no \\{placeholder\\} allowed"):
        FeatureReason(**base, reason_zero="revenue {value}")
    with pytest.raises((ValidationError, ValueError), match="needs the English reason_zero"):
        FeatureReason(**base, reason_zero_zh="无营收")
