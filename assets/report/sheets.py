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

The workbook's XML is written here, row by row into the zip, not by openpyxl: every firm is
written twice (all-firms sheet and branch sheet), and openpyxl builds a cell object per value,
so the bank's 28,213 listed firms took about 19 s of a night even in write-only mode; the
strings here take about a tenth of openpyxl's time (`benchmarks/bench_watchlist_files.py`,
2026-11-29 on a busy 2-core machine: 3.0 s against 27.6 s, a 4.9 MiB file either way). The
cells, styles, widths, panes and filters are those openpyxl wrote (inline strings too), and
the tests compare the two workbooks cell by cell.
"""

from __future__ import annotations

import csv
import io
import math
import numbers
import re
import zipfile
from decimal import Decimal
from pathlib import Path
from typing import IO

from assets.report.i18n import HEADERS

BOM = "\ufeff"
#: The officer's columns, in order, with their width in the workbook (characters).
COLUMNS = (
    ("name", 30), ("enterprise_id", 22), ("branch_name", 18), ("officer_id", 12),
    ("industry", 18), ("exposure", 16), ("tier", 8), ("pd", 10), ("risk_score", 8),
    ("status", 8), ("first_flagged_date", 12), ("reasons", 80), ("recommended_action", 40),
)
TEXT_COLUMNS = {"enterprise_id", "officer_id", "branch_name", "name"}
#: What XML 1.0 forbids in text (controls but tab, newline and CR; lone surrogates; U+FFFE/F).
_NOT_XML = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
#: What Excel forbids in a sheet's title, and what would not be XML.
_BAD_SHEET_CHARS = re.compile(rf"[\[\]:*?/\\]|{_NOT_XML.pattern}")
MAX_CELL_CHARS = 32_767  # Excel's limit on a cell's text


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


def _styles() -> dict[str, tuple[str, bool]]:
    """The cell style by column, (number format, wrapped): text codes, money, PD, wrapped
    long text; every cell is top-aligned."""
    out: dict[str, tuple[str, bool]] = {}
    for c, _ in COLUMNS:
        if c in TEXT_COLUMNS:
            fmt = "@"
        elif c == "exposure":
            fmt = "#,##0.00"
        elif c == "pd":
            fmt = "0.00%"
        else:
            fmt = "General"
        out[c] = (fmt, c in ("reasons", "recommended_action"))
    return out


# ---------------------------------------------------------------------------------------------
# SpreadsheetML, by hand

_MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_PKG_REL = "http://schemas.openxmlformats.org/package/2006/relationships"
_CT = "application/vnd.openxmlformats-officedocument.spreadsheetml"
_BUILTIN_FORMATS = {"General": 0, "0.00%": 10, "#,##0.00": 4, "@": 49}
_HEADER_XF = 1  # cellXfs[1]: bold, filled, top-aligned and wrapped; the columns' follow
_ROWS_PER_WRITE = 500


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _attr(text: str) -> str:
    return _escape(text).replace('"', "&quot;")


def _column_letter(j: int) -> str:
    """1 -> A, 27 -> AA."""
    out = ""
    while j:
        j, r = divmod(j - 1, 26)
        out = chr(65 + r) + out
    return out


def _cell(ref: str, s: int, v: object) -> str:
    """One cell with the column's style `s`: text inline, numbers as doubles. Empty for None
    and for what Excel cannot hold (NaN, infinity; text that was only characters XML forbids,
    which are dropped: openpyxl refused such a row, and the night's export with it)."""
    if isinstance(v, str):
        if _NOT_XML.search(v) or len(v) > MAX_CELL_CHARS:
            v = _NOT_XML.sub("", v)[:MAX_CELL_CHARS]
        if v:
            space = ' xml:space="preserve"' if v != v.strip() else ""
            return f'<c r="{ref}" s="{s}" t="inlineStr"><is><t{space}>{_escape(v)}</t></is></c>'
    elif v is None:
        pass
    # float and Decimal before the abstract number types, whose checks are slow
    elif isinstance(v, float | Decimal) or (
            isinstance(v, numbers.Real) and not isinstance(v, numbers.Integral)):
        x = float(v)  # a double, as Excel keeps it
        if math.isfinite(x):
            return f'<c r="{ref}" s="{s}"><v>{x!r}</v></c>'
    elif isinstance(v, bool):
        return f'<c r="{ref}" s="{s}" t="b"><v>{int(v)}</v></c>'
    elif isinstance(v, int | numbers.Integral):
        return f'<c r="{ref}" s="{s}"><v>{int(v)}</v></c>'
    else:
        raise TypeError(f"{ref}: no workbook cell for {type(v).__name__} {v!r}")
    return f'<c r="{ref}" s="{s}"/>'


#: Per column: its letter, its style (cellXfs index) and whether its cells are text.
_COLUMN_CELLS = [(_column_letter(j), _HEADER_XF + j, c in TEXT_COLUMNS)
                 for j, (c, _) in enumerate(COLUMNS, start=1)]


def _row(r: int, values: list[object]) -> str:
    n = str(r)
    cells = "".join([
        _cell(f"{x}{n}", s, str(v) if is_text and v is not None else v)  # digits stay text
        for (x, s, is_text), v in zip(_COLUMN_CELLS, values, strict=True)
    ])
    return f'<row r="{n}">{cells}</row>'


def _styles_xml(formats: list[tuple[str, bool]]) -> str:
    """Fonts: regular, bold (header). Fills: the two Excel reserves, then the header's.
    cellXfs: the default, the header, then one per (number format, wrapped) of the columns."""
    custom = {f: 164 + i for i, f in enumerate(
        dict.fromkeys(f for f, _ in formats if f not in _BUILTIN_FORMATS))}
    num_fmts = "".join(f'<numFmt numFmtId="{i}" formatCode="{_attr(f)}"/>'
                       for f, i in custom.items())
    if num_fmts:
        num_fmts = f'<numFmts count="{len(custom)}">{num_fmts}</numFmts>'
    font = '<sz val="11"/><name val="Calibri"/><family val="2"/>'
    xfs = ['<xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>',
           '<xf numFmtId="0" fontId="1" fillId="2" borderId="0" xfId="0" applyFont="1" '
           'applyFill="1" applyAlignment="1"><alignment vertical="top" wrapText="1"/></xf>']
    for fmt, wrap in formats:
        wrap_text = ' wrapText="1"' if wrap else ""
        fmt_id = _BUILTIN_FORMATS[fmt] if fmt in _BUILTIN_FORMATS else custom[fmt]
        xfs.append(f'<xf numFmtId="{fmt_id}" '
                   'fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1" '
                   f'applyAlignment="1"><alignment vertical="top"{wrap_text}/></xf>')
    return (
        f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<styleSheet xmlns="{_MAIN}">'
        f"{num_fmts}"
        f'<fonts count="2"><font>{font}</font><font><b/>{font}</font></fonts>'
        '<fills count="3"><fill><patternFill patternType="none"/></fill>'
        '<fill><patternFill patternType="gray125"/></fill>'
        '<fill><patternFill patternType="solid"><fgColor rgb="00DCE6F1"/></patternFill></fill>'
        '</fills><borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border>'
        '</borders><cellStyleXfs count="1">'
        '<xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
        f'<cellXfs count="{len(xfs)}">{"".join(xfs)}</cellXfs>'
        '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>'
        '</styleSheet>'
    )


def _write_sheet(out: IO[bytes], rows: list[dict], lang: str, selected: bool) -> None:
    """One worksheet's XML, written to `out` a few hundred rows at a time: columns, frozen
    header row and first two columns, the header, the rows, the filter over them all. The
    selected sheet is the one Excel shows on opening (the all-firms sheet)."""
    letters = [x for x, _, _ in _COLUMN_CELLS]
    last = f"{letters[-1]}{len(rows) + 1}"
    cols = "".join(f'<col min="{j}" max="{j}" width="{w}" customWidth="1"/>'
                   for j, (_, w) in enumerate(COLUMNS, start=1))
    header = "".join(_cell(f"{x}1", _HEADER_XF, HEADERS[lang][c])
                     for x, (c, _) in zip(letters, COLUMNS, strict=True))
    tab = ' tabSelected="1"' if selected else ""
    out.write(
        f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<worksheet xmlns="{_MAIN}" '
        f'xmlns:r="{_REL}"><dimension ref="A1:{last}"/><sheetViews><sheetView{tab} '
        'workbookViewId="0"><pane xSplit="2" ySplit="1" topLeftCell="C2" activePane="bottomRight"'
        ' state="frozen"/><selection pane="topRight"/><selection pane="bottomLeft"/>'
        '<selection pane="bottomRight" activeCell="A1" sqref="A1"/></sheetView></sheetViews>'
        f'<sheetFormatPr baseColWidth="8" defaultRowHeight="15"/><cols>{cols}</cols><sheetData>'
        f'<row r="1">{header}</row>'.encode()
    )
    chunk: list[str] = []
    for r, o in enumerate(rows, start=2):
        chunk.append(_row(r, _cells(o, lang)))
        if len(chunk) == _ROWS_PER_WRITE:
            out.write("".join(chunk).encode())
            chunk.clear()
    out.write(
        f'{"".join(chunk)}</sheetData><autoFilter ref="A1:{last}"/><pageMargins left="0.75" '
        'right="0.75" top="1" bottom="1" header="0.5" footer="0.5"/></worksheet>'.encode()
    )


def _package(sheets: list[tuple[str, int]]) -> dict[str, str]:
    """The parts around the sheets, given each sheet's title and number of rows: content
    types, relationships, the workbook (sheet names; each sheet's filter range as a defined
    name, as Excel keeps it), the styles."""
    n, xml = len(sheets), '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    overrides = "".join(f'<Override PartName="/xl/worksheets/sheet{i}.xml" '
                        f'ContentType="{_CT}.worksheet+xml"/>' for i in range(1, n + 1))
    sheet_rels = "".join(f'<Relationship Id="rId{i}" Type="{_REL}/worksheet" '
                         f'Target="worksheets/sheet{i}.xml"/>' for i in range(1, n + 1))
    sheet_list = "".join(f'<sheet name="{_attr(t)}" sheetId="{i}" r:id="rId{i}"/>'
                         for i, (t, _) in enumerate(sheets, start=1))
    last = _COLUMN_CELLS[-1][0]
    filters = "".join(
        f'<definedName name="_xlnm._FilterDatabase" localSheetId="{i}" hidden="1">'
        f"{_escape(_quoted(t))}!$A$1:${last}${n_rows + 1}</definedName>"
        for i, (t, n_rows) in enumerate(sheets)
    )
    return {
        "[Content_Types].xml": (
            f'{xml}<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="rels" '
            'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            '<Default Extension="xml" ContentType="application/xml"/>'
            f'<Override PartName="/xl/workbook.xml" ContentType="{_CT}.sheet.main+xml"/>'
            f'<Override PartName="/xl/styles.xml" ContentType="{_CT}.styles+xml"/>'
            f"{overrides}</Types>"
        ),
        "_rels/.rels": (
            f'{xml}<Relationships xmlns="{_PKG_REL}"><Relationship Id="rId1" '
            f'Type="{_REL}/officeDocument" Target="xl/workbook.xml"/></Relationships>'
        ),
        "xl/workbook.xml": (
            f'{xml}<workbook xmlns="{_MAIN}" xmlns:r="{_REL}"><bookViews>'
            f'<workbookView activeTab="0"/></bookViews><sheets>{sheet_list}</sheets>'
            f"<definedNames>{filters}</definedNames></workbook>"
        ),
        "xl/_rels/workbook.xml.rels": (
            f'{xml}<Relationships xmlns="{_PKG_REL}">{sheet_rels}<Relationship '
            f'Id="rId{n + 1}" Type="{_REL}/styles" Target="styles.xml"/></Relationships>'
        ),
        "xl/styles.xml": _styles_xml(list(_styles().values())),
    }


def _quoted(title: str) -> str:
    """A sheet's name in a formula: 'name', a quote doubled."""
    return "'" + title.replace("'", "''") + "'"


def write_xlsx(rows: list[dict], lang: str, dest: Path, all_title: str) -> list[str]:
    """The workbook: every firm, then one sheet per home branch. Returns the sheet titles."""
    by_branch: dict[str, list[dict]] = {}
    for o in rows:
        by_branch.setdefault(o.get("branch_name") or "", []).append(o)
    order = sorted(  # riskiest branches first; firms without a home branch last
        by_branch, key=lambda b: (not b, -sum(o["tier_code"] == "red" for o in by_branch[b]),
                                  -len(by_branch[b]), b)
    )
    unknown = "（未知支行）" if lang == "zh" else "(unknown branch)"
    used: set[str] = set()
    sheets = [(_sheet_title(all_title, used), rows)]
    sheets += [(_sheet_title(b or unknown, used), by_branch[b]) for b in order]
    titles = [t for t, _ in sheets]

    part = dest.with_name(dest.name + ".part")
    try:
        with zipfile.ZipFile(part, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as zf:
            for name, xml in _package([(t, len(r)) for t, r in sheets]).items():
                zf.writestr(name, xml)
            for i, (_, sheet_rows) in enumerate(sheets, start=1):
                with zf.open(f"xl/worksheets/sheet{i}.xml", "w") as out:
                    _write_sheet(out, sheet_rows, lang, selected=i == 1)
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    part.replace(dest)
    return titles

