"""Exports: the watchlist files and the self-contained HTML report, from a hand-built warehouse."""

from __future__ import annotations

import csv
import re
from datetime import date
from pathlib import Path

import altair as alt
import duckdb
import openpyxl
import pytest
from dagster import materialize
from markupsafe import escape

from assets.core.resources import RiskWarehouse
from assets.exports import watchlist_report
from assets.report import charts
from assets.report.model import ReportData, as_items
from assets.report.render import render_report

AS_OF = "2025-06-30"
E1, E2, E3 = "91110000MA00000001", "91110000MA00000002", "91110000MA00000003"
SCRIPT_REASON = "<script>alert('x')</script> overdue tax"

WATCHLIST_DDL = """
    CREATE TABLE marts.{name} (
        as_of_date DATE, enterprise_id VARCHAR, tier VARCHAR, risk_score DOUBLE,
        signals VARCHAR[], reasons VARCHAR[], first_flagged_date DATE, status VARCHAR,
        recommended_action VARCHAR)
"""


def _build_warehouse(path: Path, *, empty: bool = False, screening: bool = False) -> None:
    con = duckdb.connect(str(path))
    con.execute("CREATE SCHEMA marts")
    con.execute("CREATE SCHEMA raw")
    con.execute(WATCHLIST_DDL.format(name="watchlist"))
    con.execute(WATCHLIST_DDL.format(name="watchlist_history"))
    rows = [
        (
            AS_OF,
            E1,
            "red",
            88.5,
            ["S01", "S07"],
            ["连续三个月欠税", SCRIPT_REASON],
            AS_OF,
            "new",
            "冻结额度并现场检查",
        ),
        (
            AS_OF,
            E2,
            "amber",
            61.0,
            ["S07"],
            ["utility arrears, 2 months"],
            "2025-05-31",
            "continuing",
            "enhanced monitoring",
        ),
        (
            AS_OF,
            E3,
            "red",
            75.25,
            ["S02"],
            ["court judgment as defendant"],
            "2025-05-31",
            "escalated",
            "reduce exposure",
        ),
    ]
    if not empty:
        con.executemany("INSERT INTO marts.watchlist VALUES (?,?,?,?,?,?,?,?,?)", rows)
    con.executemany("INSERT INTO marts.watchlist_history VALUES (?,?,?,?,?,?,?,?,?)", rows)
    con.executemany(
        "INSERT INTO marts.watchlist_history VALUES (?,?,?,?,?,?,?,?,?)",
        [
            (
                "2025-05-31",
                E2,
                "amber",
                55.0,
                ["S07"],
                ["utility arrears"],
                "2025-05-31",
                "new",
                "enhanced monitoring",
            ),
            (
                "2025-05-31",
                E3,
                "amber",
                58.0,
                ["S02"],
                ["court judgment"],
                "2025-05-31",
                "new",
                "enhanced monitoring",
            ),
        ],
    )
    con.execute(
        """CREATE TABLE marts.portfolio_monthly (month_end DATE, branch_id VARCHAR,
           industry_code VARCHAR, loans BIGINT, outstanding_principal DOUBLE,
           npl_principal DOUBLE, npl_ratio DOUBLE, default_count BIGINT)"""
    )
    con.executemany(
        "INSERT INTO marts.portfolio_monthly VALUES (?,?,?,?,?,?,?,?)",
        [
            ("2025-05-31", "BR001", "C", 10, 1000.0, 50.0, 0.05, 0),
            ("2025-05-31", "BR002", "F", 5, 500.0, 0.0, 0.0, 0),
            ("2025-07-31", "BR001", "C", 10, 1000.0, 900.0, 0.9, 3),  # after D: ignored
        ],
    )
    con.execute("CREATE TABLE raw.enterprises (enterprise_id VARCHAR, name VARCHAR)")
    con.executemany(
        "INSERT INTO raw.enterprises VALUES (?, ?)",
        [(E1, "杭州示例机械制造有限公司"), (E2, "Acme Trading Co."), (E3, "深圳某科技")],
    )
    if screening:
        con.execute(
            """CREATE TABLE marts.application_screening (application_id VARCHAR,
               enterprise_id VARCHAR, decision VARCHAR, reasons VARCHAR,
               recommended_product VARCHAR, recommended_limit DOUBLE,
               guarantee_recommended BOOLEAN)"""
        )
        con.executemany(
            "INSERT INTO marts.application_screening VALUES (?,?,?,?,?,?,?)",
            [
                ("APP1", E1, "decline", "on red watchlist；欠税", None, None, False),
                ("APP2", E2, "approve", "", "tax_credit_loan", 500000.0, True),
            ],
        )
    con.close()


def _run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, wh: Path) -> tuple[Path, dict]:
    exports = tmp_path / "exports"
    monkeypatch.setenv("RISK_EXPORTS_DIR", str(exports))
    result = materialize(
        [watchlist_report],
        resources={
            "warehouse": RiskWarehouse(warehouse=str(wh), landing_dir=str(tmp_path), as_of=AS_OF)
        },
        partition_key=AS_OF,
    )
    assert result.success
    mats = result.asset_materializations_for_node(watchlist_report.op.name)
    return exports / AS_OF, mats[0].metadata


def _read_csv(path: Path) -> tuple[list[str], list[list[str]]]:
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")
    with path.open(encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.reader(fh))
    return rows[0], rows[1:]


def _assert_self_contained(page: str) -> None:
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page, re.I)
    assert "<link" not in page.lower()
    assert "<script" not in page.lower()  # we ship no JS, and data never gets in unescaped


ZH_HEADER = [
    "企业名称", "统一社会信用代码", "支行", "客户经理", "行业", "贷款余额（元）", "预警等级",
    "违约概率（12个月）", "风险分", "状态", "首次预警日期", "预警原因", "建议措施",
]
DIGITS = "911100001234567890"  # an all-digit credit code: Excel would show 9.11E+17


def test_exports_match_the_watchlist(tmp_path, monkeypatch):
    wh = tmp_path / "wh.duckdb"
    _build_warehouse(wh)
    con = duckdb.connect(str(wh))
    con.execute(
        "INSERT INTO marts.watchlist VALUES (?, ?, 'amber', 10.0, ['S09'], ['x'], ?, "
        "'continuing', NULL)",
        [AS_OF, DIGITS, AS_OF],
    )
    con.close()
    monkeypatch.delenv("RISK_REPORT_LANG", raising=False)
    out, meta = _run(tmp_path, monkeypatch, wh)

    con = duckdb.connect(str(wh), read_only=True)
    expected = con.execute(
        "SELECT * FROM marts.watchlist ORDER BY risk_score DESC, enterprise_id"
    ).fetchall()

    # The officer's CSV: Chinese headers, codes as ="..." so Excel keeps them text.
    header, rows = _read_csv(out / "watchlist.csv")
    assert header == ZH_HEADER
    assert [r[1] for r in rows] == [f'="{e[1]}"' for e in expected]
    assert rows[0][0] == "杭州示例机械制造有限公司"
    assert rows[0][6] == "红色" and rows[0][9] == "新增"
    assert rows[0][11] == "连续三个月欠税；" + SCRIPT_REASON  # reasons joined, full text
    assert rows[0][12] == "冻结额度并现场检查"

    # The workbook: every firm, then one sheet per branch; codes are text cells.
    wb = openpyxl.load_workbook(out / "watchlist.xlsx")
    assert wb.sheetnames[0] == "预警名单" and len(wb.sheetnames) >= 2
    ws = wb[wb.sheetnames[0]]
    assert [c.value for c in ws[1]] == ZH_HEADER
    assert ws.freeze_panes == "C2" and ws.auto_filter.ref.startswith("A1:")
    codes = [ws.cell(row=i, column=2) for i in range(2, ws.max_row + 1)]
    assert [c.value for c in codes] == [e[1] for e in expected]
    assert all(c.data_type == "s" and c.number_format == "@" for c in codes)
    assert ws.column_dimensions["L"].width >= 60  # reasons get the room

    parquet = con.execute(f"SELECT * FROM read_parquet('{out / 'watchlist.parquet'}')").fetchall()
    assert parquet == expected
    con.close()

    assert meta["dagster/row_count"].value == 4
    assert meta["new_entries"].value == 1
    assert E1 in meta["preview"].value
    assert not (out / "application_screening.csv").exists()

    page = (out / "report.html").read_text(encoding="utf-8")
    _assert_self_contained(page)
    assert "<svg" in page
    assert str(escape(SCRIPT_REASON)) in page
    assert "小微企业信贷预警报告" in page and "一分钟摘要" in page
    assert "连续三个月欠税" in page and "杭州示例机械制造有限公司" in page
    assert ">红色<" in page and ">升级<" in page
    # What changed since the refresh before (2025-05-31): E1 new, E3 escalated, none cleared.
    assert "与上次刷新（2025-05-31）相比" in page
    summary = page.split('id="summary"')[1].split("<h2")[0]
    assert "新增（1）" in summary and "升级为红色（1）" in summary
    # Tier counts for both dates (history): 2025-05-31 amber 2; 2025-06-30 red 2, amber 1.
    tiers = page.split('id="tiers"')[1].split("<h2")[0]
    cells = re.findall(r"<tr><td[^>]*>([^<]*)</td><td[^>]*>(\d+)</td><td[^>]*>(\d+)</td>"
                       r"<td[^>]*>(\d+)</td></tr>", tiers)
    assert ("2025-05-31", "0", "2", "2") in cells and ("2025-06-30", "2", "1", "3") in cells
    # NPL ratio from the latest month end <= D only.
    npl = page.split('id="npl"')[1].split("<h2")[0]
    assert "月末 2025-05-31" in npl and "5.00%" in npl and "90.00%" not in npl
    # The watchlist table has no technical columns.
    wl = page.split('id="watchlist"')[1].split("<h2")[0]
    assert "clearing" not in wl and "catalog_version" not in wl


def test_report_and_sheets_in_english(tmp_path, monkeypatch):
    wh = tmp_path / "wh.duckdb"
    _build_warehouse(wh)
    monkeypatch.setenv("RISK_REPORT_LANG", "en")
    out, _ = _run(tmp_path, monkeypatch, wh)
    header, rows = _read_csv(out / "watchlist.csv")
    assert header[:3] == ["name", "credit code", "branch"] and rows[0][6] == "red"
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "SME credit early-warning report" in page and 'lang="en"' in page
    assert "小微企业信贷预警报告" not in page


def test_empty_watchlist(tmp_path, monkeypatch):
    wh = tmp_path / "wh.duckdb"
    _build_warehouse(wh, empty=True)
    out, meta = _run(tmp_path, monkeypatch, wh)
    header, rows = _read_csv(out / "watchlist.csv")
    assert header == ZH_HEADER and rows == []
    con = duckdb.connect()
    assert con.execute(f"SELECT count(*) FROM '{out / 'watchlist.parquet'}'").fetchone()[0] == 0
    con.close()
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "名单为空" in page
    assert meta["dagster/row_count"].value == 0
    assert openpyxl.load_workbook(out / "watchlist.xlsx").sheetnames == ["预警名单"]


def test_missing_tables_give_a_message(tmp_path, monkeypatch):
    wh = tmp_path / "wh.duckdb"
    duckdb.connect(str(wh)).close()  # a warehouse with no marts yet
    out, meta = _run(tmp_path, monkeypatch, wh)
    header, rows = _read_csv(out / "watchlist.csv")
    assert "统一社会信用代码" in header and rows == []
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "marts.watchlist does not exist yet" in page
    assert "marts.portfolio_monthly does not exist yet" in page
    assert sorted(meta["missing_tables"].value) == [
        "portfolio_monthly",
        "watchlist",
        "watchlist_history",
    ]


def test_application_screening_csv(tmp_path, monkeypatch):
    wh = tmp_path / "wh.duckdb"
    _build_warehouse(wh, screening=True)
    out, meta = _run(tmp_path, monkeypatch, wh)
    header, rows = _read_csv(out / "application_screening.csv")
    assert header == [
        "application_id",
        "enterprise_id",
        "decision",
        "reasons",
        "recommended_product",
        "recommended_limit",
        "guarantee_recommended",
    ]
    assert sorted(r[0] for r in rows) == ["APP1", "APP2"]
    assert "on red watchlist；欠税" in {r[3] for r in rows}
    assert meta["application_screening_rows"].value == 2
    assert 'id="screening"' in (out / "report.html").read_text(encoding="utf-8")


def test_text_signals_and_reasons_are_split():
    assert as_items("S01, S02;S03") == ["S01", "S02", "S03"]
    assert as_items('["a", "b"]') == ["a", "b"]
    assert as_items("late, twice; court judgment", reasons=True) == [
        "late, twice",
        "court judgment",
    ]
    assert as_items(None) == [] and as_items(["x", None, " "]) == ["x"]


def test_render_is_pure_and_escapes():
    data = ReportData(
        as_of=date(2025, 6, 30),
        watchlist_columns=["enterprise_id", "tier", "reasons", "signals", "status"],
        watchlist_rows=[
            {
                "enterprise_id": "E<1>",
                "tier": "red",
                "reasons": "a <b>; c",
                "signals": "S1,S2",
                "status": "new",
            }
        ],
        tier_history=[("2025-06-30", "red", 1)],
    )
    page = render_report(data, lang="en")
    assert page == render_report(data, lang="en").replace(data.generated_at, data.generated_at)
    assert "E&lt;1&gt;" in page and "a &lt;b&gt;" in page and "a <b>" not in page
    # No NPL or screening data here: empty charts become a note, not an empty SVG.
    assert charts.bar_chart([], title="t") is None
    assert charts.tier_chart([], {}, title="t") is None
    svg = charts.to_svg(charts.tier_chart(["d<1"], {("d<1", "red"): 2}, title="x&y"))
    assert "d&lt;1" in svg and "d<1" not in svg


def test_text_signals_and_reasons_in_the_mart(tmp_path, monkeypatch):
    """The early-warning mart may store signals/reasons as text rather than VARCHAR[]."""
    wh = tmp_path / "wh.duckdb"
    _build_warehouse(wh)
    con = duckdb.connect(str(wh))
    con.execute(
        "CREATE OR REPLACE TABLE marts.watchlist AS SELECT * REPLACE ("
        "array_to_string(signals, ',') AS signals, array_to_string(reasons, '; ') AS reasons) "
        "FROM marts.watchlist"
    )
    con.close()
    out, _ = _run(tmp_path, monkeypatch, wh)
    _, rows = _read_csv(out / "watchlist.csv")
    assert rows[0][11] == "连续三个月欠税；" + SCRIPT_REASON
    page = (out / "report.html").read_text(encoding="utf-8")
    reasons = page.split('id="reasons"')[1].split("<h2")[0]
    assert "S07: 2" in reasons  # grouped by signal, not by text
    wl = page.split('id="watchlist"')[1].split("<h2")[0]
    assert "连续三个月欠税" in wl and "&lt;script&gt;" in wl


def test_report_charts_are_inline_altair_svgs(tmp_path, monkeypatch):
    """Charts are Vega-rendered SVG in the page; nothing is fetched when it is opened."""
    wh = tmp_path / "wh.duckdb"
    _build_warehouse(wh, screening=True)
    out, _ = _run(tmp_path, monkeypatch, wh)
    page = (out / "report.html").read_text(encoding="utf-8")
    _assert_self_contained(page)
    # tiers, NPL trend, signals (no catalog topic in this fixture), NPL by industry and by
    # branch, screening decisions
    svgs = re.findall(r"<svg\b.*?</svg>", page, re.S)
    assert len(svgs) == 6
    assert all('class="marks"' in s and "role-mark" in s for s in svgs)  # Vega's renderer
    assert 'aria-label="S07: 2"' in page and 'aria-label="C: 5.00%"' in page
    # The only http(s) strings are the SVG/XLink namespace names, which are never fetched.
    urls = set(re.findall(r"https?://[^\s\"'<>)]+", page))
    assert urls <= {"http://www.w3.org/2000/svg", "http://www.w3.org/1999/xlink"}
    assert "url(" not in page and "@import" not in page


def test_chart_rendering_loads_no_url():
    """vl-convert is told to load nothing, so a chart can never reach the network."""
    with pytest.raises(ValueError, match="not allowed"):
        charts.to_svg(alt.Chart(alt.UrlData("https://example.com/x.csv")).mark_bar())


def test_report_shows_the_backtest_read_from_its_marts() -> None:
    """A back-test run on hand-made decisions and outcomes reaches the report: figures per
    window, ROC and calibration as inline SVG, the cut-off table, weak signals."""
    from assets.backtest.run import run_backtest
    from assets.report.queries import gather_report_data

    con = duckdb.connect()
    con.execute("CREATE SCHEMA marts")
    con.execute(
        "CREATE TABLE marts.fct_enterprise_outcomes AS SELECT 'E' || i AS enterprise_id, "
        "DATE '2025-01-31' AS month_end, 100000::DECIMAL(18,2) AS outstanding_principal, "
        "0 AS dpd_max, FALSE AS in_default, TRUE AS all_loans_current, "
        "CASE WHEN i % 10 = 0 THEN DATE '2025-04-30' END AS next_default_date, "
        "i % 10 = 0 AS default_within_6m, i % 10 = 0 AS default_within_12m, "
        "i % 10 = 0 AS dpd30_within_12m, TRUE AS outcome_observed_6m, "
        "TRUE AS outcome_observed_12m FROM range(200) AS t(i)"
    )
    con.execute(
        "CREATE TABLE decisions AS SELECT 'E' || i AS enterprise_id, DATE '2025-01-31' AS "
        "month_end, CASE WHEN i % 10 = 0 THEN 0.4 ELSE (i % 7) / 100.0 END AS pd, "
        "CASE WHEN i % 10 = 0 THEN 'red' ELSE 'green' END AS tier, i % 10 = 0 AS listed, "
        "CASE WHEN i % 3 = 0 THEN ['weak_one'] ELSE []::VARCHAR[] END AS signals "
        "FROM range(200) AS t(i)"
    )
    run_backtest(con, "decisions", model_version="m1", catalog_version="c1",
                 signal_ids=["weak_one", "never_fires"])
    data = gather_report_data(con, date(2026, 1, 31))
    assert data.backtest is not None and data.backtest.roc
    html = render_report(data, lang="en")
    section = html.split('id="backtest"')[1]
    assert "AUC, default within 6 months" in section and "1.000" in section
    assert section.count("<svg") == 2
    assert "Amber cut-off" in section and "weak_one" in section
    assert "never fired on performing firms" in section and "never_fires" in section
    assert "in list order" in section
    zh = render_report(data, lang="zh").split('id="backtest"')[1]
    assert "AUC（6个月内违约）" in zh
    assert "黄色阈值" in zh and zh.count("<svg") == 2


def test_every_catalog_reason_reads_in_chinese():
    """Each English reason the engine renders from a catalog template (signals and scorecard
    features) comes back as its Chinese template with the same values; unknown text stays."""
    from assets.report.i18n import reason_zh
    from assets.signals.catalog import _PLACEHOLDER, load_catalog

    catalog = load_catalog()
    templates = [(s.reason, s.reason_zh) for s in catalog.signals]
    templates += [(f.reason, f.reason_zh) for f in catalog.feature_reasons.values()]
    for en, zh in templates:
        assert zh and set(_PLACEHOLDER.findall(zh)) == set(_PLACEHOLDER.findall(en)), en
        values = {name: str(40 + i) for i, name in enumerate(_PLACEHOLDER.findall(en))}
        rendered = _PLACEHOLDER.sub(lambda m, v=values: v[m[1]], en)
        out = reason_zh(rendered, catalog)
        assert not re.search(r"[a-z]{4,}", out.replace("IFRS", "")), (rendered, out)
        assert all(v in out for v in values.values()), (rendered, out)
    for f in catalog.feature_reasons.values():  # what is missing reads in Chinese too
        if f.reason_missing:
            assert f.reason_missing_zh, f.reason_missing
            assert reason_zh(f.reason_missing, catalog) == f.reason_missing_zh
        if f.reason_zero:
            assert f.reason_zero_zh, f.reason_zero
            assert reason_zh(f.reason_zero, catalog) == f.reason_zero_zh
    en = "revenue of the last 3 months down 35% year on year"
    assert reason_zh(en) == "近3个月营收同比下降35%"
    assert reason_zh("a micro enterprise") == "微型企业"
    assert reason_zh("something else") == "something else"


# ---------------------------------------------------------------------------------------------
# The folder is replaced as a set


def _folder(path: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(path.iterdir())}


KILL_MID_WRITE = """
import os, sys, time
from datetime import date
from pathlib import Path
import duckdb
from assets.report import files
from assets.report.queries import gather_report_data

def stall(content, dest):  # the CSV, XLSX and Parquet are written; report.html never is
    Path(sys.argv[3]).write_text("writing")
    time.sleep(600)

files.write_text = stall
with duckdb.connect(sys.argv[1], read_only=True) as con:
    files.write_exports(con, gather_report_data(con, date.fromisoformat(sys.argv[4])),
                        Path(sys.argv[2]), lang="en")
"""


def test_a_kill_mid_write_leaves_the_last_complete_folder(tmp_path, monkeypatch):
    """kill -9 while a same-day re-run is writing: the folder is the last complete one, not a
    mix of old and new files; the next export clears the half-written folder."""
    import signal
    import subprocess
    import sys
    import time

    from assets.report import files
    from assets.report.queries import gather_report_data

    wh = tmp_path / "w.duckdb"
    _build_warehouse(wh)
    out = tmp_path / "exports" / AS_OF
    with duckdb.connect(str(wh), read_only=True) as con:
        files.write_exports(con, gather_report_data(con, date.fromisoformat(AS_OF)), out, "zh")
    complete = _folder(out)
    assert set(complete) >= {"watchlist.csv", "watchlist.xlsx", "watchlist.parquet",
                             "report.html"}

    flag = tmp_path / "stalled"
    proc = subprocess.Popen(
        [sys.executable, "-c", KILL_MID_WRITE, str(wh), str(out), str(flag), AS_OF],
        cwd=Path(__file__).resolve().parents[1],
    )
    try:
        deadline = time.monotonic() + 120
        while not flag.exists():
            assert proc.poll() is None and time.monotonic() < deadline, "writer never stalled"
            time.sleep(0.1)
        partial = list(out.parent.glob(f".{AS_OF}.writing-*"))
        assert partial and (partial[0] / "watchlist.csv").exists()  # new files, aside
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert _folder(out) == complete  # the English re-run never mixed into the Chinese set

    with duckdb.connect(str(wh), read_only=True) as con:
        files.write_exports(con, gather_report_data(con, date.fromisoformat(AS_OF)), out, "en")
    assert not list(out.parent.glob(f".{AS_OF}.*"))
    assert _folder(out)["watchlist.csv"] != complete["watchlist.csv"]  # now the English set


def test_folder_swap_without_atomic_exchange_recovers(tmp_path, monkeypatch):
    """Where renameat2 is missing the swap is two renames; a kill between them leaves the old
    folder aside, and the next export puts it back before writing."""
    from assets.report import files

    dest = tmp_path / AS_OF
    dest.mkdir()
    (dest / "report.html").write_text("old")
    new = tmp_path / f".{AS_OF}.writing-1"
    new.mkdir()
    (new / "report.html").write_text("new")
    monkeypatch.setattr(files, "_exchange", lambda a, b: False)
    files.replace_dir(new, dest)
    assert (dest / "report.html").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == [AS_OF]
    # killed between the renames: the complete folder sits aside, nothing at `dest`
    dest.rename(tmp_path / f".{AS_OF}.old-99")
    files.recover_export_dir(dest)
    assert (dest / "report.html").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == [AS_OF]


def test_past_date_export_reads_that_dates_history(tmp_path, monkeypatch):
    """A past date's export lists the watchlist history's rows of that date, not the current
    watchlist."""
    from assets.report import files
    from assets.report.queries import PAST_DATE_SCREENING, gather_report_data

    wh = tmp_path / "w.duckdb"
    _build_warehouse(wh, screening=True)
    with duckdb.connect(str(wh)) as con:
        con.execute("DELETE FROM marts.watchlist_history")
        con.execute(
            "INSERT INTO marts.watchlist_history SELECT * REPLACE (DATE '2025-03-31' AS "
            "as_of_date) FROM marts.watchlist ORDER BY enterprise_id LIMIT 1"
        )
        only = con.execute("SELECT enterprise_id FROM marts.watchlist_history").fetchone()[0]
        n_current = con.execute("SELECT count(*) FROM marts.watchlist").fetchone()[0]
    assert n_current > 1
    with duckdb.connect(str(wh), read_only=True) as con:
        data = gather_report_data(con, date(2025, 3, 31), from_history=True)
        out = files.write_exports(con, data, tmp_path / "exports" / "2025-03-31", "en")
        parquet = con.execute(
            f"SELECT enterprise_id FROM read_parquet('{out.watchlist_parquet}')"
        ).fetchall()
    assert [r["enterprise_id"] for r in data.watchlist_rows] == [only]
    assert parquet == [(only,)]
    # Screening has no history: a past date's report says it is left out and has no CSV.
    assert data.screening_decisions is None and data.screening_window is None
    assert out.application_screening_csv is None
    assert not (out.out_dir / "application_screening.csv").exists()
    assert PAST_DATE_SCREENING in out.report_html.read_text(encoding="utf-8")
    with duckdb.connect(str(wh), read_only=True) as con:
        current = gather_report_data(con, date(2025, 3, 31))
    assert current.screening_decisions and PAST_DATE_SCREENING not in current.notices


def test_report_shows_guarantee_circles_in_trouble() -> None:
    """Circles with a member in default, past due or listed get a picture (static SVG, one
    node per member, one arrow per guarantee) and the exposure at risk; a healthy circle and
    a circle of an earlier month end are not shown."""
    from assets.report.queries import gather_report_data

    con = duckdb.connect()
    con.execute("CREATE SCHEMA marts; CREATE SCHEMA raw")
    con.execute(
        "CREATE TABLE marts.guarantee_circles (month_end DATE, circle_id VARCHAR, members INT, "
        "member_ids VARCHAR[], total_exposure DECIMAL(18,2), guarantee_edges VARCHAR[])"
    )
    con.execute(
        "INSERT INTO marts.guarantee_circles VALUES "
        "('2025-05-31', 'A1', 3, ['A1', 'A2', 'A3'], 600000, ['A1>A2', 'A2>A3', 'A3>A1']), "
        "('2025-05-31', 'B1', 2, ['B1', 'B2'], 200000, ['B1>B2', 'B2>B1']), "
        "('2025-04-30', 'C1', 2, ['C1', 'C2'], 200000, ['C1>C2', 'C2>C1'])"
    )
    con.execute(
        "CREATE TABLE marts.guarantee_exposure (enterprise_id VARCHAR, month_end DATE, "
        "outstanding_principal DECIMAL(18,2), is_default BOOLEAN)"
    )
    con.execute(
        "INSERT INTO marts.guarantee_exposure VALUES ('A1', '2025-05-31', 100000, TRUE), "
        "('A2', '2025-05-31', 200000, FALSE), ('A3', '2025-05-31', 300000, FALSE), "
        "('B1', '2025-05-31', 100000, FALSE), ('B2', '2025-05-31', 100000, FALSE), "
        "('C1', '2025-04-30', 100000, TRUE), ('C2', '2025-04-30', 100000, FALSE)"
    )
    con.execute("CREATE TABLE raw.enterprises (enterprise_id VARCHAR, name VARCHAR)")
    con.execute("INSERT INTO raw.enterprises VALUES ('A1', 'Alpha <Ltd>'), ('A2', '乙公司')")
    data = gather_report_data(con, date(2025, 6, 15))
    assert [c["circle_id"] for c in data.circles] == ["A1"]
    assert data.circles[0]["exposure_at_risk"] == 500000.0
    html = render_report(data, lang="en")
    section = html.split('id="circles"')[1].split("<h2")[0]
    assert section.count("<svg") == 1 and section.count("<circle") == 3
    assert section.count("marker-end") == 3
    assert "Alpha &lt;Ltd&gt;" in section and "Alpha <Ltd>" not in section
    assert "500,000" in section and "in default" in section and "B1" not in section
    zh = render_report(data, lang="zh").split('id="circles"')[1].split("<h2")[0]
    assert "担保圈" in zh and "已违约" in zh and "乙公司" in zh


def test_every_screening_reason_reads_in_chinese():
    """Every access rule has a Chinese text; an English screening reason as the mart writes it
    comes back in Chinese with the application's values (issue 12)."""
    from assets.report.i18n import screening_reason_zh
    from assets.screening.rules import _PLACEHOLDER, load_rules

    rules = load_rules()
    templates = [(r.reason, r.reason_zh) for r in rules.all_rules]
    templates.append((rules.enhancement.government_fund.reason,
                      rules.enhancement.government_fund.reason_zh))
    for en, zh in templates:
        assert zh and set(_PLACEHOLDER.findall(zh)) == set(_PLACEHOLDER.findall(en)), en
        values = {name: str(40 + i) for i, name in enumerate(_PLACEHOLDER.findall(en))}
        rendered = _PLACEHOLDER.sub(lambda m, v=values: v[m[1]], en)
        out = screening_reason_zh(rendered)
        assert not re.search(r"[a-z]{4,}", out), (rendered, out)
        assert all(v in out for v in values.values()), (rendered, out)
    ew = ("Early-warning tier amber at 2025-05-31: "
          "a loan is 45 days past due; tax credit rating is C")
    assert screening_reason_zh(ew) == (
        "2025-05-31预警等级黄色：有贷款逾期45天；纳税信用等级为C")
