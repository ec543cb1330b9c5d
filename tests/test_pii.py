"""Personal data (contract: enterprises.legal_rep_name, legal_rep_id_number) stays in raw.

A small warehouse is built from hand-made raw tables carrying distinctive PII values; after
`dbt run` of the whole project no column of any table or view in schemas staging,
intermediate or marts is named like a PII column, and no VARCHAR value in those schemas
equals or contains a raw PII value.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import duckdb
import pytest

from assets.contract import TABLES, raw_table_ddl, uscc_check_char
from assets.core.dbt_project import run_dbt

PII_COLUMNS = [c.name for t in TABLES.values() for c in t.columns if c.pii]
EXPOSED_SCHEMAS = ("staging", "intermediate", "marts")


def uscc(n: int) -> str:
    first17 = f"91440300MA5PQ{n:04d}"
    return first17 + uscc_check_char(first17)


ENTS = [
    (uscc(1), "Qingfeng Trading", "F", "Ouyang Zhenhua-PII", "44030319800101001X"),
    (uscc(2), "Hongda Machinery", "C", "Shangguan Lingyun-PII", "440303198502020028"),
    (uscc(3), "Xinyuan Foods", "C", "欧阳振华测试", "440303199003030036"),
]


def build_raw(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("CREATE SCHEMA IF NOT EXISTS raw")
    for t in TABLES.values():
        con.execute(raw_table_ddl(t))

    def ins(table: str, rows: list[tuple]) -> None:
        cols = TABLES[table].column_names
        ph = ", ".join("?" for _ in cols)
        con.executemany(f"INSERT INTO raw.{table} ({', '.join(cols)}) VALUES ({ph})", rows)

    ins("enterprises", [
        (e, name, ind, "440303", date(2015, 1, 1), 1_000_000, 10, "small", "active", rep, idn)
        for e, name, ind, rep, idn in ENTS
    ])
    tax, bills = [], []
    for i in range(24):
        y, m = 2023 + (6 + i) // 12, (6 + i) % 12 + 1
        p = f"{y:04d}-{m:02d}"
        pe = date(y + (m == 12), m % 12 + 1, 1) - timedelta(days=1)
        for k, (e, *_rest) in enumerate(ENTS):
            rev = 100_000 * (k + 1)
            tax.append((e, p, "vat", rev, rev * 0.1, rev * 0.1, pe + timedelta(days=15)))
            bills.append((e, p, "electricity", 1000, 800, 800, pe + timedelta(days=10)))
    ins("tax_filings", tax)
    ins("utility_bills", bills)
    ins("tax_ratings", [(ENTS[0][0], 2024, "B")])
    ins("registry_events", [
        ("EV1", ENTS[0][0], date(2025, 3, 1), "legal_rep_change", None,
         "legal representative changed"),
        ("EV2", ENTS[1][0], date(2025, 4, 1), "court_judgment_defendant", 10_000, None),
    ])
    ins("loans", [
        ("LP1", ENTS[0][0], "B01", "working_capital_loan", "working_capital", date(2024, 1, 5),
         date(2024, 1, 10), date(2025, 1, 10), 120_000, 0.05, "equal_installment", "none",
         None, "none", 0),
    ])
    ins("repayment_schedule", [
        ("LP1", i + 1, date(2024 + (i + 1) // 12, (i + 1) % 12 + 1, 10), 10_000, 500)
        for i in range(12)
    ])
    ins("repayments", [("RP1", "LP1", date(2024, 2, 10), 10_500)])
    ins("fund_flows", [("FF1", "LP1", date(2024, 1, 20), 50_000, "supplier", None)])
    ins("loan_applications", [
        ("AP1", ENTS[2][0], date(2025, 5, 20), 200_000, 12, None, "working_capital"),
    ])


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("pii")
    wh = tmp / "w.duckdb"
    con = duckdb.connect(str(wh))
    build_raw(con)
    con.close()
    # Every dbt model but the decision marts (they read the Python engine's output).
    run_dbt(
        ["run", "--exclude", "tag:decisions"],
        warehouse=wh,
        dbt_vars={"as_of_date": "2025-06-30"},
        target_path=tmp / "target",
    )
    return wh


def exposed_columns(con) -> list[tuple[str, str, str, str]]:
    return con.execute(
        "SELECT table_schema, table_name, column_name, data_type FROM information_schema.columns "
        f"WHERE table_schema IN {EXPOSED_SCHEMAS!r}"
    ).fetchall()


def test_models_were_built(warehouse):
    con = duckdb.connect(str(warehouse), read_only=True)
    tables = {(s, t) for s, t, _, _ in exposed_columns(con)}
    con.close()
    assert ("staging", "stg_registry__enterprises") in tables
    assert ("marts", "fct_enterprise_month_end") in tables


def test_no_pii_column_names(warehouse):
    con = duckdb.connect(str(warehouse), read_only=True)
    cols = exposed_columns(con)
    con.close()
    bad = [
        (s, t, c) for s, t, c, _ in cols
        if c.lower() in PII_COLUMNS or "legal_rep_id" in c.lower() or "legal_rep_name" in c.lower()
    ]
    assert PII_COLUMNS == ["legal_rep_name", "legal_rep_id_number"]
    assert not bad, f"PII columns exposed: {bad}"


def test_no_pii_values(warehouse):
    con = duckdb.connect(str(warehouse), read_only=True)
    pii = [v for (v,) in con.execute(
        "SELECT legal_rep_name FROM raw.enterprises UNION ALL "
        "SELECT legal_rep_id_number FROM raw.enterprises"
    ).fetchall()]
    assert len(pii) == 2 * len(ENTS)
    hits = []
    for s, t, c, typ in exposed_columns(con):
        if not typ.upper().startswith("VARCHAR"):
            continue
        n = con.execute(
            f'SELECT count(*) FROM "{s}"."{t}" '
            f'WHERE list_has_any([cast("{c}" as varchar)], ?) '
            f'OR len(list_filter(?, lambda v: contains(cast("{c}" as varchar), v))) > 0',
            [pii, pii],
        ).fetchone()[0]
        if n:
            hits.append((s, t, c, n))
    con.close()
    assert not hits, f"raw PII values found in {hits}"
