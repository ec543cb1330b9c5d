"""The files in `<exports>/<as_of>/`, written as a set: into a hidden folder beside it, which
then takes the folder's place in one rename (the last complete folder stays as it was until
the new one is complete; a kill mid-write leaves it intact and the half folder is cleared by
the next export).

Officers open these from a shared drive, often in Excel: `watchlist.csv` and `watchlist.xlsx`
are the officer's view in the report's language (RISK_REPORT_LANG, default zh; see
`sheets.py`: name, branch, exposure, tier, reasons, action; credit codes kept as text), CSVs
carry a UTF-8 BOM (Excel otherwise garbles Chinese text). `watchlist.parquet` and
`application_screening.csv` are the marts as they are, written by DuckDB itself. A
half-written file never replaces a good one.
"""

from __future__ import annotations

import ctypes
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import duckdb

from assets.core import settings
from assets.core.sql import text
from assets.report import queries, sheets
from assets.report.i18n import LABELS, report_lang
from assets.report.model import ReportData
from assets.report.render import officer_row, render_report
from assets.signals.catalog import load_catalog

BOM = b"\xef\xbb\xbf"


def exports_dir() -> Path:
    """Exports root: RISK_EXPORTS_DIR (read at run time, so tests can point it), else default."""
    return Path(os.environ.get("RISK_EXPORTS_DIR") or settings.DEFAULT_EXPORTS_DIR).resolve()


_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one atomic step (Linux renameat2 RENAME_EXCHANGE); False where the
    system or the file system cannot."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    rc = renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    return rc == 0


def _aside(dest: Path, what: str) -> Path:
    return dest.with_name(f".{dest.name}.{what}-{os.getpid()}")


def recover_export_dir(dest: Path) -> None:
    """Undo what a killed export left beside `dest`: a complete folder moved aside by the
    fallback swap comes back when `dest` is missing; half-written folders are removed."""
    for old in sorted(dest.parent.glob(f".{dest.name}.old-*")):
        if not dest.exists():
            old.rename(dest)
        else:
            shutil.rmtree(old, ignore_errors=True)
    for partial in dest.parent.glob(f".{dest.name}.writing-*"):
        shutil.rmtree(partial, ignore_errors=True)


def replace_dir(new: Path, dest: Path) -> None:
    """`new` takes the place of `dest` as a whole: readers see the old folder or the new one,
    never a mix. The old folder is removed after the swap."""
    if not dest.exists():
        new.rename(dest)
        return
    if _exchange(new, dest):
        shutil.rmtree(new)  # now the old folder
        return
    old = _aside(dest, "old")
    dest.rename(old)
    new.rename(dest)
    shutil.rmtree(old)


@dataclass(frozen=True)
class ExportFiles:
    """Where one export run wrote; `application_screening_csv` is None when screening has not
    run (a stale file of an earlier run of the same date is removed)."""

    out_dir: Path
    watchlist_csv: Path
    watchlist_parquet: Path
    report_html: Path
    watchlist_xlsx: Path | None = None
    sheet_titles: tuple[str, ...] = ()
    application_screening_csv: Path | None = None
    application_screening_rows: int | None = None


def write_csv_with_bom(con: duckdb.DuckDBPyConnection, select_sql: str, dest: Path) -> None:
    """DuckDB writes the CSV; the BOM is prefixed by a byte copy (no dataframe round-trip)."""
    tmp = dest.with_name(dest.name + ".tmp")
    con.execute(f"COPY ({select_sql}) TO {text(tmp)} (FORMAT csv, HEADER true)")
    part = dest.with_name(dest.name + ".part")
    with part.open("wb") as out, tmp.open("rb") as src:
        out.write(BOM)
        shutil.copyfileobj(src, out, 1 << 20)
    tmp.unlink()
    part.replace(dest)


def write_parquet(con: duckdb.DuckDBPyConnection, select_sql: str, dest: Path) -> None:
    """DuckDB writes the Parquet file (list columns stay lists)."""
    part = dest.with_name(dest.name + ".part")
    con.execute(f"COPY ({select_sql}) TO {text(part)} (FORMAT parquet)")
    part.replace(dest)


def write_text(content: str, dest: Path) -> None:
    """UTF-8 text file, replaced in one rename."""
    part = dest.with_name(dest.name + ".part")
    part.write_text(content, encoding="utf-8")
    part.replace(dest)


def write_exports(
    con: duckdb.DuckDBPyConnection, data: ReportData, out_dir: Path, lang: str | None = None
) -> ExportFiles:
    """Write the watchlist CSV/XLSX/Parquet, the screening CSV (when screening ran) and
    report.html, in `lang` (default RISK_REPORT_LANG, zh).

    `con` reads the marts that `data` was gathered from; when the watchlist mart is missing
    (any connection, even in-memory, will do) header-only files are written.
    """
    lang = lang or report_lang()
    catalog = load_catalog()
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    recover_export_dir(out_dir)
    work = _aside(out_dir, "writing")
    work.mkdir()
    try:
        titles, screening_rows = _write_files(con, data, work, lang, catalog)
        replace_dir(work, out_dir)
    finally:
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)
    screening_path = out_dir / "application_screening.csv"
    return ExportFiles(
        out_dir=out_dir,
        watchlist_csv=out_dir / "watchlist.csv",
        watchlist_parquet=out_dir / "watchlist.parquet",
        report_html=out_dir / "report.html",
        watchlist_xlsx=out_dir / "watchlist.xlsx",
        sheet_titles=tuple(titles),
        application_screening_csv=screening_path if screening_rows is not None else None,
        application_screening_rows=screening_rows,
    )


def _write_files(
    con: duckdb.DuckDBPyConnection, data: ReportData, out_dir: Path, lang: str, catalog
) -> tuple[list[str], int | None]:
    """Every file of the set into `out_dir` (the folder being written aside)."""
    csv_path, parquet_path = out_dir / "watchlist.csv", out_dir / "watchlist.parquet"
    xlsx_path = out_dir / "watchlist.xlsx"
    if "watchlist" in data.missing:
        select_parquet = queries.EMPTY_WATCHLIST_SELECT
    else:
        select_parquet = (
            f"SELECT * FROM {data.watchlist_from or queries.mart('watchlist')} "
            f"ORDER BY {queries.watchlist_order(data.watchlist_columns)}"
        )
    rows = [officer_row(r, lang, catalog) for r in data.watchlist_rows]
    sheets.write_csv(rows, lang, csv_path)
    titles = sheets.write_xlsx(rows, lang, xlsx_path, LABELS[lang]["watchlist"])
    write_parquet(con, select_parquet, parquet_path)

    screening_rows = None
    if data.screening_decisions is not None:
        write_csv_with_bom(
            con, queries.csv_select(con, "application_screening"),
            out_dir / "application_screening.csv",
        )
        screening_rows = sum(n for _, n in data.screening_decisions)
    write_text(render_report(data, lang, catalog, rows), out_dir / "report.html")
    return titles, screening_rows
