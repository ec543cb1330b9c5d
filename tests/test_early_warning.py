"""Early-warning engine on a hand-built DuckDB: every catalog signal fires on a firm made to
trigger it and not on its near miss; tiers, watchlist status, history, IFRS 9 overlay; catalog
validation. The upstream marts are written by hand with only the columns the engine reads; the
decision marts (watchlist, history, IFRS 9 overlay) are the project's dbt models, run on them."""

import copy
from datetime import date
from pathlib import Path

import duckdb
import pytest
import yaml
from conftest import create_mart_tables
from dagster import AssetSpec, asset, materialize

from assets import early_warning as ew
from assets.contract import TABLES, raw_table_ddl
from assets.core.dbt_project import run_dbt, write_run_context
from assets.core.metadata import table_exists
from assets.core.resources import RiskWarehouse
from assets.dbt_assets import decision_vars
from assets.signals.catalog import (
    CATALOG_PATH,
    CatalogError,
    feature_columns,
    load_catalog,
    parse_catalog,
)
from assets.signals.decisions import NETWORK_PD_COLUMNS, features_sql, signal_hits_rows_sql

CAT = load_catalog()
AS_OF = date(2026, 3, 31)

# Healthy value of every feature the catalog reads (types come from the mart's dbt contract).
# A catalog edit that reads a new feature fails `test_every_catalog_feature_has_a_default`
# until it is added here.
FEATURES: dict[str, object] = {
    "industry_code": "C",
    "status_at_month_end": "active",
    "revenue_1m": 100000,
    "revenue_3m_yoy": 0.05,
    "revenue_6m_yoy": 0.04,
    "electricity_3m_yoy": 0.02,
    "electricity_yoy_decline_months": 0,
    "vat_filings_missing_3m": 0,
    "tax_arrears": 0,
    "tax_arrears_growth_3m": None,
    "tax_rating": "A",
    "tax_rating_prev": "A",
    "tax_rating_downgraded": False,
    "industry_peer_count": 20,
    "industry_revenue_3m_yoy_median": 0.03,
    "revenue_3m_yoy_vs_industry": 0.02,
    "utility_arrears": 0,
    "utility_arrears_overdue": 0,
    "utility_late_payments_6m": 0,
    "enforcement_listed_6m": 0,
    "dishonest_debtor_listed_12m": 0,
    "legal_rep_change_6m": 0,
    "low_severity_events_12m": 0,
    "abnormal_operation_currently_listed": False,
    "fund_diversion_max_share": 0.0,
    "fund_diversion_max_loan_amount": 0,
    "outstanding_to_revenue_12m": 0.4,
    "principal_due_next_90d": 50000,
    "principal_due_90d_to_avg_monthly_revenue": 0.5,
    "dpd_max": 0,
    "dpd_max_12m": 0,
    "is_default": False,
    "guarantees_given": 0,
    "guarantees_given_to_revenue_12m": 0.0,
    "guarantees_given_in_default": 0,
    "guaranteed_parties_in_default": 0,
    "guaranteed_party_in_default": None,
    "guaranteed_parties_past_due": 0,
    "guaranteed_party_past_due": None,
    "own_guarantors_in_default": 0,
    "own_guarantor_in_default": None,
    "guarantee_circle_members": 0,
    "circle_members_in_default": 0,
    "circle_member_in_default": None,
    "related_parties_in_default": 0,
    "related_party_in_default": None,
    "related_parties_past_due": 0,
    "related_party_past_due": None,
    "guaranteed_parties_on_red": 0,
    "guaranteed_party_on_red": None,
    "guaranteed_party_red_trigger": None,
    "own_guarantors_on_red": 0,
    "own_guarantor_on_red": None,
    "own_guarantor_red_trigger": None,
    "related_parties_on_red": 0,
    "related_party_on_red": None,
    "related_party_red_trigger": None,
}

# signal id -> (overrides that trigger it, overrides of a near miss, overrides of the row
# 3 month ends earlier for both firms). A catalog signal missing here fails its test.
CASES: dict[str, tuple[dict, dict, dict]] = {
    "loan_defaulted": ({"is_default": True, "dpd_max": 95}, {"dpd_max": 85}, {}),
    "overdue_now": ({"dpd_max": 31}, {"dpd_max": 30, "dpd_max_12m": 30}, {}),
    "overdue_recently": ({"dpd_max_12m": 20}, {"dpd_max_12m": 12}, {}),
    "tax_rating_poor": ({"tax_rating": "C"}, {"tax_rating": "M"}, {}),
    "tax_rating_downgraded": (
        {"tax_rating_downgraded": True, "tax_rating": "C", "tax_rating_prev": "B"},
        {"tax_rating_downgraded": True, "tax_rating": "B", "tax_rating_prev": "A"},
        {},
    ),
    "fund_diversion": (
        {"fund_diversion_max_share": 0.45, "fund_diversion_max_loan_amount": 450000},
        {"fund_diversion_max_share": 0.29},
        {},
    ),
    "dishonest_debtor_listed": ({"dishonest_debtor_listed_12m": 1}, {}, {}),
    "enforcement_listed": ({"enforcement_listed_6m": 2}, {}, {}),
    "governance_churn": ({"low_severity_events_12m": 3}, {"low_severity_events_12m": 2}, {}),
    "legal_rep_changed": ({"legal_rep_change_6m": 1}, {"low_severity_events_12m": 1}, {}),
    # a one-off bad quarter (6-month revenue barely down) is the near miss of both
    "revenue_collapse": (
        {"revenue_3m_yoy": -0.55, "revenue_6m_yoy": -0.35},
        {"revenue_3m_yoy": -0.55, "revenue_6m_yoy": -0.20},
        {},
    ),
    "revenue_decline": (
        {"revenue_3m_yoy": -0.25, "revenue_6m_yoy": -0.18},
        {"revenue_3m_yoy": -0.30, "revenue_6m_yoy": -0.08},
        {},
    ),
    "electricity_collapse": (
        {"electricity_3m_yoy": -0.35, "electricity_yoy_decline_months": 4},
        {"electricity_3m_yoy": -0.35, "electricity_yoy_decline_months": 2},
        {},
    ),
    "vat_filings_missing": ({"vat_filings_missing_3m": 2}, {"vat_filings_missing_3m": 1}, {}),
    "abnormal_operation_listed": ({"abnormal_operation_currently_listed": True}, {}, {}),
    "status_not_active": (
        {"status_at_month_end": "suspended"},
        {"status_at_month_end": None},
        {},
    ),
    "industry_downturn": (
        {"industry_revenue_3m_yoy_median": -0.20},
        {"industry_revenue_3m_yoy_median": -0.20, "industry_peer_count": 3},
        {},
    ),
    "underperforming_industry": (
        {"revenue_3m_yoy_vs_industry": -0.35},
        {"revenue_3m_yoy_vs_industry": -0.25},
        {},
    ),
    "status_revoked_or_cancelled": (
        {"status_at_month_end": "cancelled"},
        {"status_at_month_end": "suspended"},
        {},
    ),
    "tax_arrears": ({"tax_arrears": 60000}, {"tax_arrears": 49999}, {}),
    "tax_arrears_rising": (
        {"tax_arrears": 30000, "tax_arrears_growth_3m": 0.8},
        {"tax_arrears": 15000, "tax_arrears_growth_3m": 0.8},
        {},
    ),
    "utility_arrears": (
        {"utility_arrears_overdue": 12000, "utility_late_payments_6m": 2},
        # the latest bill, not yet due, is in utility_arrears but not overdue
        {"utility_arrears": 12000, "utility_late_payments_6m": 2},
        {},
    ),
    "utility_late_payments": (
        {"utility_late_payments_6m": 3},
        {"utility_late_payments_6m": 2},
        {},
    ),
    "maturity_wall": (
        {"principal_due_90d_to_avg_monthly_revenue": 3.5, "principal_due_next_90d": 350000},
        {"principal_due_90d_to_avg_monthly_revenue": 2.9},
        {},
    ),
    "borrowing_burden_rising": (
        {"outstanding_to_revenue_12m": 1.5},
        {"outstanding_to_revenue_12m": 1.5, "_prior": 1.4},
        {"outstanding_to_revenue_12m": 1.1},
    ),
    # risk that travels: the other firm is named, "name (credit code)"
    "network_guaranteed_party_in_default": (
        {"guaranteed_parties_in_default": 1, "guarantees_given_in_default": 500000,
         "guaranteed_party_in_default": "Firm X (913301020000000X01)"},
        {"guaranteed_parties_past_due": 1, "guaranteed_party_past_due": "Firm X (1)"},
        {},
    ),
    "network_circle_member_in_default": (
        {"circle_members_in_default": 1, "guarantee_circle_members": 3,
         "circle_member_in_default": "Firm Y (913301020000000Y01)"},
        {"guarantee_circle_members": 3},
        {},
    ),
    "network_guaranteed_party_past_due": (
        {"guaranteed_parties_past_due": 2, "guaranteed_party_past_due": "Firm Z (9133)"},
        {"guaranteed_parties_in_default": 0},
        {},
    ),
    "network_guarantees_over_extended": (
        {"guarantees_given": 1500000, "guarantees_given_to_revenue_12m": 1.25},
        {"guarantees_given": 1000000, "guarantees_given_to_revenue_12m": 1.0},
        {},
    ),
    "network_own_guarantor_in_default": (
        {"own_guarantors_in_default": 1, "own_guarantor_in_default": "Firm G (9133)"},
        {"related_parties_in_default": 0},
        {},
    ),
    "network_related_party_in_default": (
        {"related_parties_in_default": 2, "related_party_in_default": "Firm R (9133)"},
        {"related_parties_past_due": 1, "related_party_past_due": "Firm R (9133)"},
        {},
    ),
    "network_related_party_past_due": (
        {"related_parties_past_due": 1, "related_party_past_due": "Firm R (9133)"},
        {"related_parties_in_default": 1, "related_party_in_default": "Firm R (9133)"},
        {},
    ),
    # on red by a hard trigger: the near miss is the same firm in default (its own signal)
    "network_guaranteed_party_on_red": (
        {"guaranteed_parties_on_red": 1, "guaranteed_party_on_red": "Firm X (9133)",
         "guaranteed_party_red_trigger": "dishonest_debtor_listed"},
        {"guaranteed_parties_in_default": 1, "guaranteed_party_in_default": "Firm X (9133)"},
        {},
    ),
    "network_own_guarantor_on_red": (
        {"own_guarantors_on_red": 1, "own_guarantor_on_red": "Firm G (9133)",
         "own_guarantor_red_trigger": "fund_diversion"},
        {"own_guarantors_in_default": 1, "own_guarantor_in_default": "Firm G (9133)"},
        {},
    ),
    "network_related_party_on_red": (
        {"related_parties_on_red": 2, "related_party_on_red": "Firm R (9133)",
         "related_party_red_trigger": "status_revoked_or_cancelled"},
        {"related_parties_past_due": 1, "related_party_past_due": "Firm R (9133)"},
        {},
    ),
    # on red by its PD (marts.fct_enterprise_month_end_network_pd): the near miss is the same
    # firm on red by a hard trigger (its own signal, not counted twice)
    "network_guaranteed_party_red_by_pd": (
        {"guaranteed_parties_red_by_pd": 1, "guaranteed_party_red_by_pd": "Firm X (9133)",
         "guaranteed_party_pd": 0.42, "red_pd_cutoff": 0.3},
        {"guaranteed_parties_on_red": 1, "guaranteed_party_on_red": "Firm X (9133)",
         "guaranteed_party_red_trigger": "dishonest_debtor_listed"},
        {},
    ),
    "network_own_guarantor_red_by_pd": (
        {"own_guarantors_red_by_pd": 1, "own_guarantor_red_by_pd": "Firm G (9133)",
         "own_guarantor_pd": 0.3, "red_pd_cutoff": 0.3},
        {"own_guarantors_on_red": 1, "own_guarantor_on_red": "Firm G (9133)",
         "own_guarantor_red_trigger": "fund_diversion"},
        {},
    ),
    "network_related_party_red_by_pd": (
        {"related_parties_red_by_pd": 1, "related_party_red_by_pd": "Firm R (9133)",
         "related_party_pd": 0.55, "red_pd_cutoff": 0.3},
        {"related_parties_on_red": 1, "related_party_on_red": "Firm R (9133)",
         "related_party_red_trigger": "status_revoked_or_cancelled"},
        {},
    ),
}


# ---------------------------------------------------------------------------------------------
# Hand-built warehouse


def create_schema(con: duckdb.DuckDBPyConnection) -> None:
    """The two fact marts as their dbt contracts define them, and the raw tables the engine
    reads (from the landing contract)."""
    create_mart_tables(con, "fct_enterprise_month_end", "fct_loan_month_end",
                       "fct_enterprise_month_end_network_pd")
    con.execute("CREATE SCHEMA IF NOT EXISTS raw")
    con.execute(raw_table_ddl(TABLES["loans"]))
    con.execute(raw_table_ddl(TABLES["loan_applications"]))


def put_features(con, enterprise_id: str, month_end: date, **overrides) -> None:
    row = dict(FEATURES)
    row.update({k: v for k, v in overrides.items()
                if not k.startswith("_") and k not in NETWORK_PD_COLUMNS})
    network_pd = {k: v for k, v in overrides.items() if k in NETWORK_PD_COLUMNS}
    if network_pd:  # other firms on red by their PD: the mart beside the features
        names = ["enterprise_id", "month_end", *network_pd]
        con.execute(
            f"INSERT INTO marts.fct_enterprise_month_end_network_pd ({', '.join(names)}) "
            f"VALUES ({', '.join('?' * len(names))})",
            [enterprise_id, month_end, *network_pd.values()],
        )
    names = ["enterprise_id", "month_end", *row]
    con.execute(
        f"INSERT INTO marts.fct_enterprise_month_end ({', '.join(names)}) "
        f"VALUES ({', '.join('?' * len(names))})",
        [enterprise_id, month_end, *row.values()],
    )


def put_loan(con, enterprise_id: str, month_end: date, dpd: int = 0, floor: int = 1) -> None:
    loan_id = f"L-{enterprise_id}"
    if not con.execute("SELECT 1 FROM raw.loans WHERE loan_id = ?", [loan_id]).fetchall():
        con.execute(
            "INSERT INTO raw.loans (loan_id, enterprise_id, contract_date, disbursement_date, "
            "maturity_date, principal) VALUES (?, ?, DATE '2025-01-01', DATE '2025-01-05', "
            "DATE '2028-01-05', 1000000)",
            [loan_id, enterprise_id],
        )
    con.execute(
        "INSERT INTO marts.fct_loan_month_end (loan_id, enterprise_id, month_end, "
        "outstanding_principal, dpd, risk_class, ifrs9_stage, ifrs9_stage_dpd_floor, "
        "is_default) VALUES (?, ?, ?, 800000, ?, 'normal', ?, ?, FALSE)",
        [loan_id, enterprise_id, month_end, dpd, floor, floor],
    )


def put_month(con, month_end: date, firms: dict[str, dict]) -> None:
    """One month end: a feature row and a loan row per firm (overrides per firm)."""
    for firm, overrides in firms.items():
        put_features(con, firm, month_end, **overrides)
        put_loan(con, firm, month_end, dpd=overrides.get("dpd_max", 0) or 0,
                 floor=overrides.get("_floor", 1))


def hits_as_of(con, as_of: date) -> str:
    """The engine's own signal hits over each firm's latest feature row on or before as_of."""
    latest = features_sql(con, CAT, end=as_of, latest_only=True)
    return signal_hits_rows_sql(CAT, f"({latest})")


class Warehouse:
    """A connection to a warehouse file that steps aside while dbt (another process) writes."""

    def __init__(self, path: Path):
        self.path = path
        self._con = duckdb.connect(str(path))

    def __getattr__(self, name: str):
        return getattr(self._con, name)

    def run_dbt_decisions(self, as_of: date) -> None:
        self._con.close()
        try:
            run_dbt(
                ["run", "--select", "tag:decisions"],
                warehouse=self.path,
                dbt_vars={"as_of_date": as_of.isoformat(), **decision_vars(CAT)},
                # one target per warehouse: its vars stay the same, so dbt parses it once
                target_path=self.path.parent / f"dbt_target_{self.path.stem}",
            )
        finally:
            self._con = duckdb.connect(str(self.path))

    def close(self) -> None:
        self._con.close()


def run_engine(con: Warehouse, as_of: date) -> None:
    """The whole engine for one as-of date: Python signal hits and profile, dbt decisions."""
    ew.run_early_warning(con, CAT, as_of)
    con.run_dbt_decisions(as_of)


@pytest.fixture(scope="module")
def decisions_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The module's warehouses live here under fixed names, each test's replacing the last
    one's: dbt's vars name the warehouse path, so with the same path dbt parses the project
    once for the module instead of once per test (about 8 s each)."""
    return tmp_path_factory.mktemp("decisions")


def fresh_warehouse(folder: Path, name: str) -> Warehouse:
    """An empty warehouse at `folder/name`, replacing whatever an earlier test left there."""
    path = folder / name
    for old in (path, path.with_name(f"{name}.wal")):
        old.unlink(missing_ok=True)
    c = Warehouse(path)
    create_schema(c)
    return c


@pytest.fixture
def con(decisions_dir: Path):
    c = fresh_warehouse(decisions_dir, "wh.duckdb")
    yield c
    c.close()


# ---------------------------------------------------------------------------------------------
# Every signal: a firm that triggers it and a near miss that does not


@pytest.fixture(scope="module")
def signal_results() -> dict[str, dict[str, str]]:
    """{enterprise_id: {signal_id: reason}} over all CASES firms, as of AS_OF."""
    c = duckdb.connect()
    create_schema(c)
    # the 3 month ends before AS_OF carry `before` (change columns look 3 month ends back)
    prior = [date(2025, 12, 31), date(2026, 1, 31), date(2026, 2, 28)]
    for sid, (hit, miss, before) in CASES.items():
        for kind, over in (("hit", hit), ("miss", miss)):
            prior_over = dict(before)
            if "_prior" in over:
                prior_over["outstanding_to_revenue_12m"] = over["_prior"]
            for me in prior:
                put_features(c, f"{sid}__{kind}", me, **prior_over)
            put_features(c, f"{sid}__{kind}", AS_OF, **over)
    out: dict[str, dict[str, str]] = {}
    for eid, sid, reason in c.execute(
        f"SELECT enterprise_id, signal_id, reason FROM ({hits_as_of(c, AS_OF)})"
    ).fetchall():
        out.setdefault(eid, {})[sid] = reason
    c.close()
    return out


def test_every_catalog_feature_has_a_default() -> None:
    known = set(FEATURES) | set(NETWORK_PD_COLUMNS)
    assert set(feature_columns(CAT)) <= known, set(feature_columns(CAT)) - known


@pytest.mark.parametrize("signal_id", [s.id for s in CAT.signals])
def test_signal_fires_on_its_case_and_not_on_the_near_miss(signal_id, signal_results) -> None:
    assert signal_id in CASES, f"signal {signal_id} has no test case in CASES"
    hit = signal_results.get(f"{signal_id}__hit", {})
    miss = signal_results.get(f"{signal_id}__miss", {})
    assert signal_id in hit, f"{signal_id} did not fire on its triggering firm ({hit})"
    assert signal_id not in miss, f"{signal_id} fired on its near miss: {miss[signal_id]}"
    reason = hit[signal_id]
    assert reason and "{" not in reason and "n/a" not in reason, reason


def test_cases_name_only_catalog_signals() -> None:
    assert set(CASES) == {s.id for s in CAT.signals}


def test_reasons_quote_the_firms_own_values(signal_results) -> None:
    assert signal_results["electricity_collapse__hit"]["electricity_collapse"] == (
        "electricity down 35% year on year, 4 months running"
    )
    assert signal_results["tax_arrears__hit"]["tax_arrears"] == "60,000 CNY of tax unpaid"
    assert "up 0.40 in 3 months" in (
        signal_results["borrowing_burden_rising__hit"]["borrowing_burden_rising"]
    )


def test_healthy_firm_triggers_nothing(con) -> None:
    put_features(con, "healthy", AS_OF)
    assert con.execute(f"SELECT count(*) FROM ({hits_as_of(con, AS_OF)})").fetchone()[0] == 0


def test_catalog_covers_every_dimension_and_stage() -> None:
    assert {s.dimension for s in CAT.signals} == {
        "credit", "moral", "operational", "market", "liquidity"
    }
    assert {s.stage for s in CAT.signals} == {"pre_lending", "lending", "post_lending"}


# ---------------------------------------------------------------------------------------------
# Engine: seasonality, tiers, population, watchlist status, history, IFRS 9


def test_chinese_new_year_month_does_not_flood_the_watchlist(con) -> None:
    """Jan revenue/electricity fall ~50% month on month, as they did last January: the
    year-on-year features stay flat, so nobody is flagged."""
    jan = date(2026, 1, 31)
    put_month(con, date(2025, 12, 31), {f"cny{i}": {"revenue_1m": 200000} for i in range(30)})
    put_month(
        con, jan,
        {f"cny{i}": {"revenue_1m": 95000, "revenue_3m_yoy": -0.03, "electricity_3m_yoy": -0.04,
                     "electricity_yoy_decline_months": 1} for i in range(30)},
    )
    run_engine(con, jan)
    assert con.execute("SELECT count(*) FROM marts.enterprise_risk_profile").fetchone()[0] == 30
    assert con.execute("SELECT count(*) FROM marts.signal_hits").fetchone()[0] == 0
    assert con.execute("SELECT count(*) FROM marts.watchlist").fetchone()[0] == 0


TIER_FIRMS = {
    "one_medium": ({"tax_arrears": 60000}, "green"),
    "one_low": ({"legal_rep_change_6m": 1}, "green"),
    "two_medium": ({"tax_arrears": 60000, "vat_filings_missing_3m": 2}, "amber"),
    "one_high": ({"revenue_3m_yoy": -0.6, "revenue_6m_yoy": -0.5}, "amber"),
    "medium_two_low": (
        {"tax_arrears": 60000, "legal_rep_change_6m": 1, "utility_late_payments_6m": 3},
        "amber",
    ),
    "two_high": (
        {"revenue_3m_yoy": -0.6, "revenue_6m_yoy": -0.5,
         "abnormal_operation_currently_listed": True},
        "red",
    ),
    "high_two_medium": (
        {"revenue_3m_yoy": -0.6, "revenue_6m_yoy": -0.5, "tax_arrears": 60000,
         "vat_filings_missing_3m": 2},
        "red",
    ),
    "three_medium": (
        {"tax_arrears": 60000, "vat_filings_missing_3m": 2, "enforcement_listed_6m": 1},
        "red",
    ),
    "defaulted": ({"is_default": True, "dpd_max": 20, "dpd_max_12m": 120}, "red"),
}


def test_tier_rules(con) -> None:
    put_month(con, AS_OF, {f: over for f, (over, _) in TIER_FIRMS.items()})
    run_engine(con, AS_OF)
    got = dict(con.execute("SELECT enterprise_id, tier FROM marts.enterprise_risk_profile")
               .fetchall())
    assert got == {f: tier for f, (_, tier) in TIER_FIRMS.items()}
    rows = con.execute(
        "SELECT credit_score, moral_score, operational_score, market_score, liquidity_score, "
        "risk_score, catalog_version FROM marts.enterprise_risk_profile"
    ).fetchall()
    assert all(0 <= v <= 100 for r in rows for v in r[:6]) and {r[6] for r in rows} == {
        CAT.version
    }
    wl = dict(con.execute("SELECT enterprise_id, tier FROM marts.watchlist").fetchall())
    assert wl == {f: t for f, (_, t) in TIER_FIRMS.items() if t != "green"}
    action = con.execute(
        "SELECT recommended_action FROM marts.watchlist WHERE enterprise_id = 'two_high'"
    ).fetchone()[0]
    assert action == CAT.recommended_action["red"]


def test_population_is_borrowers_and_recent_applicants(con) -> None:
    put_features(con, "applicant", AS_OF, revenue_3m_yoy=-0.6, revenue_6m_yoy=-0.5)
    put_features(con, "old_applicant", AS_OF, revenue_3m_yoy=-0.6, revenue_6m_yoy=-0.5)
    put_features(con, "stranger", AS_OF, revenue_3m_yoy=-0.6, revenue_6m_yoy=-0.5)
    con.execute(
        "INSERT INTO raw.loan_applications (application_id, enterprise_id, application_date, "
        "requested_amount, requested_term_months, requested_product, purpose) VALUES "
        "('A1', 'applicant', DATE '2026-02-20', 1e5, 12, NULL, 'working_capital'), "
        "('A2', 'old_applicant', DATE '2025-09-01', 1e5, 12, NULL, 'working_capital')"
    )
    ew.run_early_warning(con, CAT, AS_OF)
    got = con.execute("SELECT enterprise_id, tier FROM marts.enterprise_risk_profile").fetchall()
    assert got == [("applicant", "amber")]


def _watch(con, as_of: date) -> dict[str, tuple]:
    run_engine(con, as_of)
    return {
        r[0]: r[1:]
        for r in con.execute(
            "SELECT enterprise_id, tier, status, first_flagged_date, clearing FROM marts.watchlist"
        ).fetchall()
    }


def test_status_new_continuing_escalated_then_exit_after_clear_month_ends(con) -> None:
    amber, red = {"revenue_3m_yoy": -0.6, "revenue_6m_yoy": -0.5}, {
        "revenue_3m_yoy": -0.6, "revenue_6m_yoy": -0.5, "abnormal_operation_currently_listed": True
    }
    months = [date(2025, m, 28 if m == 2 else 30 if m in (4, 6, 9, 11) else 31)
              for m in range(1, 13)]
    jan, feb, mar = months[:3]
    put_month(con, jan, {"x": amber})
    assert _watch(con, jan) == {"x": ("amber", "new", jan, False)}
    put_month(con, feb, {"x": amber})
    assert _watch(con, feb) == {"x": ("amber", "continuing", jan, False)}
    put_month(con, mar, {"x": red})
    assert _watch(con, mar) == {"x": ("red", "escalated", jan, False)}
    n = CAT.exit_after_clear_month_ends
    for k, me in enumerate(months[3:3 + n]):
        put_month(con, me, {"x": {}})
        got = _watch(con, me)
        if k < n - 1:
            assert got == {"x": ("red", "continuing", jan, True)}, k
        else:
            assert got == {}, "still listed after the exit_after_clear_month_ends clear refreshes"
    again = months[3 + n]
    put_month(con, again, {"x": amber})
    assert _watch(con, again) == {"x": ("amber", "new", again, False)}
    hist = con.execute(
        "SELECT count(*), count(DISTINCT as_of_date) FROM marts.watchlist_history"
    ).fetchone()
    assert hist == (3 + n - 1 + 1, 3 + n - 1 + 1)


def test_rerunning_the_same_date_leaves_no_duplicates(con) -> None:
    jan, feb = date(2026, 1, 31), date(2026, 2, 28)
    put_month(con, jan, {"x": {"revenue_3m_yoy": -0.6, "revenue_6m_yoy": -0.5}, "y": {}})
    put_month(con, feb, {"x": {"revenue_3m_yoy": -0.6, "revenue_6m_yoy": -0.5},
                         "y": {"revenue_3m_yoy": -0.5, "revenue_6m_yoy": -0.45}})
    _watch(con, jan)
    first = _watch(con, feb)
    second = _watch(con, feb)
    assert first == second == {
        "x": ("amber", "continuing", jan, False), "y": ("amber", "new", feb, False)
    }
    dupes = con.execute(
        "SELECT count(*) FROM (SELECT as_of_date, enterprise_id FROM marts.watchlist_history "
        "GROUP BY ALL HAVING count(*) > 1)"
    ).fetchone()[0]
    assert dupes == 0
    assert con.execute("SELECT count(*) FROM marts.watchlist_history").fetchone()[0] == 3
    hits = con.execute(
        "SELECT count(*) FROM marts.signal_hits_history WHERE as_of_date = ?", [feb]
    ).fetchone()[0]
    assert hits == 2


def test_red_tier_raises_ifrs9_stage_to_2(con) -> None:
    red = {"revenue_3m_yoy": -0.6, "revenue_6m_yoy": -0.5,
           "abnormal_operation_currently_listed": True}
    put_month(con, AS_OF, {
        "red_firm": red,
        "red_stage3": {**red, "dpd_max": 120, "_floor": 3},
        "amber_firm": {"revenue_3m_yoy": -0.6, "revenue_6m_yoy": -0.5},
        "fine": {},
    })
    run_engine(con, AS_OF)
    got = {
        r[0]: r[1:]
        for r in con.execute(
            "SELECT enterprise_id, ifrs9_stage_dpd_floor, ifrs9_stage, stage_reason "
            "FROM marts.loan_ifrs9_stage"
        ).fetchall()
    }
    assert got["red_firm"][:2] == (1, 2) and "red watchlist tier" in got["red_firm"][2]
    assert got["red_stage3"][:2] == (3, 3)
    assert got["amber_firm"][:2] == (1, 1)
    assert got["fine"][:2] == (1, 1)


def test_signal_check_reports_new_hits(con) -> None:
    jan, feb = date(2026, 1, 31), date(2026, 2, 28)
    put_month(con, jan, {"x": {"revenue_3m_yoy": -0.6, "revenue_6m_yoy": -0.5}, "y": {}})
    ew.run_early_warning(con, CAT, jan)
    put_month(con, feb, {"x": {"revenue_3m_yoy": -0.6, "revenue_6m_yoy": -0.5},
                         "y": {"revenue_3m_yoy": -0.5, "revenue_6m_yoy": -0.45}})
    ew.run_early_warning(con, CAT, feb)
    s = ew.signal_check_summary(con, CAT, CAT.signal("revenue_collapse"), feb)
    assert (s["hits"], s["new_hits"], s["monitored"]) == (2, 1, 2)
    assert s["passed"] and "risk backtest" in s["verdict"]  # no back-test yet: no band
    assert s["examples"][0][:2] == ("y", True)
    assert "down 50% year on year" in s["examples"][0][2]


def test_past_dates_keep_the_current_tables_and_decide_in_one_pass(con) -> None:
    """A past date writes its history rows only; a backfill's dates are decided in one pass
    with the same rows as one pass per date."""
    jan, feb, mar = date(2026, 1, 31), date(2026, 2, 28), date(2026, 3, 31)
    put_month(con, jan, {"x": {"revenue_3m_yoy": -0.6, "revenue_6m_yoy": -0.5}, "y": {}})
    put_month(con, feb, {"x": {}, "y": {"revenue_3m_yoy": -0.5, "revenue_6m_yoy": -0.45}})
    put_month(con, mar, {"x": {}, "y": {}, "z": {"revenue_3m_yoy": -0.6,
                                                 "revenue_6m_yoy": -0.5}})
    ew.run_early_warning(con, CAT, mar)  # the current date
    current = {t: con.execute(f"SELECT * FROM marts.{t} ORDER BY ALL").fetchall()
               for t in ("signal_hits", "enterprise_risk_profile")}
    for d in (jan, feb):
        ew.build_early_warning_for_dates(con, CAT, [d], current_date=None)
    assert {t: con.execute(f"SELECT * FROM marts.{t} ORDER BY ALL").fetchall()
            for t in current} == current
    hist = dict(con.execute(
        "SELECT as_of_date, list(enterprise_id ORDER BY enterprise_id) "
        "FROM marts.signal_hits_history GROUP BY 1").fetchall())
    assert hist == {jan: ["x"], feb: ["y"], mar: ["z"]}
    assert con.execute("SELECT count(DISTINCT as_of_date) FROM "
                       "marts.enterprise_risk_profile_history").fetchone()[0] == 3

    # A range run computes the dates' signal hits and profiles in one pass, with the rows
    # the date-by-date runs wrote (mid-month dates share their month end's work).
    mid_feb = date(2026, 2, 14)
    ew.build_early_warning_for_dates(con, CAT, [mid_feb], current_date=None)
    tables = ("signal_hits_history", "enterprise_risk_profile_history",
              "signal_hits", "enterprise_risk_profile")
    by_date = {t: con.execute(f"SELECT * FROM marts.{t} ORDER BY ALL").fetchall()
               for t in tables}
    for t in tables[:2]:
        con.execute(f"DELETE FROM marts.{t}")
    con.execute("DROP TABLE marts.signal_hits")
    con.execute("DROP TABLE marts.enterprise_risk_profile")
    dates = [jan, mid_feb, feb, mar]
    built = ew.build_early_warning_for_dates(con, CAT, dates, current_date=mar)
    hits, profiles = built[ew.SIGNAL_HITS], built[ew.RISK_PROFILE]
    assert hits == {jan: 1, mid_feb: 1, feb: 1, mar: 1}
    assert profiles[mid_feb] == profiles[feb] >= 2
    assert {t: con.execute(f"SELECT * FROM marts.{t} ORDER BY ALL").fetchall()
            for t in tables} == by_date

    cols = "enterprise_id, month_end, tier, listed, pd, risk_score, reasons"
    con.execute("DELETE FROM marts.enterprise_decisions")
    for d in (jan, feb):
        ew.build_decision_window(con, CAT, d, current=False)
    one_by_one = con.execute(f"SELECT {cols} FROM marts.enterprise_decisions ORDER BY ALL"
                             ).fetchall()
    con.execute("DELETE FROM marts.enterprise_decisions")
    rows = ew.build_decision_windows(con, CAT, [jan, feb], current=mar)
    assert set(rows) == {jan, feb}
    assert con.execute(f"SELECT {cols} FROM marts.enterprise_decisions ORDER BY ALL"
                       ).fetchall() == one_by_one
    assert len(one_by_one) == 4  # x and y at jan and feb


def test_both_marts_come_from_one_preparation_with_the_rows_of_two(con, monkeypatch) -> None:
    """The night prepares the monitored firms' feature rows once for both marts
    (`build_early_warning_for_dates`, as the asset step does) and writes the rows of two
    builds of one mart each, which each prepare their own: every date, the current marts and
    the histories."""
    feb, mid_mar, mar = date(2026, 2, 28), date(2026, 3, 14), AS_OF
    put_month(con, feb, {f: over for f, (over, _) in TIER_FIRMS.items()})
    put_month(con, mar, {f: {} if f.startswith("one") else over
                         for f, (over, _) in TIER_FIRMS.items()})
    con.execute(  # monitored without a feature row: decided on NULL features
        "INSERT INTO raw.loan_applications (application_id, enterprise_id, application_date, "
        "requested_amount, requested_term_months, requested_product, purpose) VALUES "
        "('A1', 'newcomer', DATE '2026-03-10', 1e5, 12, NULL, 'working_capital')"
    )
    dates = [feb, mid_mar, mar]
    tables = ("signal_hits", "signal_hits_history", "enterprise_risk_profile",
              "enterprise_risk_profile_history")
    prepared: list[list[date]] = []
    real_prepare = ew._prepare_dates
    monkeypatch.setattr(ew, "_prepare_dates",
                        lambda c, cat, ds, reuse=None: prepared.append(ds)
                        or real_prepare(c, cat, ds, reuse))

    two = {m: ew.build_early_warning_for_dates(con, CAT, dates, mar, [m])[m]
           for m in (ew.SIGNAL_HITS, ew.RISK_PROFILE)}  # each mart with its own preparation
    separate = {t: con.execute(f"SELECT * FROM marts.{t} ORDER BY ALL").fetchall()
                for t in tables}
    assert prepared == [dates, dates]
    for t in tables:
        con.execute(f"DROP TABLE marts.{t}")
    prepared.clear()

    assert ew.build_early_warning_for_dates(con, CAT, dates, mar) == two
    assert prepared == [dates]
    assert {t: con.execute(f"SELECT * FROM marts.{t} ORDER BY ALL").fetchall()
            for t in tables} == separate
    assert two[ew.RISK_PROFILE] == {feb: 9, mid_mar: 10, mar: 10}  # the newcomer from March
    assert all(two[ew.SIGNAL_HITS].values())


def test_a_later_night_of_the_same_month_writes_the_same_decisions(con) -> None:
    """The decision window holds no per-night value: re-deciding it on a later day of the same
    month writes the rows it held, so the publish keeps the table."""
    jan, feb = date(2026, 1, 31), date(2026, 2, 28)
    put_month(con, jan, {"x": {"revenue_3m_yoy": -0.6, "revenue_6m_yoy": -0.5}, "y": {}})
    put_month(con, feb, {"x": {}, "y": {"revenue_3m_yoy": -0.5, "revenue_6m_yoy": -0.45}})
    ew.build_decision_window(con, CAT, date(2026, 3, 5))
    first = con.execute("SELECT * FROM marts.enterprise_decisions ORDER BY ALL").fetchall()
    ew.build_decision_window(con, CAT, date(2026, 3, 6))
    assert len(first) == 4
    assert con.execute("SELECT * FROM marts.enterprise_decisions ORDER BY ALL").fetchall() == first


def _night_context(con: Warehouse, as_of: date, previous: date, recompute_from: date,
                   whole: set[str]) -> None:
    """What tonight's incremental dbt step leaves for the engine (main.dbt_run_context)."""
    con.close()
    write_run_context(con.path, as_of, recompute_from, whole, recompute_from, whole,
                      previous_as_of=previous)
    con._con = duckdb.connect(str(con.path))


def _rows_of(con, as_of: date) -> dict[str, list]:
    return {t: con.execute(f"SELECT * FROM marts.{t}_history WHERE as_of_date = ? "
                           "ORDER BY ALL", [as_of]).fetchall()
            for t in (ew.SIGNAL_HITS, ew.RISK_PROFILE)}


def _decided_whole(con, as_of: date) -> dict[str, list]:
    """D's rows as a night without a run context decides them: every firm from its features."""
    con.execute("DROP TABLE IF EXISTS main.dbt_run_context")
    ew.build_early_warning_for_dates(con, CAT, [as_of], as_of)
    assert not table_exists(con, "temp", "_ew_kept")
    return _rows_of(con, as_of)


def test_a_night_carries_over_only_the_rows_whose_facts_it_did_not_recompute(con) -> None:
    """Inside a month a night's signal hits and profiles carry over the previous date's rows
    of the firms whose facts its dbt step left alone; a firm recomputed whole, a newly
    monitored firm, every firm once a month end it reads was recomputed, and a firm whose
    stored hits disagree with its stored profile are decided again. The rows equal those of
    a whole decision."""
    jan, feb = date(2026, 1, 31), date(2026, 2, 28)
    previous, night, next_night = date(2026, 3, 5), date(2026, 3, 6), date(2026, 3, 7)
    drop = {"revenue_3m_yoy": -0.6, "revenue_6m_yoy": -0.5}
    put_month(con, jan, {f: {} for f in "abce"})
    put_month(con, feb, {"a": drop, "b": drop, "c": {}, "e": {}})
    put_features(con, "n", feb, **drop)
    ew.build_early_warning_for_dates(con, CAT, [previous], previous)
    assert not table_exists(con, "temp", "_ew_kept")  # no run context: decided whole
    # tonight's dbt step recomputed b whole (its February revenue fell further), a loan to n
    # was disbursed today, and c's stored hits are not those its stored profile was decided on
    con.execute("UPDATE marts.fct_enterprise_month_end SET revenue_3m_yoy = -0.8 "
                "WHERE enterprise_id = 'b' AND month_end = ?", [feb])
    con.execute("INSERT INTO raw.loans (loan_id, enterprise_id, contract_date, "
                "disbursement_date, maturity_date, principal) VALUES ('L-n', 'n', ?, ?, "
                "DATE '2028-01-05', 1000000)", [night, night])
    con.execute("INSERT INTO marts.signal_hits_history (as_of_date, enterprise_id, signal_id) "
                "SELECT as_of_date, 'c', signal_id FROM marts.signal_hits_history "
                "WHERE enterprise_id = 'a' AND as_of_date = ?", [previous])
    _night_context(con, night, previous, date.max, {"b"})
    ew.build_early_warning_for_dates(con, CAT, [night], night)
    kept = {r[0] for r in con.execute("SELECT enterprise_id FROM _ew_kept").fetchall()}
    assert kept == {"a", "e"}
    carried = _rows_of(con, night)
    assert {r[0] for r in carried[ew.RISK_PROFILE]} == set("abcen")
    reasons = "SELECT reasons FROM marts.enterprise_risk_profile_history WHERE as_of_date = ? "
    assert con.execute(reasons + "AND enterprise_id = 'b'", [previous]).fetchone() != \
        con.execute(reasons + "AND enterprise_id = 'b'", [night]).fetchone()
    assert carried == _decided_whole(con, night)
    # the next night's dbt step recomputed from February on: February is every firm's key
    con.execute("UPDATE marts.fct_enterprise_month_end SET revenue_3m_yoy = -0.9 "
                "WHERE enterprise_id = 'a' AND month_end = ?", [feb])
    _night_context(con, next_night, night, feb, set())
    ew.build_early_warning_for_dates(con, CAT, [next_night], next_night)
    assert con.execute("SELECT count(*) FROM _ew_kept").fetchone() == (0,)
    assert _rows_of(con, next_night) == _decided_whole(con, next_night)


def test_a_big_book_decided_in_buckets_of_firms_gets_the_rows_of_one_pass(
    con, monkeypatch
) -> None:
    """Past DECISION_ROWS_PER_PASS firm-months the window is decided bucket by bucket of firms
    (bounded memory at 1M firms); the change columns read each firm's own earlier rows, so
    every firm gets the rows one pass gives it."""
    from assets.signals import decisions

    months = [date(2025, 11, 30), date(2025, 12, 31), date(2026, 1, 31), date(2026, 2, 28)]
    for i, m in enumerate(months):
        put_month(con, m, {
            f"f{k}": {"revenue_3m_yoy": 0.1 - 0.12 * i * (k % 3), "dpd_max": 10 * i * (k % 2),
                      "dpd_max_12m": 10 * i * (k % 2), "revenue_6m_yoy": 0.05 - 0.1 * i * k}
            for k in range(9)})
    ew.build_decision_window(con, CAT, date(2026, 3, 5))
    one_pass = con.execute("SELECT * FROM marts.enterprise_decisions ORDER BY ALL").fetchall()
    passes = []
    real_features_sql = decisions.features_sql
    monkeypatch.setattr(decisions, "DECISION_ROWS_PER_PASS", 5)
    monkeypatch.setattr(decisions, "features_sql",
                        lambda *a, **kw: passes.append(1) or real_features_sql(*a, **kw))
    con.execute("DELETE FROM marts.enterprise_decisions")
    ew.build_decision_window(con, CAT, date(2026, 3, 5))
    assert len(passes) == 8  # 36 firm-month ends, 5 a pass
    assert len(one_pass) == 36 and sum(r[6] for r in one_pass) > 0  # some listed
    assert con.execute("SELECT * FROM marts.enterprise_decisions ORDER BY ALL").fetchall() \
        == one_pass


def test_loan_mart_problems_detects_broken_data(con) -> None:
    put_month(con, AS_OF, {"x": {}})
    assert ew.loan_mart_problems(con, AS_OF)["negative_dpd"] == 0
    con.execute("UPDATE marts.fct_loan_month_end SET dpd = -3, outstanding_principal = -1")
    p = ew.loan_mart_problems(con, AS_OF)
    assert p["negative_dpd"] == 1 and p["negative_outstanding"] == 1
    con.execute("DELETE FROM marts.fct_loan_month_end")
    p = ew.loan_mart_problems(con, AS_OF)
    assert p["loan_rows"] == 0 and p["raw_loans_disbursed"] == 1


# ---------------------------------------------------------------------------------------------
# Dagster wiring


def _upstream_specs() -> list[AssetSpec]:
    return [AssetSpec(k) for k in (ew.FEATURES_KEY, ew.LOANS_KEY, ew.RAW_LOANS_KEY,
                                   ew.RAW_APPLICATIONS_KEY)]


def test_assets_materialize_with_metadata(tmp_path: Path, monkeypatch) -> None:
    """The signal hits and the risk profile: one step, one preparation, each asset its own
    metadata; either one selected alone is the only one written."""
    path = tmp_path / "wh.duckdb"
    c = duckdb.connect(str(path))
    create_schema(c)
    put_month(c, AS_OF, {f: over for f, (over, _) in TIER_FIRMS.items()})
    c.close()
    prepared = []
    real_prepare = ew._prepare_dates
    monkeypatch.setattr(ew, "_prepare_dates",
                        lambda *a: prepared.append(a) or real_prepare(*a))
    wh = RiskWarehouse(warehouse=str(path), landing_dir=str(tmp_path), as_of=AS_OF.isoformat())
    result = materialize(
        [*ew.early_warning_assets, *_upstream_specs()], resources={"warehouse": wh},
        partition_key=AS_OF.isoformat(),
    )
    assert result.success
    assert len(prepared) == 1
    mats = {
        m.asset_key: m.metadata for m in result.get_asset_materialization_events()
        for m in [m.materialization]
    }
    meta = mats[ew.PROFILE_KEY]
    assert meta["dagster/row_count"].value == len(TIER_FIRMS)
    assert meta["tiers"].value == {"red": 4, "amber": 3, "green": 2}
    assert sum(meta["engine"].value.values()) == len(TIER_FIRMS)
    hits = mats[ew.SIGNAL_HITS_KEY]
    assert hits["dagster/row_count"].value == sum(hits["hits_by_signal"].value.values()) > 0
    assert "tiers" not in hits and "hits_by_signal" not in meta

    with duckdb.connect(str(path)) as c:
        c.execute("DROP TABLE marts.enterprise_risk_profile")
    alone = materialize(
        [*ew.early_warning_assets, *_upstream_specs()], resources={"warehouse": wh},
        partition_key=AS_OF.isoformat(), selection=[ew.SIGNAL_HITS_KEY],
    )
    assert alone.success
    assert [e.asset_key for e in alone.get_asset_materialization_events()] == [
        ew.SIGNAL_HITS_KEY]
    with duckdb.connect(str(path)) as c:
        assert not table_exists(c, "marts", "enterprise_risk_profile")


def test_checks_run_and_blocking_check_stops_the_watchlist(tmp_path: Path) -> None:
    path = tmp_path / "wh.duckdb"
    c = duckdb.connect(str(path))
    create_schema(c)
    put_month(c, AS_OF, {"x": {"revenue_3m_yoy": -0.6, "revenue_6m_yoy": -0.5}})
    c.execute("UPDATE marts.fct_loan_month_end SET dpd = -1")
    c.close()
    wh = RiskWarehouse(warehouse=str(path), landing_dir=str(tmp_path), as_of=AS_OF.isoformat())
    # The dbt marts as no-op assets (tables already written), so their checks run in the job.
    stubs = [asset(key=k, group_name="marts")(lambda: None) for k in (ew.FEATURES_KEY,
                                                                       ew.LOANS_KEY)]
    raw = [AssetSpec(ew.RAW_LOANS_KEY), AssetSpec(ew.RAW_APPLICATIONS_KEY)]
    result = materialize(
        [*ew.early_warning_assets, *ew.early_warning_checks, *stubs, *raw],
        resources={"warehouse": wh},
        raise_on_error=False,
        partition_key=AS_OF.isoformat(),
    )
    evals = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert evals["dpd_not_negative"].passed is False
    # Signal checks sit on the signal hits, which the blocking check kept from building.
    assert "signal_revenue_collapse" not in evals
    # The blocking check on the loan mart stops everything downstream of it.
    assert ew.SIGNAL_HITS_KEY not in {
        e.asset_key for e in result.get_asset_materialization_events()
    }


# ---------------------------------------------------------------------------------------------
# Catalog validation


def _raw_catalog() -> dict:
    return yaml.safe_load(CATALOG_PATH.read_text(encoding="utf-8"))


def _signal(data: dict, sid: str) -> dict:
    return next(s for s in data["signals"] if s["id"] == sid)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: _signal(d, "overdue_now")["conditions"][0].update(op="~"),
         "signal 'overdue_now': conditions[0]: field 'op'"),
        (lambda d: _signal(d, "tax_arrears")["conditions"][0].pop("threshold"),
         "signal 'tax_arrears': conditions[0]: field 'threshold' is required"),
        (lambda d: _signal(d, "tax_arrears").update(severity="critical"),
         "signal 'tax_arrears': field 'severity'"),
        (lambda d: _signal(d, "tax_arrears").update(dimension="legal"),
         "signal 'tax_arrears': field 'dimension'"),
        (lambda d: _signal(d, "tax_arrears")["conditions"][0].update(threshold="lots"),
         "signal 'tax_arrears': conditions[0]: field 'threshold' must be a number"),
        (lambda d: d["signals"].append(copy.deepcopy(_signal(d, "tax_arrears"))),
         "signal 'tax_arrears': field 'id': duplicate"),
        (lambda d: _signal(d, "tax_arrears").update(reason="{tax_arrears_chg_3m} CNY"),
         "signal 'tax_arrears': field 'reason'"),
        (lambda d: d["tiers"]["red"].append({"min": {"medium": 1}}),
         "tiers.red[4]: a red rule needs 2+ signals"),
        (lambda d: d["tiers"]["red"].append({"any_signal": ["tax_arrears"]}),
         "signal 'tax_arrears' is medium"),
        (lambda d: d.pop("version"), "field 'version' is required"),
        (lambda d: d.update(exit_after_clear_month_ends=0), "exit_after_clear_month_ends"),
    ],
)
def test_catalog_validation_errors_are_clear(mutate, message) -> None:
    data = _raw_catalog()
    mutate(data)
    with pytest.raises(CatalogError) as exc:
        parse_catalog(data)
    assert message in str(exc.value)


def test_shipped_catalog_is_valid() -> None:
    assert parse_catalog(_raw_catalog()) == CAT


def test_watchlist_depends_on_the_facts_not_on_the_refreshes_that_ran(
    decisions_dir: Path,
) -> None:
    """Statuses are rules in time: refreshing every month end, or only at the last one, gives
    the same watchlist; a later run for a past date leaves the current watchlist alone."""
    amber = {"revenue_3m_yoy": -0.6, "revenue_6m_yoy": -0.5}
    red = {**amber, "abnormal_operation_currently_listed": True}
    months = [date(2025, m, 28 if m == 2 else 30 if m in (4, 6, 9, 11) else 31)
              for m in range(1, 7)]
    story = {  # firm -> its features month by month
        "escalates": [amber, amber, red, red, red, red],
        "clears": [amber, amber, {}, {}, {}, {}],
        "clearing": [red, red, red, red, red, {}],
        "late": [{}, {}, {}, {}, amber, amber],
    }

    def load(con) -> None:
        for i, me in enumerate(months):
            put_month(con, me, {f: s[i] for f, s in story.items()})

    def current(con) -> dict:
        cols = "enterprise_id, tier, status, first_flagged_date, clearing"
        return {r[0]: r[1:] for r in con.execute(f"SELECT {cols} FROM marts.watchlist").fetchall()}

    every = fresh_warehouse(decisions_dir, "every.duckdb")
    load(every)
    for me in months:
        run_engine(every, me)
    once = fresh_warehouse(decisions_dir, "wh.duckdb")  # the other tests' path: parsed already
    load(once)
    run_engine(once, months[-1])
    assert current(every) == current(once) == {
        "escalates": ("red", "continuing", months[0], False),
        "clearing": ("red", "continuing", months[0], True),
        "late": ("amber", "continuing", months[4], False),
    }
    before = current(every)
    run_engine(every, months[2])  # a run for a past date
    assert current(every) == before
    past = every.execute(
        "SELECT enterprise_id, status FROM marts.watchlist_history WHERE as_of_date = ?",
        [months[2]],
    ).fetchall()
    assert dict(past) == {"escalates": "escalated", "clears": "continuing",
                          "clearing": "continuing"}
    every.close()
    once.close()
