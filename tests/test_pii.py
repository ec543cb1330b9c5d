"""Personal data (contract: enterprises.legal_rep_name, legal_rep_id_number) stays in raw.

A small warehouse is built from hand-made raw tables carrying distinctive PII values; after
`dbt run` of the whole project no column of any table or view in schemas staging,
intermediate or marts is named like a PII column, and no VARCHAR value in those schemas
equals or contains a raw PII value. A whole `risk refresh` of a generated landing directory
(and `risk backtest`) leaves no personal value in any file of DAGSTER_HOME (run database,
logs), the exports or dbt's target. `legal_rep_key` is a keyed hash (HMAC-SHA256) whose key
lives outside the repository.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import shutil
import stat
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pytest
from conftest import CONTRACT_EXAMPLES, GeneratedNight

from assets.contract import LINEAGE_COLUMNS, TABLES, raw_table_ddl, uscc_check_char
from assets.core import secrets
from assets.core.dbt_project import dbt_project, run_dbt
from assets.ingestion import ingest_all

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
         None, "none", 0, None),
    ])
    ins("repayment_schedule", [
        ("LP1", i + 1, date(2024 + (i + 1) // 12, (i + 1) % 12 + 1, 10), 10_000, 500)
        for i in range(12)
    ])
    ins("repayments", [("RP1", "LP1", date(2024, 2, 10), 10_500)])
    ins("fund_flows", [("FF1", "LP1", date(2024, 1, 20), 50_000, "supplier", None)])
    ins("loan_applications", [
        ("AP1", ENTS[2][0], date(2025, 5, 20), 200_000, 12, None, "working_capital", None),
    ])


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("pii")
    wh = tmp / "w.duckdb"
    con = duckdb.connect(str(wh))
    build_raw(con)
    con.close()
    # Every dbt model but the decision marts (they read the Python engine's output).
    run_dbt(["seed"], warehouse=wh, target_path=tmp / "target")
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


def test_dbt_target_of_the_test_holds_no_personal_value(warehouse):
    files = [p for p in (warehouse.parent / "target").rglob("*") if p.is_file()]
    assert any(p.name == "manifest.json" for p in files)
    values = [v for *_rest, rep, idn in ENTS for v in (rep, idn)]
    found = [
        (str(p), v) for p in files for v in values if any(n in p.read_bytes() for n in needles(v))
    ]
    assert not found, f"personal values in dbt's target: {found}"


# --- the keyed pseudonym ------------------------------------------------------------------------


def legal_rep_keys(warehouse: Path) -> dict[str, str]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return dict(
            con.execute("SELECT legal_rep_id_number, legal_rep_key FROM raw.enterprises").fetchall()
        )


def test_key_file_is_created_0600_and_keys_are_stable_per_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "dagster_home"
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.delenv("RISK_PSEUDONYM_KEY", raising=False)
    landing = tmp_path / "landing"
    shutil.copytree(CONTRACT_EXAMPLES / "landing", landing)

    first = legal_rep_keys_after_load(tmp_path / "a.duckdb", landing)
    key_file = home / "pseudonym.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    key = key_file.read_text().strip()
    assert re.fullmatch("[0-9a-f]{64}", key)  # 32 random bytes, hex
    for id_number, pseudonym in first.items():
        expected = hmac.new(key.encode(), id_number.upper().encode(), hashlib.sha256).hexdigest()
        assert pseudonym == expected
    # Another run (another warehouse, same key file): the same id gives the same key.
    assert legal_rep_keys_after_load(tmp_path / "b.duckdb", landing) == first
    assert key_file.read_text().strip() == key
    # Another secret gives other keys; the key never reaches the warehouse.
    monkeypatch.setenv("RISK_PSEUDONYM_KEY", "another secret")
    other = legal_rep_keys_after_load(tmp_path / "c.duckdb", landing)
    assert other.keys() == first.keys() and not set(other.values()) & set(first.values())
    # A warehouse keyed with the old secret is re-keyed at its next load: "same person" holds.
    assert legal_rep_keys_after_load(tmp_path / "a.duckdb", landing) == other
    for wh in ("a", "b", "c"):
        assert key.encode() not in (tmp_path / f"{wh}.duckdb").read_bytes()


def legal_rep_keys_after_load(warehouse: Path, landing: Path) -> dict[str, str]:
    ingest_all(warehouse, landing)
    keys = legal_rep_keys(warehouse)
    assert keys and all(v and len(v) == 64 for v in keys.values())
    return keys


def test_a_key_file_readable_by_others_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    monkeypatch.delenv("RISK_PSEUDONYM_KEY", raising=False)
    (tmp_path / "pseudonym.key").write_text("00" * 32)
    (tmp_path / "pseudonym.key").chmod(0o644)
    with pytest.raises(PermissionError, match="chmod 600"):
        secrets.pseudonym_key()


def test_a_warehouse_without_legal_rep_key_gets_it_filled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A warehouse loaded before the column existed: the column is added, old rows filled."""
    monkeypatch.setenv("RISK_PSEUDONYM_KEY", "k1")
    landing = tmp_path / "landing"
    shutil.copytree(CONTRACT_EXAMPLES / "landing", landing)
    warehouse = tmp_path / "w.duckdb"
    ent = TABLES["enterprises"]
    cols = [f'"{c.name}" {c.sql_type}' for c in ent.columns]
    cols += [f"{n} {t}" for n, t in LINEAGE_COLUMNS.items()]
    with duckdb.connect(str(warehouse)) as con:
        con.execute("CREATE SCHEMA raw")
        con.execute(f"CREATE TABLE raw.enterprises ({', '.join(cols)})")
        con.execute(
            f"INSERT INTO raw.enterprises ({', '.join(ent.column_names)}) VALUES "
            f"({', '.join('?' for _ in ent.columns)})",
            [
                ENTS[0][0],
                "Old Co",
                "C",
                "330102",
                date(2015, 1, 1),
                1,
                None,
                None,
                "active",
                "Old Rep",
                " 44030319800101001x ",
            ],
        )
    keys = legal_rep_keys_after_load(warehouse, landing)
    assert keys[" 44030319800101001x "] == secrets.keyed_hash("44030319800101001X", b"k1")


def test_previews_never_show_personal_data() -> None:
    from assets.ingestion_assets import preview_columns

    shown = preview_columns("enterprises")
    assert "enterprise_id" in shown
    assert not {"legal_rep_name", "legal_rep_id_number", "legal_rep_key"} & set(shown)


# --- a whole refresh ----------------------------------------------------------------------------


def personal_values(landing: Path) -> set[str]:
    """Every legal representative's name and id number in the landing's enterprise files."""
    with duckdb.connect() as con:
        rows = con.execute(
            "SELECT legal_rep_name, legal_rep_id_number FROM read_parquet(?)",
            [[str(p) for p in sorted((landing / "enterprises").glob("*.parquet"))]],
        ).fetchall()
    return {v for row in rows for v in row if v}


def needles(value: str) -> set[bytes]:
    """The value as stored in a file: UTF-8, and JSON-escaped (e.g. Dagster's event log)."""
    return {
        value.encode(),
        json.dumps(value)[1:-1].encode(),
        json.dumps(value)[1:-1].upper().encode(),
    }


def test_refresh_leaves_no_personal_value_outside_raw(generated_night: GeneratedNight) -> None:
    """After a whole refresh and back-test (conftest's `generated_night`, run as a bank would
    in subprocesses), no file the run wrote outside the raw tables holds a personal value."""
    night = generated_night
    values = personal_values(night.landing)
    assert len(values) > 300  # names and id numbers of 300 legal representatives
    assert (night.dagster_home / "pseudonym.key").exists()  # the key was made where it belongs

    target = Path(dbt_project.project_dir) / "target"
    run_targets = sorted(target.glob(f"*-{night.refresh_run_id[:7]}-*"))
    assert run_targets, f"no dbt target of run {night.refresh_run_id} under {target}"
    searched = [night.dagster_home, night.exports, *run_targets]
    files = [p for root in searched for p in root.rglob("*") if p.is_file()]
    # dbt's shared files (manifest, logs) the run may have rewritten.
    for shared in (target, Path(dbt_project.project_dir) / "logs"):
        if shared.is_dir():
            files += [p for p in shared.iterdir()
                      if p.is_file() and p.stat().st_mtime >= night.refresh_started]
    assert any(p.suffix == ".db" for p in files)  # the run database is searched too
    assert list(night.exports.rglob("watchlist.csv"))
    found = []
    for path in files:
        data = path.read_bytes()
        found += [(str(path), v) for v in values if any(n in data for n in needles(v))]
    assert not found, f"personal values outside raw: {found[:10]} ({len(found)} in all)"
    # The warehouse analysts read (published after the refresh) holds none either.
    assert not values_in_warehouse(night.warehouse, sorted(values))
    # Money beyond the plausibility bound was quarantined, not a mart overflow failing the run.
    with duckdb.connect(str(night.warehouse), read_only=True) as con:
        reasons = con.execute(
            "SELECT reason FROM raw.rejected_rows WHERE source_file LIKE '%huge.csv'"
        ).fetchall()
    assert reasons == [("principal: '6000000000000000' is beyond the plausibility bound "
                        "of 1000000000000 CNY",)] * 2


def values_in_warehouse(warehouse: Path, values: list[str]) -> list[tuple[str, str, str]]:
    """(schema, table, column) of every text column of the file holding one of `values`."""
    hits = []
    with duckdb.connect(str(warehouse), read_only=True) as con:
        columns = con.execute(
            "SELECT table_schema, table_name, column_name FROM information_schema.columns "
            "WHERE data_type = 'VARCHAR' OR data_type = 'JSON'"
        ).fetchall()
        for s, t, c in columns:
            n = con.execute(
                f'SELECT count(*) FROM "{s}"."{t}" WHERE '
                f'len(list_filter(?, lambda v: contains(cast("{c}" as varchar), v))) > 0',
                [values],
            ).fetchone()[0]
            if n:
                hits.append((s, t, c))
    return hits
