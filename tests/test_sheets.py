"""The watchlist workbook, written as XML by `sheets.write_xlsx`: read back with openpyxl, it
is the workbook openpyxl itself wrote before (kept below as the reference), cell by cell."""

from __future__ import annotations

import math
import zipfile
from copy import copy
from decimal import Decimal
from pathlib import Path
from xml.etree import ElementTree

import numpy as np
import openpyxl
import pytest
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter

from assets.report import sheets
from assets.report.i18n import HEADERS
from assets.report.sheets import COLUMNS, TEXT_COLUMNS, _cells, _sheet_title

# ---------------------------------------------------------------------------------------------
# The reference: the openpyxl writer sheets.py used until the workbook was written by hand


def _openpyxl_styles() -> dict[str, dict[str, object]]:
    top, wrapped = Alignment(vertical="top"), Alignment(vertical="top", wrap_text=True)
    out: dict[str, dict[str, object]] = {}
    for c, _ in COLUMNS:
        style: dict[str, object] = {
            "alignment": wrapped if c in ("reasons", "recommended_action") else top}
        if c in TEXT_COLUMNS:
            style["number_format"] = "@"
        elif c == "exposure":
            style["number_format"] = "#,##0.00"
        elif c == "pd":
            style["number_format"] = "0.00%"
        out[c] = style
    return out


def _openpyxl_fill_sheet(ws, rows: list[dict], lang: str) -> None:
    for j, (_, width) in enumerate(COLUMNS, start=1):
        ws.column_dimensions[get_column_letter(j)].width = width
    ws.freeze_panes = "C2"
    ws.auto_filter.ref = f"A1:{get_column_letter(len(COLUMNS))}{len(rows) + 1}"
    header = []
    for c, _ in COLUMNS:
        cell = WriteOnlyCell(ws, value=HEADERS[lang][c])
        cell.font = Font(bold=True)
        cell.fill = PatternFill("solid", fgColor="DCE6F1")
        cell.alignment = Alignment(vertical="top", wrap_text=True)
        header.append(cell)
    ws.append(header)
    templates = []
    for c, style in _openpyxl_styles().items():
        template = WriteOnlyCell(ws)
        for attr, value in style.items():
            setattr(template, attr, value)
        templates.append((c in TEXT_COLUMNS, template._style))
    for o in rows:
        out = []
        for (is_text, style), v in zip(templates, _cells(o, lang), strict=True):
            if is_text:
                v = "" if v is None else str(v)
            cell = WriteOnlyCell(ws, value=v)
            if is_text:
                cell.data_type = "s"
            cell._style = copy(style)
            out.append(cell)
        ws.append(out)


def openpyxl_write_xlsx(rows: list[dict], lang: str, dest: Path, all_title: str) -> list[str]:
    """The former `sheets.write_xlsx`, verbatim but for the names (also the benchmark's)."""
    wb = Workbook(write_only=True)
    used: set[str] = set()
    _openpyxl_fill_sheet(wb.create_sheet(_sheet_title(all_title, used)), rows, lang)
    by_branch: dict[str, list[dict]] = {}
    for o in rows:
        by_branch.setdefault(o.get("branch_name") or "", []).append(o)
    order = sorted(
        by_branch, key=lambda b: (not b, -sum(o["tier_code"] == "red" for o in by_branch[b]),
                                  -len(by_branch[b]), b)
    )
    unknown = "（未知支行）" if lang == "zh" else "(unknown branch)"
    for branch in order:
        _openpyxl_fill_sheet(wb.create_sheet(_sheet_title(branch or unknown, used)),
                             by_branch[branch], lang)
    part = dest.with_name(dest.name + ".part")
    titles = wb.sheetnames
    wb.save(part)
    part.replace(dest)
    return titles


# ---------------------------------------------------------------------------------------------

DIGITS = "911100001234567890"  # an all-digit credit code: Excel would show 9.11E+17
LONG = "浙江省杭州市西湖区某某镇农村商业银行股份有限公司营业部第一分理处"  # > 28 characters


def _row(i: int, **kw: object) -> dict:
    row = {
        "name": f"杭州示例机械制造有限公司{i}", "enterprise_id": f"91330100MA2{i:07d}",
        "branch_name": "西湖支行", "officer_id": f"RM{i:03d}", "industry": "通用设备制造业",
        "exposure": 1_234_567.89 + i, "tier": "红色", "tier_code": "red", "pd": 0.3125,
        "risk_score": 88.5, "status": "新增", "first_flagged_date": "2025-06-30",
        "reasons": ["近3个月增值税申报缺失2次", "近12个月被列为失信被执行人"],
        "recommended_action": "冻结未用额度；5个工作日内现场走访",
    }
    row.update(kw)
    return row


def _rows() -> list[dict]:
    """Officer rows with what the writer must get right: codes of digits, missing numbers,
    Decimal, int, numpy and boolean values, markup and quotes, spaces kept at the ends, line
    breaks, branches whose names Excel refuses as sheet titles or shares in the first 28
    characters."""
    return [
        _row(0),
        _row(1, enterprise_id=DIGITS, exposure=None, pd=None, tier="黄色", tier_code="amber"),
        _row(2, exposure=Decimal("98765.43"), risk_score=61, officer_id=4711,
             branch_name="A/B:C*?[x]\\支行"),
        _row(3, name="Acme <Trading> & Sons \"Ltd\" 'HK'", branch_name="O'Brien & Co",
             reasons=["utility arrears, 2 months", "<script>alert('x')</script>"],
             recommended_action="  call first\nthen visit\r\nwithin 5 days  "),
        _row(4, branch_name=LONG + "甲", exposure=float("nan"), pd=0.0),
        _row(5, branch_name=LONG + "乙", reasons=[], recommended_action=None,
             exposure=np.float64(5.5), risk_score=np.int64(42)),
        _row(6, branch_name="", name="", tier_code="amber", risk_score=True),
        _row(7, branch_name=None, first_flagged_date="", industry=None, risk_score=0),
    ]


def _cell(c) -> tuple:
    """What an officer sees of a cell: value and type, format, bold, fill, alignment."""
    return (
        c.value, c.data_type if c.value is not None else None, c.number_format, bool(c.font.b),
        c.fill.fill_type, c.fill.fgColor.rgb if c.fill.fill_type else None,
        bool(c.alignment.wrap_text), c.alignment.vertical,
    )


def _assert_same_workbook(expected: Path, got: Path) -> None:
    for read_only in (False, True):
        a = openpyxl.load_workbook(expected, read_only=read_only)
        b = openpyxl.load_workbook(got, read_only=read_only)
        assert b.sheetnames == a.sheetnames
        for title in a.sheetnames:
            wa, wb = a[title], b[title]
            rows_a, rows_b = list(wa.iter_rows()), list(wb.iter_rows())
            assert len(rows_b) == len(rows_a) >= 1
            for ra, rb in zip(rows_a, rows_b, strict=True):
                assert [_cell(c) for c in rb] == [_cell(c) for c in ra], (title, ra[0].row)
            if not read_only:
                assert wb.freeze_panes == wa.freeze_panes == "C2"
                pa, pb = wa.sheet_view.pane, wb.sheet_view.pane
                assert (pb.xSplit, pb.ySplit, pb.state, pb.activePane) == (
                    pa.xSplit, pa.ySplit, pa.state, pa.activePane) == (2, 1, "frozen",
                                                                        "bottomRight")
                assert wb.auto_filter.ref == wa.auto_filter.ref
                for j in range(1, len(COLUMNS) + 1):
                    x = get_column_letter(j)
                    assert wb.column_dimensions[x].width == wa.column_dimensions[x].width
        a.close()
        b.close()


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_the_workbook_is_the_one_openpyxl_wrote(tmp_path: Path, lang: str) -> None:
    rows = _rows()
    expected = openpyxl_write_xlsx(rows, lang, tmp_path / "openpyxl.xlsx", "预警名单")
    titles = sheets.write_xlsx(rows, lang, tmp_path / "w.xlsx", "预警名单")
    assert titles == expected
    assert titles[:3] == ["预警名单", "西湖支行", "A_B_C___x__支行"]  # riskiest branch first
    assert titles[-1] == ("（未知支行）" if lang == "zh" else "(unknown branch)")
    _assert_same_workbook(tmp_path / "openpyxl.xlsx", tmp_path / "w.xlsx")
    with zipfile.ZipFile(tmp_path / "w.xlsx") as zf:
        assert zf.testzip() is None
    assert not list(tmp_path.glob("*.part"))


def test_cells_keep_their_types_and_formats(tmp_path: Path) -> None:
    """Codes of digits are text cells in `@`, numbers are numbers (the whole double), the date
    stays the text officer_row made of it; widths, panes, filter and header as specified."""
    rows = [_row(0, enterprise_id=DIGITS, pd=0.1 + 0.2, exposure=Decimal("12.5"), officer_id=7),
            _row(1, exposure=None)]
    sheets.write_xlsx(rows, "zh", tmp_path / "w.xlsx", "预警名单")
    wb = openpyxl.load_workbook(tmp_path / "w.xlsx")
    assert wb.sheetnames == ["预警名单", "西湖支行"]
    ws = wb["预警名单"]
    assert [c.value for c in ws[1]] == [HEADERS["zh"][c] for c, _ in COLUMNS]
    assert all(c.font.b and c.fill.fgColor.rgb == "00DCE6F1" and c.fill.fill_type == "solid"
               and c.alignment.wrap_text and c.alignment.vertical == "top" for c in ws[1])
    code, officer, exposure, pd, day = ws["B2"], ws["D2"], ws["F2"], ws["H2"], ws["K2"]
    assert (code.value, code.data_type, code.number_format) == (DIGITS, "s", "@")
    assert (officer.value, officer.data_type, officer.number_format) == ("7", "s", "@")
    assert (exposure.value, exposure.number_format) == (12.5, "#,##0.00")
    assert pd.value == 0.1 + 0.2 and pd.number_format == "0.00%"
    assert (day.value, day.data_type, day.number_format) == ("2025-06-30", "s", "General")
    assert ws["F3"].value is None and ws["F3"].number_format == "#,##0.00"
    assert ws["L2"].value == "近3个月增值税申报缺失2次；近12个月被列为失信被执行人"
    assert ws["L2"].alignment.wrap_text and not ws["K2"].alignment.wrap_text
    assert all(c.alignment.vertical == "top" for row in ws.iter_rows(min_row=2) for c in row)
    assert ws.freeze_panes == "C2" and ws.auto_filter.ref == "A1:M3"
    assert [ws.column_dimensions[get_column_letter(j)].width
            for j in range(1, len(COLUMNS) + 1)] == [w for _, w in COLUMNS]
    assert wb["西湖支行"].auto_filter.ref == "A1:M3"


# openpyxl's abandoned sheet writer complains when it is collected
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_characters_xml_forbids_are_dropped(tmp_path: Path) -> None:
    """openpyxl refused a row with a control character (the night's export failed); they are
    dropped now, tab and line breaks kept, also from a branch's sheet title."""
    rows = [_row(0, name="杭州\x01示例\x1f公司\ufffe\ud800", branch_name="西湖\x0b支行",
                 reasons=["逾期\x00两次", "tab\there"], recommended_action="走访\x08\n复核")]
    with pytest.raises(openpyxl.utils.exceptions.IllegalCharacterError):
        openpyxl_write_xlsx(rows, "zh", tmp_path / "openpyxl.xlsx", "预警名单")
    titles = sheets.write_xlsx(rows, "zh", tmp_path / "w.xlsx", "预警名单")
    assert titles == ["预警名单", "西湖_支行"]
    for read_only in (False, True):
        wb = openpyxl.load_workbook(tmp_path / "w.xlsx", read_only=read_only)
        assert wb.sheetnames == titles
        for title in titles:
            row = [c.value for c in next(wb[title].iter_rows(min_row=2, max_row=2))]
            assert row[0] == "杭州示例公司" and row[2] == "西湖支行"
            assert row[11] == "逾期两次；tab\there" and row[12] == "走访\n复核"
        wb.close()


def test_an_empty_watchlist_is_one_sheet_with_its_header(tmp_path: Path) -> None:
    assert sheets.write_xlsx([], "en", tmp_path / "w.xlsx", "watchlist") == ["watchlist"]
    for read_only in (False, True):
        wb = openpyxl.load_workbook(tmp_path / "w.xlsx", read_only=read_only)
        assert wb.sheetnames == ["watchlist"]
        rows = list(wb["watchlist"].iter_rows(values_only=True))
        assert rows == [tuple(HEADERS["en"][c] for c, _ in COLUMNS)]
        if not read_only:
            assert wb["watchlist"].auto_filter.ref == "A1:M1"
            assert wb["watchlist"].freeze_panes == "C2"
        wb.close()


def test_sheet_titles_excel_refuses_are_made_valid(tmp_path: Path) -> None:
    """Excel refuses []:*?/\\ in a title and more than 31 characters; two branches sharing
    their first 28 characters get a number."""
    rows = [_row(0, branch_name="A/B:C*?[x]\\"), _row(1, branch_name=LONG + "甲"),
            _row(2, branch_name=LONG + "乙"), _row(3, branch_name="R&D <总部>")]
    titles = sheets.write_xlsx(rows, "zh", tmp_path / "w.xlsx", "预警名单")
    # riskiest first, then by name: 乙 (U+4E59) before 甲 (U+7532)
    assert titles == ["预警名单", "A_B_C___x__", "R&D <总部>", LONG[:28], LONG[:26] + "~2"]
    assert all(len(t) <= 31 for t in titles)
    wb = openpyxl.load_workbook(tmp_path / "w.xlsx")
    assert wb.sheetnames == titles
    assert wb["R&D <总部>"]["C2"].value == "R&D <总部>"
    assert wb[LONG[:26] + "~2"]["C2"].value == LONG + "甲"


def test_a_failed_write_keeps_the_previous_file(tmp_path: Path) -> None:
    """The workbook goes to `.part` and replaces the file only when complete."""
    dest = tmp_path / "w.xlsx"
    sheets.write_xlsx([_row(0)], "zh", dest, "预警名单")
    before = dest.read_bytes()
    with pytest.raises(TypeError, match="object"):
        sheets.write_xlsx([_row(0), _row(1, exposure=object())], "zh", dest, "预警名单")
    assert dest.read_bytes() == before
    assert not list(tmp_path.glob("*.part"))


def test_numbers_excel_cannot_hold_are_empty_cells(tmp_path: Path) -> None:
    rows = [_row(0, exposure=float("inf"), pd=math.nan, risk_score=Decimal("NaN"))]
    sheets.write_xlsx(rows, "zh", tmp_path / "w.xlsx", "预警名单")
    ws = openpyxl.load_workbook(tmp_path / "w.xlsx")["预警名单"]
    assert ws["F2"].value is None and ws["H2"].value is None and ws["I2"].value is None
    assert ws["F2"].number_format == "#,##0.00"


def test_the_package_is_well_formed(tmp_path: Path) -> None:
    """Every part is XML, the zip is sound, and the parts Excel needs are there and named in
    [Content_Types].xml (its first entry). Widths are custom; spaces at a text's ends are
    marked to be kept (Excel drops them otherwise)."""
    rows = [_row(0, name="A & B <Ltd>", industry=" x "), _row(1, branch_name="O'Brien & Co")]
    sheets.write_xlsx(rows, "en", tmp_path / "w.xlsx", "watchlist")
    with zipfile.ZipFile(tmp_path / "w.xlsx") as zf:
        assert zf.testzip() is None
        names = zf.namelist()
        parts = {n: ElementTree.fromstring(zf.read(n)) for n in names}
    assert names[0] == "[Content_Types].xml"
    sheet_parts = [f"xl/worksheets/sheet{i}.xml" for i in (1, 2, 3)]
    assert set(names) == {"[Content_Types].xml", "_rels/.rels", "xl/workbook.xml",
                          "xl/_rels/workbook.xml.rels", "xl/styles.xml", *sheet_parts}
    overrides = {e.get("PartName") for e in parts["[Content_Types].xml"]}
    assert {f"/{n}" for n in sheet_parts} | {"/xl/workbook.xml", "/xl/styles.xml"} <= overrides
    ns = {"m": "http://schemas.openxmlformats.org/spreadsheetml/2006/main"}
    filters = [e.text for e in parts["xl/workbook.xml"].iterfind(".//m:definedName", ns)]
    assert filters == ["'watchlist'!$A$1:$M$3", "'O''Brien & Co'!$A$1:$M$2",
                       "'西湖支行'!$A$1:$M$2"]
    sheet = parts["xl/worksheets/sheet1.xml"]
    assert [c.get("customWidth") for c in sheet.iterfind(".//m:col", ns)] == ["1"] * 13
    kept = [t.get("{http://www.w3.org/XML/1998/namespace}space")
            for t in sheet.iterfind(".//m:c[@r='E2']/m:is/m:t", ns)]
    assert kept == ["preserve"]
    assert [t.get("{http://www.w3.org/XML/1998/namespace}space")
            for t in sheet.iterfind(".//m:c[@r='A2']/m:is/m:t", ns)] == [None]
