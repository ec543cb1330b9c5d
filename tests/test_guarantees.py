"""Guarantees, related-party links and the mart guarantee_exposure (issue 13).

Ingestion: every rule of the two new landing tables fed its bad case. Marts: hand-made
guarantee graphs (a chain, a mutual pair, a 5-cycle with tails, two circles joined by one
edge, guarantees that start late or end early, a guarantor outside the book, a guarantor in
default) built in one dbt run over the contract examples, and the contract examples alone
(no new folders) still building as before.
"""

from __future__ import annotations

import csv
import shutil
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
from conftest import CONTRACT_EXAMPLES, write_csv

from assets.contract import TABLES, is_valid_uscc, uscc_check_char
from assets.core.dbt_project import run_dbt
from assets.dbt_assets import decision_vars
from assets.ingestion import ingest_all
from assets.signals.catalog import load_catalog

AS_OF = "2024-12-31"
SELECTION = (
    "+guarantee_exposure", "+guarantee_circles", "+int_network__enterprise_links",
    "+fct_enterprise_month_end",
)  # fmt: skip
E1 = "91330102EFPX14RX7K"  # an enterprise of the contract examples; loan L1 is its


@pytest.fixture(autouse=True)
def pseudonym_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RISK_PSEUDONYM_KEY", "test-guarantees-key")


def code(tag: str) -> str:
    """A valid credit code whose body ends in `tag` (letters of the USCC alphabet)."""
    first17 = ("91330102" + tag.rjust(9, "0"))[:17]
    return first17 + uscc_check_char(first17)


def q(wh: Path, sql: str, params: list | None = None) -> list[tuple]:
    with duckdb.connect(str(wh), read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


def rejected(wh: Path, table: str) -> dict[int, str]:
    return dict(
        q(wh, "SELECT row_number, reason FROM raw.rejected_rows WHERE table_name = ?", [table])
    )


# --- ingestion rules ---------------------------------------------------------------------------

G_HEADER = list(TABLES["guarantees"].column_names)
LINK_HEADER = list(TABLES["enterprise_links"].column_names)


def g_row(gid: str, **kw: object) -> list[object]:
    base = dict(
        guarantee_id=gid,
        loan_id="L1",
        guarantor_type="enterprise",
        guarantor_id=code("G1"),
        guaranteed_amount="1000",
        start_date="2024-01-15",
        end_date="",
    )
    base.update(kw)
    return [base[c] for c in G_HEADER]


def link_row(**kw: object) -> list[object]:
    base = dict(
        enterprise_id=E1,
        related_id=code("R1"),
        relation="shareholder_of",
        share="0.3",
        valid_from="2020-01-01",
        valid_to="",
    )
    base.update(kw)
    return [base[c] for c in LINK_HEADER]


def test_guarantee_rules_quarantine_each_bad_case(landing: Path, warehouse: Path) -> None:
    bad_code = code("G1")[:17] + ("0" if code("G1")[17] != "0" else "1")
    write_csv(
        landing,
        "guarantees",
        "g.csv",
        G_HEADER,
        [
            g_row("G01"),  # a guarantor outside the book: fine
            g_row("G02", guarantor_id=bad_code),
            g_row("G03", start_date="2024-05-01", end_date="2024-04-30"),
            g_row("G04", loan_id="NO_SUCH_LOAN"),
            g_row("G05", guarantor_type="bank"),
            g_row("G06", guaranteed_amount="0"),
            g_row("G07", guarantor_type="government_fund", guarantor_id="GF330102"),
            g_row("G08", guarantor_type="individual", guarantor_id="P-7f3a9c"),
            g_row("G09", end_date="2024-01-15"),  # same day: in order
        ],
    )
    ingest_all(warehouse, landing)
    reasons = rejected(warehouse, "guarantees")
    assert set(reasons) == {2, 3, 4, 5, 6}
    assert reasons[2].startswith("guarantor_credit_code: guarantor_id is an 18-character USCC")
    assert reasons[3] == "guarantee_date_order: start_date <= end_date"
    assert reasons[4] == "loan_id: no loans row with this loan_id"
    assert reasons[5].startswith("guarantor_type: 'bank' is not one of government_fund/")
    assert reasons[6] == "guaranteed_amount: '0' is not a decimal number > 0"
    loaded = q(warehouse, "SELECT guarantee_id FROM raw.guarantees ORDER BY 1")
    assert [r[0] for r in loaded] == ["G01", "G07", "G08", "G09"]


def test_link_rules_quarantine_each_bad_case(landing: Path, warehouse: Path) -> None:
    write_csv(
        landing,
        "enterprise_links",
        "l.csv",
        LINK_HEADER,
        [
            link_row(),  # a related firm outside the book: fine
            link_row(relation="cousin_of"),
            link_row(relation="same_controller", share="1.2"),
            link_row(related_id="NOT_A_CODE", relation="major_customer"),
            link_row(relation="major_supplier", valid_from="2024-01-02", valid_to="2024-01-01"),
            link_row(enterprise_id=code("XX9"), relation="subsidiary_of"),
            link_row(relation="same_legal_rep", share=""),
        ],
    )
    ingest_all(warehouse, landing)
    reasons = rejected(warehouse, "enterprise_links")
    assert set(reasons) == {2, 3, 4, 5, 6}
    assert reasons[2].startswith("relation: 'cousin_of' is not one of shareholder_of/")
    assert reasons[3] == "share: '1.2' is not a decimal number >= 0 and <= 1"
    assert reasons[4].startswith("related_id: 'NOT_A_CODE' is not an 18-character USCC")
    assert reasons[5] == "link_date_order: valid_from <= valid_to"
    assert reasons[6] == "enterprise_id: no enterprises row with this enterprise_id"
    assert q(warehouse, "SELECT count(*) FROM raw.enterprise_links") == [(2,)]


def test_officer_id_is_optional_and_loaded(landing: Path, warehouse: Path) -> None:
    path = landing / "loans" / "data.csv"
    with path.open(newline="") as fh:
        rows = list(csv.reader(fh))
    rows[0].append("officer_id")
    for i, row in enumerate(rows[1:]):
        row.append("RM007" if i == 0 else "")
    write_csv(landing, "loans", "data.csv", rows[0], rows[1:])
    ingest_all(warehouse, landing)
    got = q(warehouse, "SELECT officer_id FROM raw.loans WHERE loan_id = ?", [rows[1][0]])
    assert got == [("RM007",)]


def test_uscc_codes_of_this_module_are_valid() -> None:
    assert all(is_valid_uscc(code(t)) for t in ("A1", "B2", "G1", "R1", "XX9"))


# --- hand-made graphs --------------------------------------------------------------------------

ENT_HEADER = list(TABLES["enterprises"].column_names)
LOAN_HEADER = [c for c in TABLES["loans"].column_names if c != "officer_id"]
SCHEDULE_HEADER = list(TABLES["repayment_schedule"].column_names)

#: Firms of the scenarios (tag -> its credit code); each borrows one loan "L_<tag>".
FIRMS = [
    "A1", "A2", "A3",  # chain A1 -> A2 -> A3
    "B1", "B2",  # mutual pair
    "C1", "C2", "C3", "C4", "C5", "C6", "C7",  # 5-cycle C1..C5, tails C5 -> C6, C7 -> C1
    "D1", "D2", "D3", "D4", "D5",  # D1 <-> D2, D3 -> D4 -> D5 -> D3, one edge D2 -> D3
    "E1", "E2",  # E1 -> E2 open, E2 -> E1 starts 2024-07-15
    "F1", "F2",  # F1 -> F2 open, F2 -> F1 ended 2024-06-15
    "H1", "H2",  # H2 guarantees H1, whose loan defaults (due 2024-02-15, never paid)
    "K1",  # guaranteed by a firm outside the book, a fund and a person; related to H1
    "M1", "M2",  # mutual pair; M1's loan defaults (due 2024-03-15, never paid)
    "N1", "N2", "N3", "N4",  # N2 -> N1 -> N4, N1 related to N3; N1 listed as a dishonest
                             # debtor on 2024-04-10 (a red hard trigger), never in default
]  # fmt: skip
DEFAULT_DUE = {"H1": "2024-02-15", "M1": "2024-03-15"}  # never paid: default 91 days later
OUTSIDE = code("QWT1")  # a guarantor that is neither a borrower nor in enterprises
EDGES = [
    ("A1", "A2"), ("A2", "A3"),
    ("B1", "B2"), ("B2", "B1"),
    ("C1", "C2"), ("C2", "C3"), ("C3", "C4"), ("C4", "C5"), ("C5", "C1"),
    ("C5", "C6"), ("C7", "C1"),
    ("D1", "D2"), ("D2", "D1"), ("D3", "D4"), ("D4", "D5"), ("D5", "D3"), ("D2", "D3"),
    ("E1", "E2"), ("F1", "F2"), ("H2", "H1"), ("M1", "M2"), ("M2", "M1"),
    ("N2", "N1"), ("N1", "N4"),
]  # fmt: skip
EVENT_HEADER = list(TABLES["registry_events"].column_names)


def firms_with_guarantees(
    landing: Path, firms: list[str], edges: list[tuple[str, str]], due: dict[str, str],
    name: str, guarantee_prefix: str, extra_guarantees: list[list[str]] | None = None,
) -> None:
    """One active firm per tag, each with one interest-only bullet loan (due on `due[tag]`,
    else 2026-01-15, never paid) and an enterprise guarantee for each (guarantor, borrower)
    edge, written as landing files `name`.csv."""
    ents, loans, sched = [], [], []
    for t in firms:
        ents.append([code(t), f"Firm {t}", "C", "330102", "2010-01-01", "1000000", "10",
                     "small", "active", "Rep", "330102198001010000"])  # fmt: skip
        loan = dict(
            loan_id=f"L_{t}", enterprise_id=code(t), branch_id="B001",
            product="working_capital_loan", purpose="working_capital",
            contract_date="2024-01-05", disbursement_date="2024-01-10",
            maturity_date=due.get(t, "2026-01-15"), principal="10000",
            annual_rate="0.05", repayment_method="interest_only_bullet", collateral_type="none",
            collateral_value="", guarantee_type="third_party_company", guarantee_ratio="1",
        )  # fmt: skip
        loans.append([loan[c] for c in LOAN_HEADER])
        sched.append([f"L_{t}", 1, loan["maturity_date"], "10000", "0"])
    guars = [
        [f"{guarantee_prefix}{n:03d}", f"L_{b}", "enterprise", code(g), "1000", "2024-01-10", ""]
        for n, (g, b) in enumerate(edges)
    ]
    write_csv(landing, "enterprises", f"{name}.csv", ENT_HEADER, ents)
    write_csv(landing, "loans", f"{name}.csv", LOAN_HEADER, loans)
    write_csv(landing, "repayment_schedule", f"{name}.csv", SCHEDULE_HEADER, sched)
    write_csv(landing, "guarantees", f"{name}.csv", G_HEADER, [*guars, *(extra_guarantees or [])])


def _graph_landing(landing: Path) -> None:
    firms_with_guarantees(landing, FIRMS, EDGES, DEFAULT_DUE, "graph", "GE", [
        ["GE900", "L_E2", "enterprise", code("E2"), "500", "2024-07-15", ""],  # own loan: no edge
        ["GE901", "L_E1", "enterprise", code("E2"), "700", "2024-07-15", ""],
        ["GE902", "L_F1", "enterprise", code("F2"), "700", "2024-01-10", "2024-06-15"],
        ["GE903", "L_K1", "enterprise", OUTSIDE, "3000", "2024-01-10", ""],
        ["GE904", "L_K1", "government_fund", "GF330102", "4000", "2024-01-10", ""],
        ["GE905", "L_K1", "individual", "P-1234abcd", "2000", "2024-01-10", "2024-09-30"],
    ])
    write_csv(
        landing,
        "enterprise_links",
        "graph.csv",
        LINK_HEADER,
        [
            link_row(enterprise_id=code("A1"), related_id=code("A2"), relation="same_controller"),
            link_row(enterprise_id=code("A2"), related_id=code("A1"), relation="same_controller"),
            link_row(enterprise_id=code("A1"), related_id=code("A2"), relation="shareholder_of"),
            link_row(enterprise_id=code("H1"), related_id=code("K1"), relation="major_customer",
                     valid_from="2024-06-01"),
            link_row(enterprise_id=code("N3"), related_id=code("N1"), relation="same_controller"),
        ],
    )
    event = {"event_id": "EVN1", "enterprise_id": code("N1"), "event_date": "2024-04-10",
             "event_type": "dishonest_debtor_listed", "amount": "", "description": ""}
    write_csv(landing, "registry_events", "graph.csv", EVENT_HEADER,
              [[event[c] for c in EVENT_HEADER]])


def _build(tmp: Path, landing: Path, name: str) -> Path:
    warehouse = tmp / f"{name}.duckdb"
    ingest_all(warehouse, landing)
    proc = run_dbt(
        ["build", "--select", *SELECTION],
        warehouse=warehouse,
        dbt_vars={"as_of_date": AS_OF, **decision_vars(load_catalog())},
        target_path=tmp / f"target_{name}",
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-6000:]
    return warehouse


@pytest.fixture(scope="module")
def graph_wh(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("guarantees")
    landing = tmp / "landing"
    shutil.copytree(CONTRACT_EXAMPLES / "landing", landing)
    _graph_landing(landing)
    mp = pytest.MonkeyPatch()
    mp.setenv("RISK_PSEUDONYM_KEY", "test-guarantees-key")
    try:
        return _build(tmp, landing, "graph")
    finally:
        mp.undo()


def circles(wh: Path, month_end: str) -> dict[str, str | None]:
    """{firm tag: circle tag or None} of every scenario firm in the mart at month_end."""
    tag = {code(t): t for t in FIRMS}
    rows = q(
        wh,
        "SELECT enterprise_id, in_guarantee_circle, circle_id FROM marts.guarantee_exposure "
        "WHERE month_end = ?",
        [month_end],
    )
    out = {}
    for eid, flag, cid in rows:
        if eid in tag:
            assert flag == (cid is not None)
            out[tag[eid]] = tag[cid] if cid else None
    return out


def smallest(*tags: str) -> str:
    return min(tags, key=code)


def test_circles_found_exactly(graph_wh: Path) -> None:
    got = circles(graph_wh, "2024-06-30")
    assert {t: got[t] for t in ("A1", "A2", "A3")} == {"A1": None, "A2": None, "A3": None}
    assert got["B1"] == got["B2"] == smallest("B1", "B2")
    c = smallest("C1", "C2", "C3", "C4", "C5")
    assert [got[t] for t in ("C1", "C2", "C3", "C4", "C5", "C6", "C7")] == [c] * 5 + [None] * 2
    d12, d345 = smallest("D1", "D2"), smallest("D3", "D4", "D5")
    assert [got[t] for t in ("D1", "D2", "D3", "D4", "D5")] == [d12] * 2 + [d345] * 3
    assert got["H1"] is None and got["H2"] is None and got["K1"] is None


def test_circles_mart_sums_members(graph_wh: Path) -> None:
    rows = q(
        graph_wh,
        "SELECT circle_id, members, total_exposure, members_in_default, guarantees_within "
        "FROM marts.guarantee_circles WHERE month_end = '2024-06-30' ORDER BY circle_id",
    )
    by_id = {r[0]: r[1:] for r in rows}
    assert by_id[code(smallest("C1", "C2", "C3", "C4", "C5"))] == (
        5,
        Decimal("50000.00"),
        0,
        Decimal("5000.00"),
    )
    assert by_id[code(smallest("B1", "B2"))] == (2, Decimal("20000.00"), 0, Decimal("2000.00"))
    assert by_id[code(smallest("M1", "M2"))][2] == 1  # M1 defaulted on 2024-06-14
    assert len(rows) == 5  # B, C, D1-D2, D3-D5, M; E starts later, F ended on 2024-06-15


def test_point_in_time_start_and_end(graph_wh: Path) -> None:
    before, after = circles(graph_wh, "2024-06-30"), circles(graph_wh, "2024-07-31")
    assert before["E1"] is None and after["E1"] == after["E2"] == smallest("E1", "E2")
    may, june = circles(graph_wh, "2024-05-31"), circles(graph_wh, "2024-06-30")
    assert may["F1"] == may["F2"] == smallest("F1", "F2") and june["F1"] is None
    given = dict(
        q(
            graph_wh,
            "SELECT month_end::VARCHAR, guarantees_given FROM marts.guarantee_exposure "
            "WHERE enterprise_id = ? AND month_end IN ('2024-06-30', '2024-07-31')",
            [code("E2")],
        )
    )
    # E2's guarantee of its own loan is not "for others"
    assert given == {"2024-06-30": Decimal("0.00"), "2024-07-31": Decimal("700.00")}


def test_received_counts_every_guarantor_type_and_outsiders(graph_wh: Path) -> None:
    rows = dict(
        q(
            graph_wh,
            "SELECT month_end::VARCHAR, guarantees_received FROM marts.guarantee_exposure "
            "WHERE enterprise_id = ? AND month_end IN ('2024-08-31', '2024-09-30')",
            [code("K1")],
        )
    )
    # the person's guarantee ends on 2024-09-30: not open on that day
    assert rows == {"2024-08-31": Decimal("9000.00"), "2024-09-30": Decimal("7000.00")}
    assert q(
        graph_wh, "SELECT count(*) FROM marts.guarantee_exposure WHERE enterprise_id = ?",
        [OUTSIDE],
    ) == [(0,)]  # fmt: skip


def test_guarantors_in_default(graph_wh: Path) -> None:
    rows = q(
        graph_wh,
        "SELECT enterprise_id, month_end::VARCHAR, guarantors_in_default, is_default "
        "FROM marts.guarantee_exposure WHERE enterprise_id IN (?, ?) "
        "AND month_end IN ('2024-04-30', '2024-05-31')",
        [code("H1"), code("H2")],
    )
    got = {(r[0], r[1]): (r[2], r[3]) for r in rows}
    # H1's loan (due 2024-02-15, unpaid) defaults on 2024-05-16
    assert got[(code("H2"), "2024-04-30")] == (0, False)
    assert got[(code("H2"), "2024-05-31")] == (1, False)
    assert got[(code("H1"), "2024-05-31")] == (0, True)


def test_undirected_links_delivered_twice_are_one(graph_wh: Path) -> None:
    rows = q(
        graph_wh,
        "SELECT relation, enterprise_id < related_id "
        "FROM intermediate.int_network__enterprise_links "
        "WHERE ? IN (enterprise_id, related_id) ORDER BY relation",
        [code("A1")],
    )
    assert [r[0] for r in rows] == ["same_controller", "shareholder_of"]
    assert rows[0][1] is True


# --- network features of fct_enterprise_month_end ----------------------------------------------

NET_COLS = (
    "guarantees_given, guaranteed_parties_in_default, guaranteed_party_in_default, "
    "guaranteed_parties_past_due, guaranteed_party_past_due, own_guarantors_in_default, "
    "own_guarantor_in_default, circle_members_in_default, circle_member_in_default, "
    "related_parties_in_default, related_party_in_default, guarantee_circle_members, "
    "guaranteed_parties_on_red, guaranteed_party_on_red, guaranteed_party_red_trigger, "
    "own_guarantors_on_red, own_guarantor_on_red, own_guarantor_red_trigger, "
    "related_parties_on_red, related_party_on_red, related_party_red_trigger"
)


def features(wh: Path, tag: str) -> dict[str, dict[str, object]]:
    """{month end: {network feature: value}} of one scenario firm."""
    with duckdb.connect(str(wh), read_only=True) as con:
        cur = con.execute(
            f"SELECT month_end::VARCHAR, {NET_COLS} FROM marts.fct_enterprise_month_end "
            "WHERE enterprise_id = ? ORDER BY month_end",
            [code(tag)],
        )
        names = [d[0] for d in cur.description]
        return {r[0]: dict(zip(names[1:], r[1:], strict=True)) for r in cur.fetchall()}


def label(tag: str) -> str:
    return f"Firm {tag} ({code(tag)})"


def test_network_features_are_point_in_time(graph_wh: Path) -> None:
    h2 = features(graph_wh, "H2")
    # H1's loan was due 2024-02-15: 14 days late at February's end, 45 at March's, default
    # on 2024-05-16
    assert h2["2024-02-29"]["guaranteed_parties_past_due"] == 0
    assert h2["2024-03-31"]["guaranteed_parties_past_due"] == 1
    assert h2["2024-03-31"]["guaranteed_party_past_due"] == label("H1")
    assert h2["2024-04-30"]["guaranteed_parties_in_default"] == 0
    assert h2["2024-05-31"]["guaranteed_parties_in_default"] == 1
    assert h2["2024-05-31"]["guaranteed_parties_past_due"] == 0  # in default now, not past due
    assert h2["2024-05-31"]["guaranteed_party_in_default"] == label("H1")
    assert h2["2024-05-31"]["guarantees_given"] == Decimal("1000.00")
    h1 = features(graph_wh, "H1")
    assert h1["2024-05-31"]["own_guarantors_in_default"] == 0  # its guarantor H2 is healthy
    # the link H1 -> K1 is valid from 2024-06-01: K1 learns of H1's default at June's end
    k1 = features(graph_wh, "K1")
    assert k1["2024-05-31"]["related_parties_in_default"] == 0
    assert k1["2024-06-30"]["related_parties_in_default"] == 1
    assert k1["2024-06-30"]["related_party_in_default"] == label("H1")
    # M1 (mutual pair with M2) defaults on 2024-06-14
    m2, m1 = features(graph_wh, "M2"), features(graph_wh, "M1")
    assert m2["2024-05-31"]["circle_members_in_default"] == 0
    assert m2["2024-06-30"]["circle_members_in_default"] == 1
    assert m2["2024-06-30"]["circle_member_in_default"] == label("M1")
    assert m2["2024-06-30"]["guarantee_circle_members"] == 2
    assert m1["2024-06-30"]["circle_members_in_default"] == 0  # itself is not counted
    assert m1["2024-06-30"]["own_guarantors_in_default"] == 0
    # a firm with nothing around it: zeros, not NULL (the scorecard can bin them)
    a3 = features(graph_wh, "A3")["2024-06-30"]
    assert a3["guarantees_given"] == 0 and a3["related_parties_in_default"] == 0


def test_other_firm_on_red_by_a_hard_trigger_is_point_in_time(graph_wh: Path) -> None:
    """N1 is listed as a dishonest debtor on 2024-04-10 (the catalog's red hard trigger
    dishonest_debtor_listed): from April's end the firm guaranteeing it (N2), the firm it
    guarantees (N4) and its related party (N3) see it on red, naming it and the trigger."""
    n2, n4, n3 = features(graph_wh, "N2"), features(graph_wh, "N4"), features(graph_wh, "N3")
    for feats, count, party, trigger in (
        (n2, "guaranteed_parties_on_red", "guaranteed_party_on_red",
         "guaranteed_party_red_trigger"),
        (n4, "own_guarantors_on_red", "own_guarantor_on_red", "own_guarantor_red_trigger"),
        (n3, "related_parties_on_red", "related_party_on_red", "related_party_red_trigger"),
    ):
        assert feats["2024-03-31"][count] == 0 and feats["2024-03-31"][party] is None
        assert feats["2024-04-30"][count] == 1
        assert feats["2024-04-30"][party] == label("N1")
        assert feats["2024-04-30"][trigger] == "dishonest_debtor_listed"
    # N1 itself is not around itself; a firm in default counts as in default, not on red
    assert features(graph_wh, "N1")["2024-04-30"]["own_guarantors_on_red"] == 0
    m2 = features(graph_wh, "M2")["2024-06-30"]
    assert m2["guaranteed_parties_in_default"] == 1 and m2["guaranteed_parties_on_red"] == 0
    k1 = features(graph_wh, "K1")["2024-06-30"]
    assert k1["related_parties_in_default"] == 1 and k1["related_parties_on_red"] == 0


def test_network_signal_names_the_other_firm(graph_wh: Path) -> None:
    """The catalog's network signals fire on the engine's own path (features_sql +
    signal_hits_rows_sql) and their reasons name the other firm, in English and Chinese."""
    from datetime import date

    from assets.report.i18n import reason_zh
    from assets.signals.catalog import load_catalog
    from assets.signals.decisions import features_sql, signal_hits_rows_sql

    catalog = load_catalog()
    with duckdb.connect(str(graph_wh), read_only=True) as con:
        feats = features_sql(con, catalog, end=date(2024, 6, 30), start=date(2024, 4, 30))
        con.execute(f"CREATE TEMP TABLE f AS {feats}")
        hits = con.execute(
            f"SELECT enterprise_id, month_end::VARCHAR, signal_id, reason "
            f"FROM ({signal_hits_rows_sql(catalog, 'f')}) "
            "WHERE signal_id LIKE 'network_%'"
        ).fetchall()
    got = {(r[0], r[1], r[2]): r[3] for r in hits}
    key = (code("H2"), "2024-05-31", "network_guaranteed_party_in_default")
    assert key in got and label("H1") in got[key]
    assert (code("H2"), "2024-04-30", "network_guaranteed_party_in_default") not in got
    assert label("H1") in reason_zh(got[key], catalog)
    assert reason_zh(got[key], catalog) != got[key]
    circle = got[(code("M2"), "2024-06-30", "network_circle_member_in_default")]
    assert label("M1") in circle
    related = got[(code("K1"), "2024-06-30", "network_related_party_in_default")]
    assert label("H1") in related
    assert (code("K1"), "2024-05-31", "network_related_party_in_default") not in got
    # on red by a hard trigger (N1 listed as a dishonest debtor on 2024-04-10)
    on_red = got[(code("N2"), "2024-04-30", "network_guaranteed_party_on_red")]
    assert label("N1") in on_red and "dishonest_debtor_listed" in on_red
    assert label("N1") in reason_zh(on_red, catalog) and "被列红" in reason_zh(on_red, catalog)
    # the trigger reads as the signal's Chinese name, not its id
    assert "失信被执行人" in reason_zh(on_red, catalog)
    assert "dishonest_debtor_listed" not in reason_zh(on_red, catalog)
    assert label("N1") in got[(code("N4"), "2024-05-31", "network_own_guarantor_on_red")]
    assert label("N1") in got[(code("N3"), "2024-05-31", "network_related_party_on_red")]
    assert not any(k[0] == code("N2") and k[2] == "network_guaranteed_party_on_red"
                   and k[1] < "2024-04-30" for k in got)


# --- the landing directory without the new folders --------------------------------------------


def test_contract_examples_without_new_folders_build_as_before(
    tmp_path: Path,
) -> None:
    landing = tmp_path / "landing"
    shutil.copytree(CONTRACT_EXAMPLES / "landing", landing)
    assert not (landing / "guarantees").exists()
    wh = _build(tmp_path, landing, "plain")
    with open(CONTRACT_EXAMPLES / f"expected_fct_loan_month_end_as_of_{AS_OF}.csv") as fh:
        expected = sorted((r["loan_id"], r["month_end"]) for r in csv.DictReader(fh))
    actual = q(wh, "SELECT loan_id, month_end::VARCHAR FROM marts.fct_loan_month_end ORDER BY 1, 2")
    assert actual == expected
    assert q(wh, "SELECT count(*) FROM raw.guarantees") == [(0,)]
    assert q(
        wh,
        "SELECT count(*), sum(guarantees_given), sum(guarantees_received), "
        "count(*) FILTER (WHERE in_guarantee_circle) FROM marts.guarantee_exposure",
    ) == q(
        wh,
        "SELECT count(*), 0, 0, 0 FROM (SELECT DISTINCT enterprise_id, month_end "
        "FROM marts.fct_loan_month_end WHERE outstanding_principal > 0 "
        "AND enterprise_id IN (SELECT enterprise_id FROM raw.enterprises))",
    )
    assert q(wh, "SELECT count(*) FROM marts.guarantee_circles") == [(0,)]


# --- the generator's circles, found by the mart --------------------------------------------------


def test_generated_circles_are_found_exactly(tmp_path: Path) -> None:
    """Each circle of guarantee_circles is exactly one circle of the generator's truth (the
    generator's other guarantees never close a cycle), and most truth circles are found."""
    import polars as pl

    from synthetic.generator import generate
    from synthetic.network import NetworkConfig

    landing = tmp_path / "landing"
    generate(landing, 1500, 5, "parquet", end_month="2024-12", months=24,
             network_config=NetworkConfig(circles=0.3))  # fmt: skip
    wh = _build(tmp_path, landing, "generated")
    truth = pl.read_parquet(tmp_path / "landing_truth" / "guarantee_circles.parquet")
    members = {no: frozenset(g["enterprise_id"]) for (no,), g in truth.group_by(["circle_no"])}
    of_firm = {e: m for m in members.values() for e in m}
    found = q(wh, "SELECT month_end, circle_id, member_ids FROM marts.guarantee_circles")
    assert found
    for month_end, circle_id, ids in found:
        assert frozenset(ids) == of_firm[circle_id], (month_end, circle_id)
    assert len({c for _, c, _ in found}) > 0.5 * len(members)
