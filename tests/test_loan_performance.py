"""Loan performance marts against the contract's worked examples (contract sections 2-4).

Loads `tests/fixtures/contract_examples/landing` into a fresh DuckDB file with the project's
ingestion, runs `dbt build` (the loan-performance selection) as of 2024-09-30 and 2024-12-31
and compares `marts.fct_loan_month_end` with the expected CSV row for row, value for value
(money to the cent). The dbt unit tests (the tricky cases of the loan-performance logic) run
as part of each `dbt build`; a separate test asserts they all passed.
"""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from assets.contract import LOAD_ORDER
from assets.core.dbt_project import run_dbt
from assets.ingestion import ingest_all

ROOT = Path(__file__).resolve().parents[1]

EXAMPLES = ROOT / "tests" / "fixtures" / "contract_examples"
LANDING = EXAMPLES / "landing"
AS_OF_DATES = ("2024-09-30", "2024-12-31")
CONTRACT_COLUMNS = (
    "loan_id",
    "enterprise_id",
    "month_end",
    "outstanding_principal",
    "dpd",
    "risk_class",
    "ifrs9_stage",
    "is_default",
)
#: This test's part of the project: the loan-performance marts, everything upstream of them
#: (with their data and unit tests), and the other core-banking/registry staging models.
#: Other marts are other tests' business, so a half-finished one cannot break this one.
SELECTION = (
    "+fct_loan_month_end",
    "+portfolio_monthly",
    "path:models/staging/core_banking",
    "path:models/staging/registry",
)


def _land_raw(warehouse: Path, landing: Path) -> None:
    """Raw tables for `landing`, loaded by the project's own ingestion (contract section 1)."""
    result = ingest_all(warehouse=warehouse, landing_dir=landing)
    assert set(result) == set(LOAD_ORDER)


def _dbt(
    tmp: Path, warehouse: Path, *args: str, as_of: str
) -> subprocess.CompletedProcess[str]:
    return run_dbt(
        list(args),
        warehouse=warehouse,
        dbt_vars={"as_of_date": as_of},
        target_path=tmp / "target",
        check=False,
    )


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    """One warehouse per as-of date, built with `dbt build` (unit tests included)."""
    tmp = tmp_path_factory.mktemp("loan_performance")
    results: dict[str, dict] = {}
    building = tmp / "w.duckdb"  # one path for every build: dbt parses the project once
    for as_of in AS_OF_DATES:
        _land_raw(building, LANDING)
        proc = _dbt(
            tmp,
            building,
            "build",
            "--select",
            *SELECTION,
            as_of=as_of,
        )
        warehouse = building.rename(tmp / f"w_{as_of}.duckdb")
        run_results = json.loads((tmp / "target" / "run_results.json").read_text())
        shutil.copy(tmp / "target" / "run_results.json", tmp / f"run_results_{as_of}.json")
        results[as_of] = {
            "warehouse": warehouse,
            "returncode": proc.returncode,
            "output": proc.stdout[-8000:] + proc.stderr[-4000:],
            "run_results": run_results,
        }
    return results


def _expected(as_of: str) -> list[tuple]:
    with open(EXAMPLES / f"expected_fct_loan_month_end_as_of_{as_of}.csv", newline="") as f:
        return [
            (
                r["loan_id"],
                r["enterprise_id"],
                r["month_end"],
                Decimal(r["outstanding_principal"]),
                int(r["dpd"]),
                r["risk_class"],
                int(r["ifrs9_stage"]),
                {"True": True, "False": False}[r["is_default"]],
            )
            for r in csv.DictReader(f)
        ]


def _actual(warehouse: Path) -> list[tuple]:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        rows = con.execute(
            f"select {', '.join(CONTRACT_COLUMNS)} from marts.fct_loan_month_end "
            "order by loan_id, month_end"
        ).fetchall()
    finally:
        con.close()
    return [(r[0], r[1], r[2].isoformat(), r[3], r[4], r[5], r[6], r[7]) for r in rows]


@pytest.mark.parametrize("as_of", AS_OF_DATES)
def test_dbt_build_succeeds(built: dict, as_of: str) -> None:
    res = built[as_of]
    failed = [
        (r["unique_id"], r["status"], r.get("message"))
        for r in res["run_results"]["results"]
        if r["status"] not in ("success", "pass", "warn", "skipped")
    ]
    assert res["returncode"] == 0 and not failed, f"{failed}\n{res['output']}"


@pytest.mark.parametrize("as_of", AS_OF_DATES)
def test_fct_loan_month_end_matches_contract_examples(built: dict, as_of: str) -> None:
    expected = _expected(as_of)
    actual = _actual(built[as_of]["warehouse"])
    assert len(actual) == len(expected)
    for exp, act in zip(expected, actual, strict=True):
        assert act == exp, f"as of {as_of}: expected {exp}, got {act}"
        assert act[3].as_tuple().exponent == -2  # money to the cent: DECIMAL(18,2)


def test_fct_loan_month_end_column_types(built: dict) -> None:
    con = duckdb.connect(str(built["2024-12-31"]["warehouse"]), read_only=True)
    try:
        types = dict(
            con.execute(
                "select column_name, data_type from information_schema.columns "
                "where table_schema = 'marts' and table_name = 'fct_loan_month_end'"
            ).fetchall()
        )
    finally:
        con.close()
    assert types["outstanding_principal"] == "DECIMAL(18,2)"
    assert types["dpd"] == "INTEGER"
    assert types["ifrs9_stage"] == "INTEGER"
    assert types["is_default"] == "BOOLEAN"
    assert types["month_end"] == "DATE"


def test_portfolio_monthly_reconciles(built: dict) -> None:
    con = duckdb.connect(str(built["2024-12-31"]["warehouse"]), read_only=True)
    try:
        pm = con.execute(
            "select month_end::varchar, loans, outstanding_principal, npl_principal, "
            "default_count from marts.portfolio_monthly order by month_end"
        ).fetchall()
        fct = con.execute(
            "select month_end::varchar, count(*), sum(outstanding_principal) "
            "from marts.fct_loan_month_end group by 1 order by 1"
        ).fetchall()
    finally:
        con.close()
    by_month = {r[0]: r for r in pm}
    for month_end, n, outstanding in fct:
        assert by_month[month_end][1] == n
        assert by_month[month_end][2] == outstanding
    # L2 defaults 2024-07-10, L3 2024-12-01; all examples are branch B001, industry C.
    defaults = {r[0]: r[4] for r in pm if r[4]}
    assert defaults == {"2024-07-31": 1, "2024-12-31": 1}
    # 2024-12-31: L3 (100000.00) and L4 (2499.98, lifted by the whole-borrower rule) are NPL.
    assert by_month["2024-12-31"][3] == Decimal("102499.98")


@pytest.mark.parametrize("as_of", AS_OF_DATES)
def test_dbt_unit_tests_pass(built: dict, as_of: str) -> None:
    unit = [
        r for r in built[as_of]["run_results"]["results"] if r["unique_id"].startswith("unit_test.")
    ]
    assert len(unit) >= 9, "the dbt unit tests of the loan-performance logic did not run"
    failed = [(r["unique_id"], r.get("message")) for r in unit if r["status"] != "pass"]
    assert not failed, failed
