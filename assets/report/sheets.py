"""The officers' watchlist as files they open in Excel: `watchlist.csv` and `watchlist.xlsx`.

Rows are the report's officer rows (`render.officer_row`): name, credit code, home branch,
relationship manager, exposure, tier, PD or score, status and since when, reasons, action, in
the report's language. Credit codes stay text: in the workbook every code cell is a string
with the text format `@`; in the CSV the code is written as `="<code>"`, which Excel shows as
the plain code (an all-digit code would otherwise become 9.1E+17). `watchlist.parquet` keeps
the mart's raw columns for machines.

The workbook has one sheet with every firm, then one sheet per branch (by home branch,
riskiest branches first, firms without a loan branch last): an officer opens the file and
clicks the branch's tab. One workbook rather than a file per branch: one file to mail or put
on the shared drive, and the all-firms sheet filters across branches.
"""

from __future__ import annotations

import csv
import io
import re
from copy import copy
from pathlib import Path

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter

from assets.report.i18n import HEADERS

BOM = "\ufeff"
#: The officer's columns, in order, with their width in the workbook (characters).
COLUMNS = (
    ("name", 30), ("enterprise_id", 22), ("branch_name", 18), ("officer_id", 12),
    ("industry", 18), ("exposure", 16), ("tier", 8), ("pd", 10), ("risk_score", 8),
    ("status", 8), ("first_flagged_date", 12), ("reasons", 80), ("recommended_action", 40),
)
TEXT_COLUMNS = {"enterprise_id", "officer_id", "branch_name", "name"}
_BAD_SHEET_CHARS = re.compile(r"[\[\]:*?/\\]")


def _cells(o: dict, lang: str) -> list[object]:
    sep = "；" if lang == "zh" else "; "
    out: list[object] = []
    for c, _ in COLUMNS:
        v = o.get(c)
        if c == "reasons":
            v = sep.join(v or [])
        out.append(v)
    return out


def write_csv(rows: list[dict], lang: str, dest: Path) -> None:
    """UTF-8 with BOM, headers in the language, credit codes as `="<code>"` for Excel."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow([HEADERS[lang][c] for c, _ in COLUMNS])
    code_at = [c for c, _ in COLUMNS].index("enterprise_id")
    for o in rows:
        cells = ["" if v is None else v for v in _cells(o, lang)]
        if cells[code_at]:
            cells[code_at] = f'="{cells[code_at]}"'
        w.writerow(cells)
    part = dest.with_name(dest.name + ".part")
    part.write_text(BOM + buf.getvalue(), encoding="utf-8", newline="")
    part.replace(dest)


def _sheet_title(name: str, used: set[str]) -> str:
    base = _BAD_SHEET_CHARS.sub("_", name)[:28] or "_"
    title, k = base, 2
    while title.lower() in used:
        title, k = f"{base[:26]}~{k}", k + 1
    used.add(title.lower())
    return title


def _styles() -> dict[str, dict[str, object]]:
    """The cell styles by column: text codes, money, PD, wrapped long text."""
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


def _fill_sheet(ws, rows: list[dict], lang: str) -> None:
    """One sheet, streamed (a write-only sheet: each row goes to the file as it is added,
    so a sheet of 28k firms costs seconds and little memory). Column widths, frozen panes
    and the filter are set before the rows, as streaming requires."""
    for j, (_, width) in enumerate(COLUMNS, start=1):
        ws.column_dimensions[get_column_letter(j)].width = width
    ws.freeze_panes = "C2"  # header row and the firm's name and code stay in view
    ws.auto_filter.ref = f"A1:{get_column_letter(len(COLUMNS))}{len(rows) + 1}"
    header = []
    for c, _ in COLUMNS:
        cell = WriteOnlyCell(ws, value=HEADERS[lang][c])
        cell.font = Font(bold=True)
        cell.fill = PatternFill("solid", fgColor="DCE6F1")
        cell.alignment = Alignment(vertical="top", wrap_text=True)
        header.append(cell)
    ws.append(header)
    # one styled cell per column, whose style array each row's cell copies: assigning the
    # style objects cell by cell looks each up in the workbook's style tables (most of the
    # time of a sheet)
    templates = []
    for c, style in _styles().items():
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
                cell.data_type = "s"  # a code of digits stays text
            cell._style = copy(style)
            out.append(cell)
        ws.append(out)


def write_xlsx(rows: list[dict], lang: str, dest: Path, all_title: str) -> list[str]:
    """The workbook: every firm, then one sheet per home branch. Returns the sheet titles."""
    wb = Workbook(write_only=True)
    used: set[str] = set()
    _fill_sheet(wb.create_sheet(_sheet_title(all_title, used)), rows, lang)
    by_branch: dict[str, list[dict]] = {}
    for o in rows:
        by_branch.setdefault(o.get("branch_name") or "", []).append(o)
    order = sorted(  # riskiest branches first; firms without a home branch last
        by_branch, key=lambda b: (not b, -sum(o["tier_code"] == "red" for o in by_branch[b]),
                                  -len(by_branch[b]), b)
    )
    unknown = "（未知支行）" if lang == "zh" else "(unknown branch)"
    for branch in order:
        _fill_sheet(wb.create_sheet(_sheet_title(branch or unknown, used)), by_branch[branch],
                    lang)
    part = dest.with_name(dest.name + ".part")
    titles = wb.sheetnames
    wb.save(part)
    part.replace(dest)
    return titles
