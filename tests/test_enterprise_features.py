"""Enterprise month-end features (marts.fct_enterprise_month_end) on hand-made landing data.

A few enterprises over 26 months (2023-05 .. 2025-06) are written straight into raw tables;
dbt builds the features as of 2025-06-30 and, on a copy, as of 2025-03-31. Exact values are
asserted: year-on-year revenue, Chinese New Year months, missing VAT filings, tax arrears and
rating, utility arrears honouring paid_date <= month end, late bills, event windows, loan-fund
diversion, borrowing burden, the industry index, and point in time.
"""

from __future__ import annotations

import shutil
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pytest

from assets.contract import TABLES, raw_table_ddl, uscc_check_char
from assets.core.dbt_project import run_dbt


def uscc(n: int) -> str:
    first17 = f"91310000MA1FL{n:04d}"
    return first17 + uscc_check_char(first17)


E1, E2, E3, E4, E5 = (uscc(i) for i in (1, 2, 3, 4, 5))


def months(start: str = "2023-05", end: str = "2025-06") -> list[str]:
    y, m = map(int, start.split("-"))
    out = []
    while f"{y:04d}-{m:02d}" <= end:
        out.append(f"{y:04d}-{m:02d}")
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out


def period_end(p: str) -> date:
    y, m = map(int, p.split("-"))
    nxt = date(y + (m == 12), m % 12 + 1, 1)
    return nxt - timedelta(days=1)


def base_revenue(p: str) -> int:
    """Flat 100k a month with a Chinese New Year dip (Jan and Feb at 50k)."""
    return 50_000 if p[5:] in ("01", "02") else 100_000


def build_landing(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("CREATE SCHEMA IF NOT EXISTS raw")
    for t in TABLES.values():
        con.execute(raw_table_ddl(t))

    def ins(table: str, rows: list[tuple]) -> None:
        cols = TABLES[table].column_names
        ph = ", ".join("?" for _ in cols)
        con.executemany(
            f"INSERT INTO raw.{table} ({', '.join(cols)}) VALUES ({ph})", [tuple(r) for r in rows]
        )

    ins("enterprises", [
        (E1, "Alpha Mfg", "C", "310000", date(2015, 1, 1), 1_000_000, 50, "small", "active",
         "Zhang Wei", "110101198001011234"),
        (E2, "Beta Mfg", "C", "310000", date(2016, 1, 1), 1_000_000, 30, "small", "suspended",
         "Li Na", "110101198502023456"),
        (E3, "Gamma Build", "E", "310000", date(2017, 1, 1), 500_000, 10, "micro", "revoked",
         "Wang Fang", "110101199003037890"),
        (E4, "Delta Mfg", "C", "310000", date(2018, 1, 1), 800_000, 20, "micro", "active",
         "Liu Yang", "11010119920404567X"),
        (E5, "Epsilon Retail", "G", "310000", date(2018, 1, 1), 800_000, 20, "micro", "active",
         "Chen Jie", "110101199305056789"),
    ])

    tax = []
    for p in months():
        rev = base_revenue(p)
        # E1: -20% from 2025-01, no VAT filing for 2025-05, stops paying tax from 2025-04.
        if not (p == "2025-05"):
            r1 = rev * 0.8 if p >= "2025-01" else rev
            paid = 0 if p >= "2025-04" else r1 * 0.1
            tax.append((E1, p, "vat", r1, r1 * 0.1, paid, period_end(p) + timedelta(days=15)))
        # E2: flat with the CNY dip every year.
        tax.append((E2, p, "vat", rev, rev * 0.1, rev * 0.1, None))
        # E4: -50% from 2025-01 (a sector peer in decline).
        r4 = rev * 0.5 if p >= "2025-01" else rev
        tax.append((E4, p, "vat", r4, r4 * 0.1, r4 * 0.1, None))
        # E5: flat, the New Year dip moves with the lunar calendar (Feb 2024, Jan 2025)
        r5 = 50_000 if p in ("2024-02", "2025-01") else 100_000
        tax.append((E5, p, "vat", r5, r5 * 0.1, r5 * 0.1, None))
    tax.append((E1, "2025-03", "cit", 0, 5000, 3000, date(2025, 4, 20)))
    # E2's quarterly CIT: a profit in 2024-06 and 2024-09, then two loss quarters (nothing
    # payable), no filing for 2025-06 yet; a loss quarter after D is never read.
    for p, payable in (("2024-06", 3000), ("2024-09", 2500), ("2024-12", 0), ("2025-03", 0),
                       ("2025-09", 0)):
        tax.append((E2, p, "cit", 300_000, payable, payable, None))
    # a period after D: never used when building as of 2025-06-30
    tax.append((E1, "2025-07", "vat", 1, 999_999, 0, None))
    ins("tax_filings", tax)
    ins("tax_ratings", [(E1, 2022, "A"), (E1, 2023, "A"), (E1, 2024, "B"), (E1, 2025, "D")])

    bills = []
    for p in months():
        pe = period_end(p)
        cons = 500 if p[5:] in ("01", "02") else 1000
        c1 = cons * 0.7 if p >= "2025-01" else cons
        paid_date = {"2025-04": date(2025, 6, 15), "2025-05": date(2025, 7, 5),
                     "2025-06": None}.get(p, pe + timedelta(days=10))
        bills.append((E1, p, "electricity", c1, 1000, 1000 if paid_date else 0, paid_date))
        bills.append((E2, p, "electricity", cons, 1000, 1000, pe + timedelta(days=10)))
    ins("utility_bills", bills)

    ins("registry_events", [
        ("ev01", E3, date(2024, 6, 15), "equity_pledge", None, None),
        ("ev02", E3, date(2024, 8, 1), "legal_rep_change", None, None),
        ("ev03", E3, date(2024, 9, 1), "abnormal_operation_listed", None, None),
        ("ev04", E3, date(2024, 11, 15), "abnormal_operation_removed", None, None),
        ("ev05", E3, date(2025, 2, 15), "enforcement_listed", 20_000, None),
        ("ev06", E3, date(2025, 4, 30), "admin_penalty", 1_000, None),
        ("ev07", E3, date(2025, 5, 10), "court_judgment_defendant", 50_000, None),
        ("ev08", E3, date(2025, 6, 1), "abnormal_operation_listed", None, None),
        ("ev09", E3, date(2025, 6, 30), "shareholder_change", None, None),
        ("ev10", E3, date(2025, 7, 5), "dishonest_debtor_listed", None, None),  # after D
        ("ev11", E3, date(2025, 7, 10), "status_change", None, "status changed to revoked"),
        ("ev12", E2, date(2025, 3, 10), "status_change", None, "存续→停业"),
    ])

    loan = dict(branch_id="B01", product="working_capital_loan", purpose="working_capital",
                annual_rate=0.05, collateral_type="none", collateral_value=None,
                guarantee_type="none", guarantee_ratio=0, officer_id=None)

    def loan_row(loan_id, ent, contract, disb, maturity, principal, method):
        d = dict(loan, loan_id=loan_id, enterprise_id=ent, contract_date=contract,
                 disbursement_date=disb, maturity_date=maturity, principal=principal,
                 repayment_method=method)
        return tuple(d[c] for c in TABLES["loans"].column_names)

    ins("loans", [
        loan_row("L1", E1, date(2024, 6, 25), date(2024, 7, 1), date(2026, 7, 1), 1_200_000,
                 "interest_only_bullet"),
        loan_row("L3", E3, date(2025, 1, 5), date(2025, 1, 10), date(2025, 11, 10), 1_000_000,
                 "equal_installment"),
        # E4: a bullet loan maturing 2025-09-15, 168 days after 2025-03-31, 199 after Feb.
        loan_row("L4", E4, date(2024, 9, 10), date(2024, 9, 15), date(2025, 9, 15), 400_000,
                 "interest_only_bullet"),
    ])
    sched = [("L1", 1, date(2026, 7, 1), 1_200_000, 60_000),
             ("L4", 1, date(2025, 9, 15), 400_000, 20_000)]
    pays = []
    for i in range(10):
        due = date(2025, 2 + i, 10)
        sched.append(("L3", i + 1, due, 100_000, 5_000))
        if due <= date(2025, 5, 10):  # Feb..May paid on the due date; June onwards unpaid
            pays.append((f"P3{i}", "L3", due, 105_000))
    ins("repayment_schedule", sched)
    ins("repayments", pays)
    ins("fund_flows", [
        ("F1", "L3", date(2025, 1, 15), 500_000, "supplier", None),
        ("F2", "L3", date(2025, 2, 20), 200_000, "securities", None),
        ("F3", "L3", date(2025, 3, 5), 100_000, "related_party", None),
        ("F4", "L3", date(2025, 5, 1), 50_000, "cash", None),  # day 111: outside 90 days
        ("F5", "L1", date(2024, 7, 20), 300_000, "supplier", None),
    ])


def build_features(tmp: Path, warehouse: Path, as_of: str) -> None:
    run_dbt(
        ["build", "--select", "+fct_enterprise_month_end"],
        warehouse=warehouse,
        dbt_vars={"as_of_date": as_of},
        target_path=tmp / "target",
    )


def load(warehouse: Path) -> dict[tuple[str, date], dict]:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        cur = con.execute("SELECT * FROM marts.fct_enterprise_month_end")
        names = [d[0] for d in cur.description]
        rows = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
    finally:
        con.close()
    return {(r["enterprise_id"], r["month_end"]): r for r in rows}


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory) -> Path:
    """The module's warehouse, built as of 2025-06-30 by `built` (the path dbt parsed)."""
    return tmp_path_factory.mktemp("ef") / "w.duckdb"


@pytest.fixture(scope="module")
def built(warehouse):
    tmp, wh = warehouse.parent, warehouse
    con = duckdb.connect(str(wh))
    build_landing(con)
    con.close()
    landed = shutil.copy(wh, tmp / "landed.duckdb")
    build_features(tmp, wh, "2025-03-31")
    early = load(wh)
    shutil.copy(landed, wh)  # the same path again: dbt keeps its parse of the first build
    build_features(tmp, wh, "2025-06-30")
    return load(wh), early


@pytest.fixture(scope="module")
def f(built):
    return built[0]


def row(f, ent, y, m):
    return f[(ent, period_end(f"{y:04d}-{m:02d}"))]


def approx(x):
    return pytest.approx(x, rel=1e-9, abs=1e-9)


def test_grain_and_range(f):
    assert max(me for _, me in f) == date(2025, 6, 30)
    for ent in (E1, E2, E4):
        ms = sorted(me for e, me in f if e == ent)
        assert ms[0] == date(2023, 5, 31) and len(ms) == 26
    # E3's first data is its first event (2024-06-15)
    assert min(me for e, me in f if e == E3) == date(2024, 6, 30)


def test_revenue_windows_and_yoy(f):
    r = row(f, E1, 2025, 3)
    assert r["revenue_3m"] == 160_000  # Jan 40k + Feb 40k + Mar 80k
    assert r["revenue_3m_yoy"] == approx(160 / 200 - 1)
    assert r["revenue_1m_yoy"] == approx(-0.2)
    r = row(f, E1, 2025, 6)
    # Jul-Dec 2024 600k, Jan-Apr 2025 240k, May missing, Jun 80k
    assert r["revenue_12m"] == 920_000
    assert r["revenue_3m"] == 160_000
    assert r["revenue_3m_yoy"] == approx(160 / 300 - 1)
    assert r["revenue_6m_yoy"] == approx(320 / 500 - 1)  # Jan-Jun: 40+40+80+80+0+80
    assert r["revenue_12m_yoy"] == approx(920 / 1100 - 1)
    assert r["revenue_1m_yoy"] == approx(-0.2)
    # a year earlier: the first window with a full prior year has YoY; before, NULL
    assert row(f, E1, 2024, 5)["revenue_1m_yoy"] == approx(0.0)
    assert row(f, E1, 2024, 6)["revenue_3m_yoy"] is None  # 2023-04 not filed
    assert row(f, E1, 2024, 7)["revenue_3m_yoy"] == approx(0.0)


def test_chinese_new_year_is_not_a_decline(f):
    jan, feb, dec = row(f, E2, 2025, 1), row(f, E2, 2025, 2), row(f, E2, 2024, 12)
    assert feb["revenue_1m"] == 50_000 and dec["revenue_1m"] == 100_000  # -50% MoM
    for r in (jan, feb):
        assert r["revenue_1m_yoy"] == approx(0.0)
        assert r["revenue_3m_yoy"] == approx(0.0)
        assert r["electricity_3m_yoy"] == approx(0.0)
        assert r["electricity_yoy_decline_months"] == 0
        assert r["vat_filings_missing_3m"] == 0


def test_lunar_new_year_shift(f):
    # plain 3-month windows ending in January or April see half a New Year season ...
    assert row(f, E5, 2025, 1)["revenue_3m_yoy"] == approx(250 / 300 - 1)
    assert row(f, E5, 2025, 4)["revenue_3m_yoy"] == approx(300 / 250 - 1)
    # ... the ex-CNY version leaves January and February out of both windows
    for m in (1, 2, 3, 4, 5):
        assert row(f, E5, 2025, m)["revenue_3m_yoy_ex_cny"] == approx(0.0)
    assert row(f, E5, 2025, 3)["revenue_3m_yoy"] == approx(0.0)  # Jan-Mar holds the season
    assert row(f, E1, 2025, 6)["revenue_3m_yoy_ex_cny"] == approx(160 / 300 - 1)
    assert row(f, E1, 2025, 6)["electricity_3m_yoy_ex_cny"] == approx(-0.3)


def test_missing_vat_filings(f):
    assert row(f, E1, 2025, 4)["vat_filings_missing_3m"] == 0
    r = row(f, E1, 2025, 5)
    assert (r["vat_filings_missing_3m"], r["vat_filings_missing_12m"]) == (1, 1)
    r = row(f, E1, 2025, 6)
    assert (r["vat_filings_missing_3m"], r["vat_filings_missing_6m"],
            r["vat_filings_missing_12m"]) == (1, 1, 1)
    assert r["vat_filings_12m"] == 11
    # the first filing month is not "missing" history
    assert row(f, E1, 2023, 5)["vat_filings_missing_12m"] == 0


def test_tax_arrears_and_rating(f):
    r3, r6 = row(f, E1, 2025, 3), row(f, E1, 2025, 6)
    assert r3["tax_arrears"] == 2_000  # CIT 2025-03: 5000 payable, 3000 paid
    assert r6["tax_arrears"] == 18_000  # + VAT Apr and Jun (8000 each) unpaid
    assert r6["tax_arrears_change_3m"] == 16_000
    assert r6["tax_arrears_growth_3m"] == approx(8.0)
    # the 2025-07 period (after D) is not used
    assert all(r["tax_arrears"] < 100_000 for (e, _), r in f.items() if e == E1)
    # rating of a year before the month end's year; the 2025 rating is never used as of 2025
    assert (r6["tax_rating_year"], r6["tax_rating"], r6["tax_rating_prev"]) == (2024, "B", "A")
    assert r6["tax_rating_downgraded"] is True
    r = row(f, E1, 2024, 6)
    assert (r["tax_rating"], r["tax_rating_downgraded"]) == ("A", False)


def test_corporate_income_tax_loss_quarters(f):
    """CIT filings with nothing payable (no taxable profit) are counted over 12 months; the
    latest quarter's shows in cit_nil_payable_3m until a newer quarter, NULL when none was
    filed in the last 3 months."""
    expected = {  # month end: (filings 12m, nil-payable filings 12m, nil payable in 3m)
        (2024, 5): (0, 0, None),
        (2024, 6): (1, 0, 0),
        (2024, 8): (1, 0, 0),
        (2024, 9): (2, 0, 0),
        (2024, 12): (3, 1, 1),
        (2025, 2): (3, 1, 1),
        (2025, 3): (4, 2, 1),
        (2025, 5): (4, 2, 1),
        (2025, 6): (3, 2, None),  # 2024-06 left the window; 2025-06 not filed
    }
    for (y, m), want in expected.items():
        r = row(f, E2, y, m)
        got = (r["cit_filings_12m"], r["cit_nil_payable_filings_12m"], r["cit_nil_payable_3m"])
        assert got == want, (y, m)
    r = row(f, E1, 2025, 3)  # a profitable quarter
    assert (r["cit_filings_12m"], r["cit_nil_payable_3m"]) == (1, 0)
    assert row(f, E4, 2025, 3)["cit_filings_12m"] == 0


def test_utility_features(f):
    r5, r6 = row(f, E1, 2025, 5), row(f, E1, 2025, 6)
    # at 2025-05-31: the April bill (paid 2025-06-15) and May bill are unpaid
    assert r5["utility_arrears"] == 2_000
    # at 2025-06-30: April paid (06-15); May paid 07-05 is after the month end and D
    assert r6["utility_arrears"] == 2_000
    assert row(f, E1, 2025, 4)["utility_arrears"] == 1_000
    # the current month's bill is always open at its own period end (paid on day 10)
    assert row(f, E1, 2025, 3)["utility_arrears"] == 1_000
    # overdue part (due = period_end + 20 passed): April bill at May end, May bill at June end
    assert r5["utility_arrears_overdue"] == 1_000
    assert r6["utility_arrears_overdue"] == 1_000
    assert row(f, E1, 2025, 4)["utility_arrears_overdue"] == 0  # March bill paid 04-10
    assert row(f, E2, 2025, 6)["utility_arrears_overdue"] == 0
    # late: April bill (due 05-20, paid 06-15) known late in May; May bill (due 06-20) in June
    assert r5["utility_late_payments_6m"] == 1
    assert r6["utility_late_payments_6m"] == 2
    assert r6["electricity_3m_yoy"] == approx(-0.3)
    assert r6["electricity_yoy_decline_months"] == 6
    assert row(f, E1, 2024, 12)["electricity_yoy_decline_months"] == 0
    assert r6["electricity_3m_vs_12m_avg"] == approx(700 / (9500 / 12))
    assert row(f, E2, 2025, 6)["utility_arrears"] == 1_000  # June bill, paid 07-10
    assert row(f, E2, 2025, 6)["utility_late_payments_6m"] == 0


def test_event_windows(f):
    r6, r5, r4 = row(f, E3, 2025, 6), row(f, E3, 2025, 5), row(f, E3, 2025, 4)
    assert r4["court_judgment_defendant_3m"] == 0  # dated 2025-05-10: not yet known
    assert r5["court_judgment_defendant_3m"] == 1
    assert r6["court_judgment_defendant_3m"] == 1
    assert (r6["enforcement_listed_3m"], r6["enforcement_listed_6m"]) == (0, 1)
    assert r6["abnormal_operation_listed_3m"] == 1
    assert r6["abnormal_operation_listed_12m"] == 1  # 2 listed - 1 removed
    assert r6["abnormal_operation_currently_listed"] is True
    assert row(f, E3, 2024, 12)["abnormal_operation_currently_listed"] is False
    assert (r6["legal_rep_change_3m"], r6["legal_rep_change_12m"]) == (0, 1)
    assert r6["shareholder_change_3m"] == 1  # dated on the month end itself
    assert r6["admin_penalty_3m"] == 1
    assert r6["equity_pledge_12m"] == 0 and r5["equity_pledge_12m"] == 1
    assert r6["dishonest_debtor_listed_12m"] == 0  # 2025-07-05 is after D
    assert (r6["high_severity_events_3m"], r6["high_severity_events_6m"]) == (1, 2)
    assert r6["medium_severity_events_3m"] == 2  # abnormal (net) + admin penalty
    assert r6["low_severity_events_3m"] == 1
    assert r6["court_enforcement_amount_12m"] == 70_000
    # revoked later (2025-07-10): at 2025-06 it was still active
    assert r6["status_at_month_end"] == "active"
    assert row(f, E1, 2025, 6)["status_at_month_end"] == "active"
    # the registry snapshot says suspended; the change (存续→停业) was dated 2025-03-10
    assert row(f, E2, 2025, 2)["status_at_month_end"] == "active"
    assert row(f, E2, 2025, 3)["status_at_month_end"] == "suspended"


def test_fund_diversion(f):
    assert row(f, E3, 2025, 1)["fund_diversion_max_share"] == approx(0.0)
    assert row(f, E3, 2025, 2)["fund_diversion_max_share"] == approx(0.2)
    r = row(f, E3, 2025, 6)
    assert r["fund_diversion_max_share"] == approx(0.3)  # the cash flow on day 111 is out
    assert r["fund_diversion_amount"] == 300_000
    assert r["fund_diversion_max_loan_amount"] == 300_000
    assert row(f, E3, 2024, 12)["fund_diversion_max_share"] is None  # no loan yet
    assert row(f, E1, 2025, 6)["fund_diversion_max_share"] == approx(0.0)


def test_borrowing_burden(f):
    r = row(f, E1, 2025, 6)
    assert r["outstanding_principal"] == 1_200_000
    assert r["outstanding_to_revenue_12m"] == approx(1_200_000 / 920_000)
    assert r["principal_due_next_90d"] == 0
    assert r["loans_outstanding"] == 1
    r = row(f, E3, 2025, 6)
    assert r["outstanding_principal"] == 600_000
    assert r["principal_due_next_90d"] == 300_000  # Jul, Aug, Sep 10th
    assert r["principal_due_90d_to_avg_monthly_revenue"] is None  # no revenue
    assert (r["dpd_max"], r["dpd_max_12m"], r["is_default"]) == (20, 20, False)
    assert row(f, E3, 2025, 5)["dpd_max"] == 0
    assert row(f, E3, 2025, 5)["principal_due_next_90d"] == 300_000  # Jun, Jul, Aug


def test_bullet_principal_due_within_180_days(f):
    """The refinancing a firm faces in one payment: bullet loans maturing within 180 days.
    Installment loans (E3) and bullets maturing later (E1, July 2026) do not count."""
    assert row(f, E4, 2025, 2)["bullet_principal_due_next_180d"] == 0  # 199 days ahead
    r = row(f, E4, 2025, 3)
    assert r["bullet_principal_due_next_180d"] == 400_000  # 168 days ahead
    assert r["bullet_due_180d_to_avg_monthly_revenue"] == approx(
        400_000 / (float(r["revenue_12m"]) / 12))
    r = row(f, E4, 2025, 5)
    assert r["bullet_principal_due_next_180d"] == 400_000  # 107 days ahead
    assert r["principal_due_next_90d"] == 0  # ... which is beyond 90 days
    assert row(f, E4, 2025, 6)["principal_due_next_90d"] == 400_000  # 77 days ahead
    assert row(f, E1, 2025, 6)["bullet_principal_due_next_180d"] == 0
    assert row(f, E3, 2025, 6)["bullet_principal_due_next_180d"] == 0
    assert row(f, E3, 2025, 6)["bullet_due_180d_to_avg_monthly_revenue"] is None  # no revenue


def test_industry_index(f):
    r = row(f, E1, 2025, 3)
    assert r["industry_peer_count"] == 3
    assert r["industry_revenue_3m_yoy_median"] == approx(-0.2)  # -0.2, 0.0, -0.5
    assert r["industry_revenue_3m_yoy_aggregate"] == approx(460 / 600 - 1)
    assert r["revenue_3m_yoy_vs_industry"] == approx(0.0)
    assert r["industry_revenue_3m_yoy_ex_cny_median"] == approx(-0.2)  # March only: -.2, 0, -.5
    assert row(f, E4, 2025, 3)["revenue_3m_yoy_vs_industry"] == approx(-0.3)
    assert row(f, E3, 2025, 3)["industry_peer_count"] is None  # industry E has no revenue


def test_point_in_time_earlier_build(built):
    late, early = built
    assert max(me for _, me in early) == date(2025, 3, 31)
    assert row(early, E3, 2025, 3)["court_judgment_defendant_12m"] == 0
    # building as of an earlier date reproduces exactly what the later build shows then
    for key, r in early.items():
        a = {k: v for k, v in r.items() if k != "as_of_date"}
        b = {k: v for k, v in late[key].items() if k != "as_of_date"}
        assert a == b, key
    assert len(early) == sum(1 for _, me in late if me <= date(2025, 3, 31))


def test_a_month_missing_from_the_spine_fails_dense_months(built, warehouse):
    """The windows read "n rows back" as "n months back" (ROWS frames, lag) because the spine
    has no gaps: the build above passed `dense_months`, and one missing month makes it fail,
    naming the enterprise. The row is put back afterwards."""
    test = "int_enterprise__month_spine_dense"
    spine = "intermediate.int_enterprise__month_spine"
    where = "enterprise_id = ? AND month_end = ?"
    gap = [E1, date(2024, 6, 30)]
    with duckdb.connect(str(warehouse)) as con:
        (n_months,) = con.execute(
            f"SELECT count(*) FROM {spine} WHERE enterprise_id = ?", [E1]).fetchone()
        removed = con.execute(f"SELECT * FROM {spine} WHERE {where}", gap).fetchall()
        assert len(removed) == 1
        key = con.execute(f"SELECT enterprise_key FROM {spine} WHERE {where}", gap).fetchone()[0]
        con.execute(f"DELETE FROM {spine} WHERE {where}", gap)
    try:
        target = warehouse.parent / "target"
        proc = run_dbt(["test", "--select", test], warehouse=warehouse, target_path=target,
                       check=False)
        assert proc.returncode != 0
        assert f"Failure in test {test}" in proc.stdout
        assert "Got 1 result" in proc.stdout
        compiled = next((target / "compiled").rglob(f"{test}.sql")).read_text()
        with duckdb.connect(str(warehouse), read_only=True) as con:
            failing = con.execute(compiled).fetchall()
        assert failing == [(key, n_months - 1, n_months)]
    finally:
        with duckdb.connect(str(warehouse)) as con:
            con.executemany(f"INSERT INTO {spine} VALUES ({', '.join('?' * len(removed[0]))})",
                            removed)


def test_the_mart_built_in_several_buckets_equals_one_pass(built, warehouse, tmp_path):
    """The feature mart is built in buckets of enterprises (one per `enterprises_per_bucket`
    registry enterprises, at most 16; this small book takes one). Built again with one
    enterprise per bucket, each bucket a post-hook, its rows are the same."""
    copy = tmp_path / "buckets.duckdb"
    shutil.copy(warehouse, copy)
    target = tmp_path / "target"
    run_dbt(["run", "--select", "fct_enterprise_month_end", "--full-refresh"],
            warehouse=copy, dbt_vars={"as_of_date": "2025-06-30", "enterprises_per_bucket": 1},
            target_path=target)
    with duckdb.connect(str(copy), read_only=True) as con:
        (n,) = con.execute("SELECT count(*) FROM staging.stg_registry__enterprises").fetchone()
        (rows,) = con.execute("SELECT count(*) FROM marts.fct_enterprise_month_end").fetchone()
    assert n == 5
    assert rows == len(built[0])  # no bucket inserted twice (`load` keys rows by firm-month)
    log = (target / "logs" / "dbt.log").read_text()
    assert all(f"hash(s.enterprise_id) % {n} = {b}" in log for b in range(n))
    assert f"hash(s.enterprise_id) % {n + 1}" not in log  # the hooks past the count are empty
    assert load(copy) == built[0]
