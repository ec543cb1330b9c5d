"""The files in `<exports>/<as_of>/`, each written to a temporary name and then renamed.

Officers open these from a shared drive, often in Excel: CSVs carry a UTF-8 BOM (Excel
otherwise garbles Chinese text). DuckDB writes CSV and Parquet itself, so no table passes
through a dataframe; a half-written file never replaces a good one.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import duckdb

from assets.core import settings
from assets.core.sql import text
from assets.report import queries
from assets.report.model import ReportData
from assets.report.render import render_report

BOM = b"\xef\xbb\xbf"


def exports_dir() -> Path:
    """Exports root: RISK_EXPORTS_DIR (read at run time, so tests can point it), else default."""
    return Path(os.environ.get("RISK_EXPORTS_DIR") or settings.DEFAULT_EXPORTS_DIR).resolve()


@dataclass(frozen=True)
class ExportFiles:
    """Where one export run wrote; `application_screening_csv` is None when screening has not
    run (a stale file of an earlier run of the same date is removed)."""

    out_dir: Path
    watchlist_csv: Path
    watchlist_parquet: Path
    report_html: Path
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


def write_exports(con: duckdb.DuckDBPyConnection, data: ReportData, out_dir: Path) -> ExportFiles:
    """Write the watchlist CSV/Parquet, the screening CSV (when screening ran) and report.html.

    `con` reads the marts that `data` was gathered from; when the watchlist mart is missing
    (any connection, even in-memory, will do) header-only files are written.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    csv_path, parquet_path = out_dir / "watchlist.csv", out_dir / "watchlist.parquet"
    if "watchlist" in data.missing:
        select_csv = select_parquet = queries.EMPTY_WATCHLIST_SELECT
    else:
        order = queries.watchlist_order(data.watchlist_columns)
        select_csv = queries.csv_select(con, "watchlist", order)
        select_parquet = queries.table_select("watchlist", order)
    write_csv_with_bom(con, select_csv, csv_path)
    write_parquet(con, select_parquet, parquet_path)

    screening_path: Path | None = out_dir / "application_screening.csv"
    screening_rows = None
    if data.screening_decisions is not None:
        write_csv_with_bom(con, queries.csv_select(con, "application_screening"), screening_path)
        screening_rows = sum(n for _, n in data.screening_decisions)
    else:
        screening_path.unlink(missing_ok=True)  # stale from an earlier run of the same date
        screening_path = None

    html_path = out_dir / "report.html"
    write_text(render_report(data), html_path)
    return ExportFiles(
        out_dir=out_dir,
        watchlist_csv=csv_path,
        watchlist_parquet=parquet_path,
        report_html=html_path,
        application_screening_csv=screening_path,
        application_screening_rows=screening_rows,
    )
