"""Pre-lending screening (issue 5) on a hand-made warehouse: rules, products, limits, point in time.

Each test builds a tiny in-memory DuckDB with just the staging/mart columns the screening reads,
one "clean" firm per case with one thing changed, and runs the SQL built from
`assets/screening/access_rules.yml`. One test materializes the Dagster asset and its checks.
"""

import sys
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
import yaml
from conftest import create_mart_tables

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from assets.screening.rules import (  # noqa: E402
    RulesError,
    build_screening,
    load_rules,
    parse_rules,
)

AS_OF = date(2025, 6, 30)
APP_DATE = date(2025, 6, 15)

SCHEMA = """
CREATE SCHEMA staging; CREATE SCHEMA marts;
CREATE TABLE staging.stg_core_banking__loan_applications (application_id VARCHAR,
    enterprise_id VARCHAR, application_date DATE, requested_amount DECIMAL(18,2),
    requested_term_months INTEGER, requested_product VARCHAR, purpose VARCHAR,
    offered_guarantor_id VARCHAR);
CREATE TABLE staging.stg_registry__enterprises (enterprise_id VARCHAR, established_date DATE,
    size_class VARCHAR, status VARCHAR, name VARCHAR, region_code VARCHAR);
CREATE TABLE staging.stg_core_banking__guarantees (guarantee_id VARCHAR, loan_id VARCHAR,
    guarantor_type VARCHAR, guarantor_id VARCHAR, guaranteed_amount DECIMAL(18,2),
    start_date DATE, end_date DATE);
CREATE TABLE staging.stg_registry__events (event_id VARCHAR, enterprise_id VARCHAR,
    event_date DATE, event_type VARCHAR, amount DECIMAL(18,2), description VARCHAR);
CREATE TABLE staging.stg_tax__ratings (enterprise_id VARCHAR, year INTEGER, rating VARCHAR,
    rating_rank INTEGER);
CREATE TABLE staging.stg_tax__filings (enterprise_id VARCHAR, period VARCHAR, period_start DATE,
    period_end DATE, tax_type VARCHAR, taxable_revenue DECIMAL(18,2),
    tax_payable DECIMAL(18,2), tax_paid DECIMAL(18,2), filed_date DATE);
CREATE TABLE staging.stg_core_banking__loans (loan_id VARCHAR, enterprise_id VARCHAR,
    product VARCHAR, purpose VARCHAR, contract_date DATE, disbursement_date DATE,
    principal DECIMAL(18,2), collateral_type VARCHAR, collateral_value DECIMAL(18,2));
"""
# The fact marts come from their dbt contracts (conftest.create_mart_tables).

def _create_schema(c: duckdb.DuckDBPyConnection) -> None:
    c.execute(SCHEMA)
    create_mart_tables(c, "fct_enterprise_month_end", "fct_loan_month_end", "fct_loan_defaults",
                       "guarantee_circles")


def firm(
    con: duckdb.DuckDBPyConnection,
    eid: str,
    *,
    established: date = date(2015, 1, 1),
    size: str = "small",
    status: str = "active",
    rating: str | None = "B",
    rating_year: int = 2024,
    vat_months: int = 24,
    monthly_revenue: int = 100_000,
    monthly_tax_paid: int = 5_000,
    tax_arrears: int = 0,
    utility_arrears: int = 0,
    late_bills: int = 0,
    outstanding: int = 0,
    abnormal: bool = False,
    dpd_max: int = 0,
    requested: int = 500_000,
    purpose: str = "working_capital",
    app_date: date = APP_DATE,
    features: bool = True,
    guarantor: str | None = None,
    **network: object,
) -> None:
    """A clean small firm applying on APP_DATE; keyword arguments change one thing at a time."""
    con.execute(
        "INSERT INTO staging.stg_registry__enterprises VALUES (?, ?, ?, ?, ?, '330102')",
        [eid, established, size, status, f"Firm {eid}"],
    )
    con.execute(
        "INSERT INTO staging.stg_core_banking__loan_applications VALUES (?,?,?,?,?,?,?,?)",
        [f"A-{eid}", eid, app_date, requested, 12, None, purpose, guarantor],
    )
    if rating:
        con.execute(
            "INSERT INTO staging.stg_tax__ratings VALUES (?, ?, ?, NULL)",
            [eid, rating_year, rating],
        )
    # VAT filings for the vat_months periods ending 2025-05 (the month before APP_DATE).
    for k in range(vat_months):
        y, m = divmod(2025 * 12 + 4 - k, 12)
        start = date(y, m + 1, 1)
        end = (date(y + (m + 1) // 12, (m + 1) % 12 + 1, 1)) - timedelta(days=1)
        con.execute(
            "INSERT INTO staging.stg_tax__filings VALUES (?,?,?,?,'vat',?,?,?,NULL)",
            [eid, start.strftime("%Y-%m"), start, end, monthly_revenue, monthly_tax_paid,
             monthly_tax_paid],
        )
    if features:
        revenue_12m = monthly_revenue * min(vat_months, 12) if vat_months else None
        con.execute(
            """INSERT INTO marts.fct_enterprise_month_end (enterprise_id, month_end, size_class,
                   status_at_month_end, abnormal_operation_currently_listed, revenue_12m,
                   tax_arrears, utility_arrears, utility_late_payments_6m, outstanding_principal,
                   is_default, dpd_max, dpd_max_12m, tax_rating)
               VALUES (?, DATE '2025-05-31', ?, ?, ?, ?, ?, ?, ?, ?, FALSE, ?, ?, ?)""",
            [eid, size, status, abnormal, revenue_12m, tax_arrears, utility_arrears,
             late_bills, outstanding, dpd_max, dpd_max, rating],
        )
        for col, value in network.items():  # network features of the row (issue 13)
            con.execute(
                f"UPDATE marts.fct_enterprise_month_end SET {col} = ? WHERE enterprise_id = ?",
                [value, eid],
            )


def event(con: duckdb.DuckDBPyConnection, eid: str, event_type: str, when: date) -> None:
    n = con.execute("SELECT count(*) FROM staging.stg_registry__events").fetchone()[0]
    con.execute(
        "INSERT INTO staging.stg_registry__events VALUES (?, ?, ?, ?, NULL, NULL)",
        [f"E{n}", eid, when, event_type],
    )


def loan(
    con: duckdb.DuckDBPyConnection,
    eid: str,
    *,
    contract: date = date(2023, 1, 10),
    collateral: str = "none",
    default_date: date | None = None,
) -> None:
    lid = f"L-{eid}-{contract.isoformat()}"
    con.execute(
        "INSERT INTO staging.stg_core_banking__loans VALUES (?,?,?,?,?,?,?,?,?)",
        [lid, eid, "working_capital_loan", "working_capital", contract, contract, 100_000,
         collateral, 500_000 if collateral != "none" else None],
    )
    con.execute(
        "INSERT INTO marts.fct_loan_month_end (loan_id, enterprise_id, month_end, "
        "outstanding_principal, dpd, is_default) VALUES (?, ?, DATE '2025-05-31', 0, 0, ?)",
        [lid, eid, default_date is not None],
    )
    if default_date is not None:
        con.execute(
            "INSERT INTO marts.fct_loan_defaults (loan_id, enterprise_id, default_date) "
            "VALUES (?, ?, ?)", [lid, eid, default_date],
        )


@pytest.fixture
def con():
    c = duckdb.connect()
    _create_schema(c)
    yield c
    c.close()


def screen(con: duckdb.DuckDBPyConnection, as_of: date = AS_OF) -> dict[str, dict]:
    build_screening(con, as_of)
    cur = con.execute("SELECT * FROM marts.application_screening")
    cols = [d[0] for d in cur.description]
    return {r[0]: dict(zip(cols, r, strict=True)) for r in cur.fetchall()}


# ---------------------------------------------------------------- rules file


def test_rules_file_loads_and_is_versioned():
    rules = load_rules()
    assert rules.version
    assert [r.id for r in rules.hard_declines][:6] == [
        "HD01_dishonest_debtor", "HD02_enforcement", "HD03_registry_status",
        "HD04_tax_rating_d", "HD05_default_with_bank", "HD06_abnormal_operation",
    ]
    assert rules.products[-1].product == "working_capital_loan"


def test_rules_file_errors_name_the_problem(tmp_path):
    bad = Path(load_rules.__globals__["RULES_PATH"]).read_text().replace(
        "fact: enforcement_events", "fact: no_such_fact"
    )
    path = tmp_path / "rules.yml"
    path.write_text(bad)
    # The message names the file, the rule, the field path and the problem.
    with pytest.raises(RulesError) as exc:
        load_rules(path)
    assert str(exc.value) == (
        f"{path}: hard_declines/HD02_enforcement: when: field 'fact': "
        "unknown fact 'no_such_fact'"
    )


# ---------------------------------------------------------------- the clean firm


def test_clean_firm_is_approved_with_exact_limit(con):
    firm(con, "OK")
    row = screen(con)["A-OK"]
    assert row["decision"] == "approve"
    assert row["rule_ids"] == []
    assert row["reasons"] == ["Passed every access rule"]
    # rating B, no arrears, 24 VAT months -> tax credit loan
    assert (row["recommended_product"], row["product_rule_id"]) == (
        "tax_credit_loan", "PR03_tax_credit")
    # max(0.25 * 1,200,000 = 300,000 ; 8 * 60,000 = 480,000) - 0, under the 500,000 request
    assert row["recommended_limit"] == Decimal("480000.00")
    assert row["guarantee_recommended"] is False
    assert row["rules_version"] == load_rules().version


# ---------------------------------------------------------------- hard declines


@pytest.mark.parametrize("event_type,rule", [
    ("dishonest_debtor_listed", "HD01_dishonest_debtor"),
    ("enforcement_listed", "HD02_enforcement"),
])
def test_court_listings_decline_only_when_dated_by_the_application(con, event_type, rule):
    firm(con, "BEFORE")
    event(con, "BEFORE", event_type, APP_DATE)  # same day counts
    firm(con, "AFTER")
    event(con, "AFTER", event_type, APP_DATE + timedelta(days=1))
    rows = screen(con)
    assert rows["A-BEFORE"]["decision"] == "decline"
    assert rule in rows["A-BEFORE"]["rule_ids"]
    assert rows["A-BEFORE"]["recommended_limit"] == 0
    assert rows["A-BEFORE"]["recommended_product"] is None
    assert rows["A-BEFORE"]["guarantee_recommended"] is False
    assert rows["A-AFTER"]["decision"] == "approve"


def test_registry_status_not_active_declines(con):
    firm(con, "SUSP", status="suspended")
    firm(con, "ACT", status="active")
    rows = screen(con)
    assert rows["A-SUSP"]["decision"] == "decline"
    # (the signal catalog may also flag the status: RF07 then follows the decline reasons)
    assert rows["A-SUSP"]["rule_ids"][0] == "HD03_registry_status"
    assert rows["A-SUSP"]["reasons"][0] == "Registry status is suspended, not active"
    assert rows["A-ACT"]["decision"] == "approve"


def test_tax_rating_d_declines_only_from_a_previous_year(con):
    firm(con, "D24", rating="D", rating_year=2024)
    # a D for the application's own year is not known yet; the 2024 B is the latest known
    firm(con, "D25", rating="D", rating_year=2025)
    con.execute("INSERT INTO staging.stg_tax__ratings VALUES ('D25', 2024, 'B', NULL)")
    rows = screen(con)
    assert rows["A-D24"]["decision"] == "decline"
    assert "HD04_tax_rating_d" in rows["A-D24"]["rule_ids"]
    assert rows["A-D25"]["decision"] == "approve"


def test_default_with_the_bank_declines_only_when_dated_by_the_application(con):
    firm(con, "DEF")
    loan(con, "DEF", default_date=date(2025, 3, 1))
    firm(con, "LATE")
    loan(con, "LATE", default_date=APP_DATE + timedelta(days=1))
    firm(con, "OK")
    loan(con, "OK")
    rows = screen(con)
    assert rows["A-DEF"]["decision"] == "decline"
    assert rows["A-DEF"]["rule_ids"] == ["HD05_default_with_bank"]
    assert rows["A-DEF"]["reasons"] == ["Already in default with the bank (since 2025-03-01)"]
    assert "HD05_default_with_bank" not in rows["A-LATE"]["rule_ids"]
    assert rows["A-LATE"]["decision"] != "decline"
    assert rows["A-OK"]["decision"] == "approve"


def test_abnormal_operation_listing_declines(con):
    firm(con, "ABN", abnormal=True)
    firm(con, "OK")
    rows = screen(con)
    assert rows["A-ABN"]["decision"] == "decline"
    assert "HD06_abnormal_operation" in rows["A-ABN"]["rule_ids"]
    assert rows["A-OK"]["decision"] == "approve"


def test_feature_row_of_the_application_month_is_not_used(con):
    """Only the latest month end strictly before the application date counts."""
    firm(con, "X", app_date=date(2025, 5, 31))
    rows = screen(con)
    # the only feature row is 2025-05-31 = the application date: no features known
    assert rows["A-X"]["feature_month_end"] is None
    assert "RF05_no_revenue_history" in rows["A-X"]["rule_ids"]


# ---------------------------------------------------------------- refers


def test_short_operating_history_refers(con):
    firm(con, "NEW", established=date(2023, 6, 16))  # 1 year 11 months
    firm(con, "TWO", established=date(2023, 6, 15))  # exactly 2 years
    rows = screen(con)
    assert rows["A-NEW"]["decision"] == "refer"
    assert rows["A-NEW"]["rule_ids"] == ["RF01_short_history"]
    assert rows["A-TWO"]["decision"] == "approve"


def test_tax_rating_c_and_arrears_refer(con):
    firm(con, "C", rating="C")
    firm(con, "TAX", tax_arrears=5_000)
    firm(con, "UTIL", late_bills=2)
    # tax arrears at the limit, one late bill, and the month's bill not yet due: no refer
    firm(con, "SMALLARR", tax_arrears=1_000, late_bills=1, utility_arrears=80_000)
    rows = screen(con)
    assert "RF02_tax_rating_c" in rows["A-C"]["rule_ids"]
    assert rows["A-TAX"]["decision"] == "refer"
    assert "RF03_tax_arrears" in rows["A-TAX"]["rule_ids"]
    assert rows["A-TAX"]["reasons"][0].startswith("Tax arrears of 5000.00 CNY at 2025-05-31")
    assert rows["A-UTIL"]["rule_ids"] == ["RF04_utility_arrears"]
    assert "RF03_tax_arrears" not in rows["A-SMALLARR"]["rule_ids"]
    assert "RF04_utility_arrears" not in rows["A-SMALLARR"]["rule_ids"]


def test_decline_outranks_refer_and_lists_every_reason(con):
    firm(con, "BOTH", rating="C", status="revoked")
    row = screen(con)["A-BOTH"]
    assert row["decision"] == "decline"
    assert row["rule_ids"][0] == "HD03_registry_status"
    assert "RF02_tax_rating_c" in row["rule_ids"]
    assert len(row["reasons"]) == len(row["rule_ids"])


def test_amber_early_warning_signals_refer_via_the_signal_catalog(con):
    """Signals and tiers come from assets/signals/catalog.yml; screening only refers on them."""
    from assets.signals.catalog import load_catalog

    catalog = load_catalog()
    overdue = catalog.signal("overdue_now")  # high severity: one high signal is amber
    threshold = next(c.threshold for c in overdue.conditions if c.feature == "dpd_max")
    firm(con, "LATE", dpd_max=threshold + 1)
    firm(con, "EDGE", dpd_max=threshold)
    rows = screen(con)
    late = rows["A-LATE"]
    assert late["decision"] == "refer"
    assert "RF07_early_warning_signals" in late["rule_ids"]
    assert late["early_warning_tier"] in ("amber", "red")
    assert "overdue_now" in late["early_warning_signals"]
    assert "overdue_now" not in rows["A-EDGE"]["early_warning_signals"]


# ---------------------------------------------------------------- products


def test_product_rules_in_priority_order(con):
    firm(con, "EQ", purpose="equipment_purchase")
    loan(con, "EQ", collateral="real_estate")  # equipment purpose still wins
    firm(con, "MORT")
    loan(con, "MORT", collateral="real_estate")
    firm(con, "TAXC")  # rating B, no arrears, 24 months of VAT
    firm(con, "SHORTTAX", vat_months=23)  # < 24 months of filings -> guarantee fund
    firm(con, "MED", size="medium", rating="M")  # no collateral, not micro/small
    firm(con, "MICRO", size="micro", rating="A", tax_arrears=200)  # arrears below refer level
    rows = screen(con)

    def product(app: str) -> tuple[str, str]:
        return rows[app]["recommended_product"], rows[app]["product_rule_id"]

    assert product("A-EQ") == ("equipment_loan", "PR01_equipment")
    assert product("A-MORT") == ("mortgage_loan", "PR02_mortgage")
    assert product("A-TAXC") == ("tax_credit_loan", "PR03_tax_credit")
    assert product("A-SHORTTAX") == ("guarantee_fund_loan", "PR04_guarantee_fund")
    assert product("A-MED") == ("working_capital_loan", "PR05_working_capital")
    assert product("A-MICRO") == ("guarantee_fund_loan", "PR04_guarantee_fund")


def test_collateral_pledged_after_the_application_does_not_count(con):
    firm(con, "LATER")
    loan(con, "LATER", contract=APP_DATE + timedelta(days=3), collateral="real_estate")
    assert screen(con)["A-LATER"]["recommended_product"] == "tax_credit_loan"


# ---------------------------------------------------------------- limits


def test_limit_revenue_based_minus_outstanding_rounded_down(con):
    # revenue 12m = 12 * 333,333 = 3,999,996 -> 0.25x = 999,999; tax 8 * 12 * 1,000 = 96,000
    # minus outstanding 123,456 -> 876,543 -> rounded down to 870,000 (request 2,000,000)
    firm(con, "REV", size="medium", rating="M", monthly_revenue=333_333,
         monthly_tax_paid=1_000, outstanding=123_456, requested=2_000_000)
    row = screen(con)["A-REV"]
    assert row["recommended_product"] == "working_capital_loan"
    assert row["recommended_limit"] == Decimal("870000.00")


def test_limit_capped_by_request_and_product_cap(con):
    firm(con, "REQ", requested=255_555)  # capacity 480,000 -> request 255,555 -> 250,000
    # tax credit loan: capacity 8 * 12 * 50,000 = 4,800,000, request 5,000,000, cap 3,000,000
    firm(con, "CAP", monthly_tax_paid=50_000, requested=5_000_000)
    rows = screen(con)
    assert rows["A-REQ"]["recommended_limit"] == Decimal("250000.00")
    assert rows["A-CAP"]["recommended_product"] == "tax_credit_loan"
    assert rows["A-CAP"]["recommended_limit"] == Decimal("3000000.00")


def test_no_capacity_left_refers_with_zero_limit(con):
    firm(con, "FULL", outstanding=600_000)  # capacity 480,000 - 600,000 < 0
    row = screen(con)["A-FULL"]
    assert row["recommended_limit"] == Decimal("0.00")
    assert row["decision"] == "refer"
    assert row["rule_ids"] == ["RF06_no_limit_capacity"]


# ---------------------------------------------------------------- guarantee


def test_guarantee_recommendation(con):
    firm(con, "GF", vat_months=23)  # guarantee fund loan -> guarantee
    # medium firm: working capital loan, no guarantee whatever the limit
    firm(con, "MED", size="medium", rating="M", monthly_revenue=500_000, requested=1_500_000)
    # small firm, tax credit loan, no collateral, limit 1,440,000 > 1,000,000 -> guarantee
    firm(con, "BIG", monthly_tax_paid=15_000, requested=2_000_000)
    # same with real-estate collateral -> mortgage, no guarantee
    firm(con, "SEC", monthly_tax_paid=15_000, requested=2_000_000)
    loan(con, "SEC", collateral="real_estate")
    rows = screen(con)
    assert rows["A-GF"]["guarantee_recommended"] is True
    assert rows["A-MED"]["recommended_limit"] == Decimal("1500000.00")
    assert rows["A-MED"]["guarantee_recommended"] is False
    assert rows["A-BIG"]["recommended_limit"] == Decimal("1440000.00")
    assert rows["A-BIG"]["guarantee_recommended"] is True
    assert rows["A-SEC"]["recommended_product"] == "mortgage_loan"
    assert rows["A-SEC"]["guarantee_recommended"] is False


# ---------------------------------------------------------------- point in time


def test_applications_after_as_of_are_not_screened(con):
    firm(con, "FUT", app_date=date(2025, 7, 2))
    assert "A-FUT" not in screen(con)


def test_rebuilding_as_of_an_earlier_date_uses_only_what_was_known(con):
    firm(con, "PIT")
    event(con, "PIT", "dishonest_debtor_listed", date(2025, 6, 20))
    assert screen(con, AS_OF)["A-PIT"]["decision"] == "approve"


# ---------------------------------------------------------------- Dagster


def test_asset_materializes_with_checks(tmp_path):
    from dagster import materialize

    from assets.core.resources import RiskWarehouse
    from assets.screening import screening_assets, screening_checks

    path = tmp_path / "warehouse.duckdb"
    c = duckdb.connect(str(path))
    _create_schema(c)
    firm(c, "OK")
    firm(c, "BAD", status="revoked")
    firm(c, "NEW", established=date(2024, 1, 1))
    c.close()
    result = materialize(
        [*screening_assets, *screening_checks],
        resources={"warehouse": RiskWarehouse(
            warehouse=str(path), landing_dir=str(tmp_path), as_of="2025-06-30")},
    )
    assert result.success
    (mat,) = result.get_asset_materialization_events()
    meta = mat.materialization.metadata
    assert meta["dagster/row_count"].value == 3
    assert (meta["approve"].value, meta["refer"].value, meta["decline"].value) == (1, 1, 1)
    checks = {e.asset_check_key.name: e for e in result.get_asset_check_evaluations()}
    assert checks["no_approval_with_hard_decline_hit"].passed
    assert checks["limits_within_request"].passed
    # 1 of 3 declined (33%) is above the 25% per-rule warning share
    assert not checks["decline_share_per_reason"].passed



def test_decline_audit_reads_the_stored_facts_and_finds_an_approved_hard_decline(con):
    """The blocking check re-applies the hard-decline rules to the facts the screening stored
    (not to its decisions): a decline turned into an approval, or dropped, is caught."""
    from assets.screening.rules import FACTS_TABLE, decline_audit_sql

    firm(con, "OK")
    firm(con, "BAD", status="revoked")
    rows = screen(con)
    stored = con.execute(f"SELECT application_id, registry_status FROM {FACTS_TABLE} "
                         "ORDER BY 1").fetchall()
    assert stored == [("A-BAD", "revoked"), ("A-OK", "active")]
    audit = decline_audit_sql(load_rules())
    assert rows["A-BAD"]["decision"] == "decline" and con.execute(audit).fetchall() == []
    con.execute("UPDATE marts.application_screening SET decision = 'approve' "
                "WHERE application_id = 'A-BAD'")
    assert con.execute(audit).fetchall() == [("A-BAD", "approve")]
    con.execute("DELETE FROM marts.application_screening WHERE application_id = 'A-BAD'")
    assert con.execute(audit).fetchall() == [("A-BAD", None)]


def test_facts_and_decisions_are_written_together_or_not_at_all(con, monkeypatch):
    """A screening that fails after deriving the facts leaves the previous facts and decisions
    as they were, so the audit never compares one run's facts with another's decisions."""
    import assets.screening.rules as rules_module
    from assets.screening.rules import FACTS_TABLE

    firm(con, "OK")
    screen(con)
    con.execute("INSERT INTO staging.stg_core_banking__loan_applications SELECT * REPLACE "
                "('A-LATE' AS application_id) FROM staging.stg_core_banking__loan_applications")
    monkeypatch.setattr(rules_module, "screening_sql", lambda *a, **k: "SELECT no_such_column")
    with pytest.raises(duckdb.Error):
        build_screening(con, AS_OF)
    assert con.execute(f"SELECT application_id FROM {FACTS_TABLE}").fetchall() == [("A-OK",)]
    assert con.execute("SELECT application_id FROM marts.application_screening"
                       ).fetchall() == [("A-OK",)]

# ---------------------------------------------------------------- credit enhancement (issue 13)


def test_government_fund_cover_recommended_within_the_funds_rules(con):
    firm(con, "FS", rating="M")  # small firm, guarantee fund loan: covered for 80% of the limit
    firm(con, "FM", size="medium", rating="M")  # medium: not eligible
    firm(con, "FC", rating="M")  # 1,800,000 CNY of open fund cover: 380,000 more is over the cap
    loan(con, "FC")
    con.execute(
        "INSERT INTO staging.stg_core_banking__guarantees VALUES "
        "('G1', 'L-FC-2023-01-10', 'government_fund', 'GF330102', 1800000, '2023-01-10', NULL)"
    )
    firm(con, "FD", rating="M")  # declined: never covered
    event(con, "FD", "dishonest_debtor_listed", date(2025, 1, 5))
    rules = load_rules()
    ratio = Decimal(str(rules.enhancement.government_fund.cover_ratio))
    rows = screen(con)
    fs = rows["A-FS"]
    assert fs["recommended_product"] == "guarantee_fund_loan"
    assert fs["fund_cover_recommended"] is True and fs["fund_code"] == "GF330102"
    unit = rules.rounding_unit  # cover is rounded down like the limit
    assert fs["fund_cover_amount"] == (fs["recommended_limit"] * ratio // unit) * unit
    assert fs["fund_cover_amount"] > 0 and "GF330102" in fs["fund_cover_reason"]
    assert rows["A-FM"]["fund_cover_recommended"] is False
    assert rows["A-FM"]["fund_cover_amount"] == 0
    assert rows["A-FC"]["recommended_limit"] == fs["recommended_limit"]
    assert rows["A-FC"]["fund_cover_recommended"] is False
    assert rows["A-FD"]["decision"] == "decline"
    assert rows["A-FD"]["fund_cover_recommended"] is False


def test_offered_guarantor_rejected_for_each_reason(con):
    firm(con, "GOOD")
    firm(con, "GDEF")
    loan(con, "GDEF", default_date=date(2025, 3, 1))
    firm(con, "GRED", dpd_max=45, dishonest_debtor_listed_12m=1)  # two high signals: red
    firm(con, "GEXT", guarantees_given=1_500_000, guarantees_given_to_revenue_12m=1.25)
    firm(con, "GCIR", guarantee_circle_id="CIRC9", guarantee_circle_members=2)
    firm(con, "GMUT")
    loan(con, "GMUT")
    for tag in ("GOOD", "GDEF", "GRED", "GEXT", "GCIR", "GMUT"):
        firm(con, f"P{tag}", guarantor=tag,
             **({"guarantee_circle_id": "CIRC9", "guarantee_circle_members": 2}
                if tag == "GCIR" else {}))
    firm(con, "PNONE")
    # the applicant PGMUT already guarantees GMUT's loan: a guarantee back closes a circle
    con.execute(
        "INSERT INTO staging.stg_core_banking__guarantees VALUES "
        "('G2', 'L-GMUT-2023-01-10', 'enterprise', 'PGMUT', 50000, '2023-01-10', NULL)"
    )
    rows = screen(con)
    assert rows["A-PGOOD"]["guarantor_acceptable"] is True
    assert rows["A-PGOOD"]["guarantor_rule_ids"] == []
    assert rows["A-PNONE"]["guarantor_acceptable"] is None
    expected = {
        "GDEF": "GR01_guarantor_in_default",
        "GRED": "GR02_guarantor_red",
        "GEXT": "GR03_guarantor_over_extended",
        "GCIR": "GR04_guarantor_in_own_circle",
        "GMUT": "GR04_guarantor_in_own_circle",
    }
    for tag, rule in expected.items():
        row = rows[f"A-P{tag}"]
        assert row["guarantor_acceptable"] is False, tag
        assert row["guarantor_rule_ids"] == [rule], (tag, row["guarantor_rule_ids"])
        assert f"Firm {tag} ({tag})" in row["guarantor_reasons"][0]
    assert "1.25x" in rows["A-PGEXT"]["guarantor_reasons"][0]


def test_rejected_guarantor_refers_only_when_the_limit_relies_on_it(con):
    """RF09: a rejected guarantor matters when the limit relies on a guarantee the fund
    cannot give instead; otherwise the decision stands and the rejection is only shown."""
    firm(con, "GBAD")
    loan(con, "GBAD", default_date=date(2025, 3, 1))  # GR01: in default
    firm(con, "GOK")
    big = {"monthly_revenue": 500_000, "monthly_tax_paid": 20_000, "requested": 2_000_000}
    firm(con, "BIGX", guarantor="GBAD", **big)  # limit 1,920,000 > 1,000,000: guarantee needed
    firm(con, "BIGOK", guarantor="GOK", **big)  # the same with an acceptable guarantor
    firm(con, "SMALLX", guarantor="GBAD")  # limit 480,000: no guarantee needed
    firm(con, "FUNDX", guarantor="GBAD", rating="M")  # guarantee fund loan: the fund covers
    rows = screen(con)
    bigx = rows["A-BIGX"]
    assert bigx["recommended_limit"] > 1_000_000 and bigx["guarantee_recommended"] is True
    assert bigx["decision"] == "refer" and "RF09_offered_guarantor_rejected" in bigx["rule_ids"]
    reason = bigx["reasons"][bigx["rule_ids"].index("RF09_offered_guarantor_rejected")]
    assert "Firm GBAD (GBAD)" in reason and "GR01_guarantor_in_default" in reason
    assert rows["A-BIGOK"]["decision"] == "approve"
    assert rows["A-BIGOK"]["guarantor_acceptable"] is True
    small = rows["A-SMALLX"]
    assert small["guarantee_recommended"] is False and small["guarantor_acceptable"] is False
    assert small["decision"] == "approve"
    fund = rows["A-FUNDX"]
    assert fund["fund_cover_recommended"] is True and fund["guarantor_acceptable"] is False
    assert "RF09_offered_guarantor_rejected" not in fund["rule_ids"]


def test_enhancement_facts_are_for_refers_only():
    data = yaml.safe_load((ROOT / "assets/screening/access_rules.yml").read_text())
    data["guarantee"]["when"] = {"fact": "guarantor_rejected", "op": "is_true"}
    with pytest.raises(RulesError, match="guarantee.*guarantor_rejected.*refers only"):
        parse_rules(data)


def _circle(con, circle_id: str, members: list[str]) -> None:
    con.execute(
        "INSERT INTO marts.guarantee_circles (month_end, circle_id, members, member_ids) "
        "VALUES (DATE '2025-05-31', ?, ?, ?)",
        [circle_id, len(members), members],
    )


def test_refer_when_a_circle_member_is_in_trouble(con):
    circle = {"guarantee_circle_id": "TC", "guarantee_circle_members": 3}
    firm(con, "T1", **circle, circle_members_in_default=1)
    firm(con, "T2", **circle, dpd_max=120, is_default=True, features=True)
    firm(con, "T3", **circle)
    _circle(con, "TC", ["T1", "T2", "T3"])
    healthy = {"guarantee_circle_id": "HC", "guarantee_circle_members": 2}
    firm(con, "H1", **healthy, dpd_max=20)  # late but not over 30 days: no refer
    firm(con, "H2", **healthy)
    _circle(con, "HC", ["H1", "H2"])
    rows = screen(con)
    assert "RF08_guarantee_circle_in_trouble" in rows["A-T1"]["rule_ids"]
    reason = rows["A-T1"]["reasons"][rows["A-T1"]["rule_ids"].index(
        "RF08_guarantee_circle_in_trouble")]
    assert "Firm T2 (T2)" in reason and "3 firms" in reason
    # T3 sees T2 past due at the month end even before its own row counts the default
    assert "RF08_guarantee_circle_in_trouble" in rows["A-T3"]["rule_ids"]
    assert "RF08_guarantee_circle_in_trouble" not in rows["A-H2"]["rule_ids"]
    assert rows["A-H2"]["decision"] == "approve"


def test_every_screening_rule_has_chinese_text_with_the_same_placeholders():
    rules = load_rules()
    for rule in rules.all_rules:
        assert rule.reason_zh, rule.id
    assert rules.enhancement.government_fund.reason_zh
    data = yaml.safe_load((ROOT / "assets/screening/access_rules.yml").read_text())
    data["refers"][0]["reason_zh"] = "经营{years}年"
    with pytest.raises(RulesError, match="reason_zh.*placeholders"):
        parse_rules(data)


def test_a_night_rescreens_from_the_first_date_its_changes_reach(tmp_path: Path) -> None:
    """`rescreen_from`: after an incremental dbt step over the facts of the previous as-of
    date (same fingerprint), the first application date to derive again is the first day of
    the first month the step recomputed, the day after the last month end before D, or the
    day after the previous D, whichever is earliest; anything else derives every application."""
    from assets.core.dbt_project import write_run_context
    from assets.refresh_plan import NOTHING
    from assets.screening.rules import FACTS_BASE, FACTS_TABLE, rescreen_from

    def first(d: date, *, recompute: date | None = NOTHING,
              network: date | None = None, previous: date | None = date(2026, 11, 27),
              base: tuple = (date(2026, 11, 27), "fp"), fingerprint: str = "fp") -> date | None:
        wh = tmp_path / "w.duckdb"
        wh.unlink(missing_ok=True)
        write_run_context(wh, d, recompute, ["e1"], recompute if network is None else network,
                          ["e1", "e2"], previous_as_of=previous)
        with duckdb.connect(str(wh)) as c:
            c.execute(f"CREATE TABLE {FACTS_TABLE} AS SELECT 'a1' AS application_id")
            c.execute(f"CREATE TABLE {FACTS_BASE} AS SELECT CAST(? AS DATE) AS as_of_date, "
                      "CAST(? AS VARCHAR) AS fingerprint", list(base))
            return rescreen_from(c, d, fingerprint)

    # no month end recomputed: rows dated after the last month end before D (a late
    # delivery of November 5 recomputes no month end but reaches an application of then)
    assert first(date(2026, 11, 28)) == date(2026, 11, 1)
    # ... or after the previous D, if that is earlier
    assert first(date(2026, 12, 3), previous=date(2026, 11, 20),
                 base=(date(2026, 11, 20), "fp")) == date(2026, 11, 21)
    # D crosses a month end: from the day after the last month end before D at the latest
    assert first(date(2026, 12, 2), recompute=date(2026, 11, 30)) == date(2026, 11, 1)
    # a late correction recomputed from May: from May 1
    assert first(date(2026, 11, 28), recompute=date(2026, 5, 31)) == date(2026, 5, 1)
    # what derives every application
    assert first(date(2026, 11, 28), recompute=None) is None  # a full dbt step
    assert first(date(2026, 11, 28), network=date.min) is None  # a new champion
    assert first(date(2026, 11, 28), recompute=date(1, 1, 31)) is None  # all months
    assert first(date(2026, 11, 28), fingerprint="other") is None  # rules, catalog
    assert first(date(2026, 11, 28), base=(date(2026, 11, 26), "fp")) is None
    assert first(date(2026, 11, 28), previous=None) is None
