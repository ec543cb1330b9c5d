"""Contract-exact loading of the landing zone into DuckDB `raw` (data-contract.md section 1).

All validation runs inside DuckDB, one file at a time, as SQL generated from the specs in
`assets.contract`; nothing is pulled into pandas. For each landing table:

1. check the landing root and the table's folder: a missing or empty root, or a folder that
   had files at an earlier load (the manifest knows) and has none today, fails the load
   (`LandingError`, naming the path); a folder that never had files is an empty table;
2. list its files; entries that are not landing files (other types, directories, symbolic
   links leaving the landing root) are reported in `raw.rejected_files`; skip files the
   manifest says were already loaded unchanged (size, mtime);
3. read each new or changed file (CSV in UTF-8 / GB18030, gzip-compressed CSV, or Parquet)
   by its literal name (never as a glob pattern): a CSV into a temp table, a Parquet file in
   place (a view); a file with a bad encoding, a missing required column or a damaged
   Parquet page is rejected whole;
4. type every column and compute, per row, every broken rule as a readable reason (values
   and reasons cut to a bounded length; personal data never shown in a reason), in one
   streaming pass per file: a value delivered typed (Parquet) becomes text only to be shown
   in a reason; duplicate keys in the file are looked for through 64-bit key hashes first;
5. fill the keyed pseudonyms of personal data (`Column.pseudonym`, HMAC-SHA256 with the key
   of `assets.core.secrets`);
6. quarantine orphans (foreign key without parent), then, in one transaction per batch,
   upsert the clean rows by primary key (newest file wins: mtime, then name) and record
   quarantined rows, rejected files and the manifest. A first load (raw table empty) appends
   each batch instead and keeps the newest row of each key once at the end (one aggregate
   over key hashes, a window over the repeated keys only): the upsert would probe the
   growing table once per batch.

`PROFILE` / `PROFILE_CPU` add up the seconds of each phase (benchmarks/bench_ingest.py).

Rows are never deleted except when a newer delivery of the same primary key replaces them.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import itertools
import os
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow as pa

from assets.contract import (
    DATE_MAX,
    DATE_MIN,
    LINEAGE_COLUMNS,
    LOAD_ORDER,
    MONEY_MAX,
    TABLES,
    Column,
    Table,
    raw_table_ddl,
    uscc_valid_sql,
)
from assets.core import secrets, settings
from assets.core.sql import date_literal, ident, literal, transaction
from assets.core.sql import text as sql_text

RAW = "raw"
_CHUNK = 1 << 24  # 16 MiB per read when sniffing an encoding
#: Landing bytes staged per transaction. Parquet expands ~8x in memory, CSV ~1-2x.
BATCH_BYTES = int(os.environ.get("RISK_INGEST_BATCH_BYTES", 64 << 20))
#: A gzip-compressed CSV counts this many times its size when files are batched.
GZIP_EXPANSION = 8

#: Landing file types read (anything else in a table folder is reported, not read).
LANDING_SUFFIXES = (".csv", ".csv.gz", ".parquet")
#: Longest reason or quarantined record stored (raw.rejected_rows, raw.rejected_files).
REASON_MAX = 2000
#: Longest delivered value quoted inside a reason.
VALUE_SHOWN_MAX = 200
#: Longest log line or metadata text about one file.
LINE_MAX = 500
#: Ignored column names kept per file (each cut to VALUE_SHOWN_MAX).
IGNORED_COLUMNS_MAX = 50
_PSEUDONYM_BATCH = 100_000
_alias_counter = itertools.count()

#: Wall seconds per ingestion phase since `reset_profile()` (benchmarks/bench_ingest.py).
PROFILE: Counter[str] = Counter()
#: CPU seconds of the process (every DuckDB thread) per phase: steadier on a shared machine.
PROFILE_CPU: Counter[str] = Counter()


def reset_profile() -> None:
    """Start a new per-phase profile (`PROFILE`, `PROFILE_CPU`)."""
    PROFILE.clear()
    PROFILE_CPU.clear()


@contextmanager
def _phase(name: str) -> Iterator[None]:
    """Add the wall and CPU time of the block to `PROFILE[name]` and `PROFILE_CPU[name]`."""
    started, cpu = time.perf_counter(), time.process_time()
    try:
        yield
    finally:
        PROFILE[name] += time.perf_counter() - started
        PROFILE_CPU[name] += time.process_time() - cpu

META_DDL = (
    f"""CREATE TABLE IF NOT EXISTS {RAW}.rejected_rows (
        table_name VARCHAR, source_file VARCHAR, row_number BIGINT, reason VARCHAR,
        record JSON, primary_key VARCHAR, rejected_at TIMESTAMP)""",
    f"""CREATE TABLE IF NOT EXISTS {RAW}.rejected_files (
        table_name VARCHAR, source_file VARCHAR, reason VARCHAR, rejected_at TIMESTAMP)""",
    f"""CREATE TABLE IF NOT EXISTS {RAW}.load_manifest (
        table_name VARCHAR, source_file VARCHAR, file_size BIGINT, file_mtime TIMESTAMP,
        status VARCHAR, encoding VARCHAR, rows_read BIGINT, rows_loaded BIGINT,
        rows_quarantined BIGINT, ignored_columns VARCHAR[], loaded_at TIMESTAMP)""",
    # Which key the pseudonym columns were computed with: a keyed hash of a fixed text (the
    # key cannot be derived from it). Another key re-keys every row, so "same person" holds.
    f"""CREATE TABLE IF NOT EXISTS {RAW}.pseudonym_keys (
        table_name VARCHAR, key_check VARCHAR, keyed_at TIMESTAMP)""",
)
_KEY_CHECK_TEXT = "sme-risk pseudonym key check"


@dataclass
class FileResult:
    """What happened to one landing file. rows_read = rows_loaded + rows_quarantined."""

    source_file: str
    status: str  # loaded | rejected | unchanged | gone
    rows_read: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0
    encoding: str | None = None
    ignored_columns: list[str] = field(default_factory=list)
    reason: str | None = None


@dataclass
class TableResult:
    table: str
    files: list[FileResult] = field(default_factory=list)
    row_count: int = 0  # rows in raw.<table> after the load
    seconds: float = 0.0

    @property
    def rows_read(self) -> int:
        return sum(f.rows_read for f in self.files if f.status == "loaded")

    @property
    def rows_loaded(self) -> int:
        return sum(f.rows_loaded for f in self.files if f.status == "loaded")

    @property
    def rows_quarantined(self) -> int:
        return sum(f.rows_quarantined for f in self.files if f.status == "loaded")

    @property
    def files_rejected(self) -> list[FileResult]:
        return [f for f in self.files if f.status == "rejected"]

    @property
    def files_loaded(self) -> list[FileResult]:
        return [f for f in self.files if f.status == "loaded"]


class FileRejected(Exception):
    """A whole file cannot be loaded (encoding, missing column, unreadable)."""


class LandingError(Exception):
    """The landing zone is not what a nightly load can trust (missing or empty root, a folder
    that had files and has none today): the table's load fails before anything is written."""


def cap(text: str, limit: int = REASON_MAX) -> str:
    """`text` cut to `limit` characters with a note of how many were cut."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text) - limit} characters cut)"


def _cap_sql(expr: str, limit: int) -> str:
    """SQL twin of `cap()` for a VARCHAR expression."""
    limit = literal(int(limit))
    return (
        f"CASE WHEN length({expr}) > {limit} THEN left({expr}, {limit}) || '... (' || "
        f"(length({expr}) - {limit}) || ' characters cut)' ELSE {expr} END"
    )


def _cap_json_sql(expr: str, limit: int) -> str:
    """A JSON value kept whole when short, else a JSON object holding its cut text."""
    as_text = f"CAST({expr} AS VARCHAR)"
    return (
        f"CASE WHEN length({as_text}) > {limit} THEN "
        f"to_json(struct_pack(cut_record := {_cap_sql(as_text, limit)})) ELSE {expr} END"
    )


# --- set-up ----------------------------------------------------------------------------------


def ensure_raw_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create `raw`, every contract table (so a missing folder is an empty table) and the
    quarantine/manifest tables."""
    con.execute(f"SET memory_limit = '{settings.duckdb_memory_limit()}'")
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {RAW}")
    for table in TABLES.values():
        con.execute(raw_table_ddl(table, RAW))
        # Warehouses created before a column existed (a pseudonym, loans.officer_id): add it.
        have = {
            r[0]
            for r in con.execute(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_schema = ? AND table_name = ?",
                [RAW, table.name],
            ).fetchall()
        }
        added = [(c.name, c.sql_type) for c in table.columns]
        added += [(name, "VARCHAR") for name in table.pseudonym_columns]
        for column, sql_type in added:
            if column not in have:
                con.execute(
                    f"ALTER TABLE {RAW}.{ident(table.name)} "
                    f"ADD COLUMN IF NOT EXISTS {ident(column)} {sql_type}"
                )
    for ddl in META_DDL:
        con.execute(ddl)


def _is_landing_name(name: str) -> bool:
    return name.lower().endswith(LANDING_SUFFIXES)


def scan_landing(landing_dir: Path, table: str) -> tuple[list[Path], list[FileResult]]:
    """The table's landing files, oldest first (mtime, then name: later files win), and the
    entries of its folder that are reported instead of read (status 'rejected', with a
    reason): other file types, directories, symbolic links that leave the landing root or
    lead nowhere, special files. Hidden entries (a leading '.', e.g. uploads in progress)
    are left alone."""
    folder = landing_dir / table
    if not folder.is_dir():
        return [], []
    root = landing_dir.resolve()
    files: list[Path] = []
    reported: list[FileResult] = []
    for p in sorted(folder.iterdir()):
        if p.name.startswith("."):
            continue
        reason = None
        try:
            target = p.resolve()
        except (OSError, RuntimeError):  # a loop of symbolic links
            target = None
        if target is None:
            reason = "symbolic link loop: not read"
        elif not target.is_relative_to(root):
            reason = f"symbolic link leaving the landing root (to {target}): not read"
        elif p.is_symlink() and not target.exists():
            reason = f"broken symbolic link (to {target}): not read"
        if reason is None:
            if p.is_dir():
                reason = "a directory, not a file: sub-folders are not read"
            elif not p.is_file():
                reason = "not a regular file: not read"
            elif not _is_landing_name(p.name):
                reason = (
                    "not a landing file type: only "
                    + ", ".join(f"*{s}" for s in LANDING_SUFFIXES)
                    + " are read"
                )
        if reason is None:
            files.append(p)
        else:
            reported.append(FileResult(str(p), "rejected", reason=cap(reason, LINE_MAX)))
    files.sort(key=lambda p: (p.stat().st_mtime_ns, p.name))
    return files, reported


def landing_files(landing_dir: Path, table: str) -> list[Path]:
    """The table's landing files, oldest first (mtime, then name): later files win."""
    return scan_landing(landing_dir, table)[0]


def check_landing_root(landing_dir: Path) -> None:
    """A missing or empty landing root is an error, not an empty delivery (a typo in
    RISK_LANDING_DIR must not publish an empty watchlist). The same rule as `risk`'s own
    settings check (`settings.landing_root_problem`), here for every run (UI, schedules)."""
    problem = settings.landing_root_problem(landing_dir)
    if problem:
        raise LandingError(
            f"landing root {landing_dir} {problem}: check RISK_LANDING_DIR (or the run's "
            "warehouse.landing_dir) and the upstream transfer"
        )


# --- reading one file ------------------------------------------------------------------------


def _is_gzip(path: Path) -> bool:
    return path.name.lower().endswith(".gz")


def _open_bytes(path: Path):
    """The file's bytes (decompressed for *.csv.gz)."""
    return gzip.open(path, "rb") if _is_gzip(path) else path.open("rb")


def detect_encoding(path: Path) -> str:
    """'utf-8' (BOM or not) or 'gb18030' (a superset of GBK); anything else is rejected."""
    for encoding in ("utf-8", "gb18030"):
        decoder = codecs.getincrementaldecoder(encoding)()
        try:
            with _open_bytes(path) as fh:
                while chunk := fh.read(_CHUNK):
                    decoder.decode(chunk)
                decoder.decode(b"", final=True)
            return encoding
        except UnicodeDecodeError:
            continue
        except (OSError, EOFError) as exc:  # a damaged or truncated gzip file
            raise FileRejected(cap(f"unreadable gzip file: {exc}", LINE_MAX)) from exc
    raise FileRejected("encoding is neither UTF-8 nor GB18030/GBK")


def _alias(path: Path, tmp_dir: Path) -> Path:
    """A link to `path` under a plain name: DuckDB treats *, ?, [ and { in a path as a glob
    pattern, so a landing file (or root) named like one is never passed to it literally."""
    suffix = ".csv.gz" if _is_gzip(path) else path.suffix.lower()
    alias = tmp_dir / f"in_{next(_alias_counter)}{suffix}"
    alias.symlink_to(path.resolve())
    return alias


def _transcode_to_utf8(path: Path, encoding: str, tmp_dir: Path) -> Path:
    """DuckDB reads UTF-8 only (the encodings extension needs the internet): re-encode
    (and decompress) into a temp file with a plain name."""
    out = tmp_dir / f"in_{next(_alias_counter)}.utf8.csv"
    with (
        io.TextIOWrapper(_open_bytes(path), encoding=encoding, newline="") as src,
        out.open("w", encoding="utf-8", newline="") as dst,
    ):
        while chunk := src.read(_CHUNK):
            dst.write(chunk)
    return out


def _csv_header(path: Path) -> list[str]:
    with io.TextIOWrapper(_open_bytes(path), encoding="utf-8-sig", newline="") as fh:
        first = fh.readline()
    if not first.strip():
        return []
    return [h.strip() for h in next(csv.reader(io.StringIO(first)))]


def _read_file_into(
    con: duckdb.DuckDBPyConnection, path: Path, tmp_dir: Path
) -> tuple[dict[str, str], str | None]:
    """Read `path` into `_file` (+ `_file_rejects` for malformed CSV lines).

    A Parquet file is not copied: `_file` and `_file_numbered` are views over it, numbered by
    the reader's own row number (unless the file has a column of that name: then copied).
    Returns {lower-cased column name: source column name} and the detected encoding.
    """
    for temp in ("_file_numbered", "_file", "_file_rejects"):
        _drop_temp(con, temp)
    if path.suffix.lower() == ".parquet":
        reader = f"read_parquet({sql_text(str(_alias(path, tmp_dir)))}"
        try:
            con.execute(f"CREATE TEMP VIEW _file AS SELECT * FROM {reader})")
            names = [r[0] for r in con.execute("DESCRIBE _file").fetchall()]
            if any(n.lower() in ("file_row_number", "_source_row") for n in names):
                _drop_temp(con, "_file")
                con.execute(f"CREATE TEMP TABLE _file AS SELECT * FROM {reader})")
            else:
                con.execute(
                    "CREATE TEMP VIEW _file_numbered AS SELECT * EXCLUDE (file_row_number), "
                    f"file_row_number + 1 AS _source_row FROM {reader}, file_row_number = true)"
                )
        except duckdb.Error as exc:
            raise FileRejected(cap(f"unreadable Parquet file: {exc}", LINE_MAX)) from exc
        con.execute("CREATE TEMP TABLE _file_rejects (line BIGINT, csv_line VARCHAR, msg VARCHAR)")
        return {n.strip().lower(): n for n in names}, None

    encoding = detect_encoding(path)
    if encoding == "utf-8":
        readable = _alias(path, tmp_dir)
    else:
        readable = _transcode_to_utf8(path, encoding, tmp_dir)
    header = _csv_header(readable)
    con.execute("CREATE TEMP TABLE _file_rejects (line BIGINT, csv_line VARCHAR, msg VARCHAR)")
    if not header:  # an empty file: zero rows
        con.execute("CREATE TEMP TABLE _file AS SELECT 1 AS _empty WHERE false")
        return {}, encoding
    if len(set(header)) != len(header):
        dups = sorted(h for h, n in Counter(header).items() if n > 1)
        raise FileRejected(cap(f"duplicate column names in header: {dups}", LINE_MAX))
    columns = "{" + ", ".join(f"{sql_text(h)}: 'VARCHAR'" for h in header) + "}"
    con.execute("DROP TABLE IF EXISTS _rej_errors")
    con.execute("DROP TABLE IF EXISTS _rej_scans")
    try:
        con.execute(
            f"""CREATE TEMP TABLE _file AS SELECT * FROM read_csv({sql_text(str(readable))},
                header=true, auto_detect=false, delim=',', quote='"', escape='"',
                columns={columns}, store_rejects=true,
                rejects_table='_rej_errors', rejects_scan='_rej_scans')"""
        )
    except duckdb.Error as exc:
        raise FileRejected(cap(f"unreadable CSV: {exc}", LINE_MAX)) from exc
    con.execute(
        """INSERT INTO _file_rejects
           SELECT line, any_value(csv_line), string_agg(DISTINCT error_message, '; ')
           FROM _rej_errors GROUP BY line"""
    )
    return {h.lower(): h for h in header}, encoding


# --- SQL generated from the contract ---------------------------------------------------------


def _uscc_valid_sql(v: str) -> str:
    """SQL for 'v is a valid USCC' (`assets.contract.uscc_valid_sql`, the one rule)."""
    return uscc_valid_sql(v)


#: Source types whose value is never an empty text: "missing" is just SQL NULL, and the text
#: of the value is needed only to show a broken one (not computed for every row).
_NON_TEXT_TYPES = ("BOOLEAN", "TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT",
                   "USMALLINT", "UINTEGER", "UBIGINT", "UHUGEINT", "FLOAT", "DOUBLE", "DATE")


def _non_text(src_type: str | None) -> bool:
    return src_type is not None and (
        src_type in _NON_TEXT_TYPES or src_type.startswith(("DECIMAL", "TIMESTAMP"))
    )


def _trim_sql(expr: str) -> str:
    """SQL for trim(expr), calling trim only when an end is not printable ASCII: trim removes
    spaces (Unicode category Zs, one ASCII among them), never '!' to '~', and costs a copy of
    every value even when nothing is trimmed."""
    return (
        f"CASE WHEN ord({expr}[1]) BETWEEN 33 AND 126 AND ord({expr}[-1]) BETWEEN 33 AND 126 "
        f"THEN {expr} ELSE trim({expr}) END"
    )


@dataclass(frozen=True)
class _ColumnSql:
    """SQL for one contract column: `typed` over CTE `src` (the delivered value as
    `_src_<name>`, any type); `text` (trimmed, '' as NULL), `missing` and `wide` (what the
    money bound casts to DECIMAL(38, 2)) over CTE `typed`, which adds `extra` to `src`."""

    text: str
    missing: str
    typed: str
    wide: str
    extra: str | None = None


def _column_sql(col: Column, src: str | None, src_type: str | None) -> _ColumnSql:
    if src is None:
        return _ColumnSql("NULL::VARCHAR", "true", f"NULL::{col.sql_type}", "NULL")
    quoted = ident(f"_src_{col.name}")
    as_text = quoted if src_type == "VARCHAR" else f"CAST({quoted} AS VARCHAR)"
    text = f"NULLIF({_trim_sql(as_text)}, '')"
    if col.kind in ("text", "uscc", "enum", "month"):  # the typed value is the text
        name = ident(col.name)
        return _ColumnSql(name, f"{name} IS NULL", text, name)
    if col.kind == "date" and src_type == "VARCHAR":
        typed = (
            f"CASE WHEN regexp_full_match({text}, '[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}') "
            f"THEN try_strptime({text}, '%Y-%m-%d')::DATE END"
        )
    elif col.kind == "date":
        typed = f"TRY_CAST({quoted} AS DATE)"
    elif src_type == "VARCHAR":
        typed = f"TRY_CAST({text} AS {col.sql_type})"
    else:
        typed = f"TRY_CAST({quoted} AS {col.sql_type})"
    if _non_text(src_type):
        # A number or date delivered typed (Parquet) is missing only when NULL; its text is
        # computed only to show a broken value (inside THEN), never for every row.
        return _ColumnSql(text, f"{quoted} IS NULL", typed, quoted)
    txt = ident(f"_txt_{col.name}")  # text delivered (CSV): computed once per row
    return _ColumnSql(txt, f"{txt} IS NULL", typed, txt, extra=f"{text} AS {txt}")


def _column_reasons(col: Column, sql: _ColumnSql) -> list[str]:
    """SQL CASE expressions yielding a reason when the column breaks its rule (else NULL).

    Over the typed column and `_src_<name>`: the delivered text is computed for every row only
    when the source is text; otherwise only for a broken value (inside THEN)."""
    t = ident(col.name)
    present = f"NOT ({sql.missing})"
    reasons = []
    if not col.nullable:
        reasons.append(f"CASE WHEN {sql.missing} THEN '{col.name}: required value missing' END")
    # The delivered value, cut to VALUE_SHOWN_MAX; never a personal value.
    value = "'(personal data, not shown)'" if col.pii else _cap_sql(sql.text, VALUE_SHOWN_MAX)
    shown = f"'{col.name}: ''' || {value} || ''' is not {col.rule_text()}'"
    # Plausibility bounds of the contract (assets.contract.MONEY_MAX, DATE_MIN, DATE_MAX). The
    # typed amount when there is one (the same number as the wider cast), else the wider cast.
    limit = literal(MONEY_MAX)
    over = (
        f"(CASE WHEN {t} IS NOT NULL THEN abs({t}) > {limit} "
        f"ELSE abs(TRY_CAST({sql.wide} AS DECIMAL(38, 2))) > {limit} END)"
    )
    quoted = sql_text(col.name + ": '") + f" || {value} || "
    if col.kind == "money":
        bound = sql_text(f"' is beyond the plausibility bound of {MONEY_MAX} CNY")
        reasons.append(f"CASE WHEN {present} AND {over} THEN {quoted}{bound} END")
    if col.kind == "date":
        dates = sql_text(f"' is outside the plausible dates {DATE_MIN} to {DATE_MAX}")
        reasons.append(
            f"CASE WHEN {t} < {date_literal(DATE_MIN)} OR {t} > {date_literal(DATE_MAX)} "
            f"THEN {quoted}{dates} END"
        )
    bad = []
    if col.kind == "money":  # too large for DECIMAL(18,2) but a number: the bound says so
        bad.append(f"({t} IS NULL AND NOT coalesce({over}, false))")
    if col.kind in ("date", "decimal", "int"):
        bad.append(f"{t} IS NULL")
    if col.kind == "enum":
        bad.append(f"{t} NOT IN ({', '.join(sql_text(v) for v in col.values)})")
    if col.kind == "uscc":
        bad.append(f'NOT "_ok_{col.name}"')
    if col.kind == "month":
        bad.append(f"NOT regexp_full_match({t}, '[0-9]{{4}}-(0[1-9]|1[0-2])')")
    if col.pattern:
        bad.append(f"NOT regexp_full_match({t}, {sql_text(col.pattern)})")
    for op, bound in (("<", col.ge), ("<=", col.gt), (">", col.le), (">=", col.lt)):
        if bound is not None:
            bad.append(f"{t} {op} {bound!r}")
    if bad:
        reasons.append(f"CASE WHEN {present} AND ({' OR '.join(bad)}) THEN {shown} END")
    return reasons


def _pk_text(table: Table) -> str:
    """The primary key as one text value (parts joined by '|'), to match quarantined rows."""
    parts = [f'CAST("{k}" AS VARCHAR)' for k in table.primary_key]
    return parts[0] if len(parts) == 1 else "concat_ws('|', " + ", ".join(parts) + ")"


def _file_columns_sql(
    table: Table, cols: dict[str, str], types: dict[str, str]
) -> tuple[dict[str, _ColumnSql], str]:
    """The SQL of each contract column and the CTE `src` (delivered columns as `_src_<name>`,
    with `_source_row`) over `_file_numbered`."""
    sqls: dict[str, _ColumnSql] = {}
    sources = []
    for c in table.columns:
        src = cols.get(c.name.lower())
        sqls[c.name] = _column_sql(c, src, types.get(src) if src else None)
        if src is not None:
            sources.append(f"{ident(src)} AS {ident('_src_' + c.name)}, ")
    return sqls, (f"src AS NOT MATERIALIZED (SELECT {''.join(sources)}_source_row "
                  "FROM _file_numbered)")


def _file_has_repeated_keys(
    con: duckdb.DuckDBPyConnection, table: Table, cols: dict[str, str], types: dict[str, str]
) -> bool:
    """Whether two rows of the file may share a primary key: one aggregate over 64-bit hashes
    of the key (a collision only costs the exact check in `_validate_file_sql`)."""
    sqls, src = _file_columns_sql(table, cols, types)
    key = ", ".join(sqls[k].typed for k in table.primary_key)
    return con.execute(
        f"WITH {src} SELECT count(*) FROM ({_repeated_hashes_sql(f'hash({key})', 'src')})"
    ).fetchone()[0] > 0


def _repeated_hashes_sql(hash_expr: str, relation: str) -> str:
    """SELECT of the values `_h` of `hash_expr` that occur more than once in `relation`: by
    sorting and comparing neighbours, which costs about half a hash aggregate once the
    distinct hashes (all of them, normally) outgrow the CPU caches."""
    return f"""SELECT DISTINCT _h FROM (
                 SELECT _h, lead(_h) OVER (ORDER BY _h) AS _next
                 FROM (SELECT {hash_expr} AS _h FROM {relation}))
               WHERE _h = _next"""


def _validate_file_sql(
    table: Table, cols: dict[str, str], types: dict[str, str], *, repeated_keys: bool = True
) -> str:
    """SELECT over `_file_numbered` giving typed contract columns, lineage, `_reason` and, for
    quarantined rows only, `_record` (the delivered values).

    One streaming pass, nothing materialized but the result; a delivered value is turned into
    text for every row only when it came as text (CSV), else only for a quarantined row.
    Costly checks run once per distinct value or key, not per row: the USCC check character
    over distinct codes, duplicate keys through a grouped aggregate (over the key columns
    only) rather than a window, and only when `repeated_keys` (`_file_has_repeated_keys`).
    """
    sqls, src_cte = _file_columns_sql(table, cols, types)
    pk = ", ".join(ident(k) for k in table.primary_key)
    pk_typed = ", ".join(f"{sqls[k].typed} AS {ident(k)}" for k in table.primary_key)
    uscc_cols = [c.name for c in table.columns if c.kind == "uscc"]
    typed_cols = ", ".join(
        [f"{sqls[c.name].typed} AS {ident(c.name)}" for c in table.columns]
        + [sql.extra for sql in sqls.values() if sql.extra]
    )
    ctes = [
        src_cte,
        f"typed AS NOT MATERIALIZED (SELECT *, {typed_cols} FROM src)",
    ]
    joins = []
    if repeated_keys:
        ctes.append(
            f"""dups AS (SELECT {pk}, max(_source_row) AS _keep_row
                         FROM (SELECT {pk_typed}, _source_row FROM src)
                         GROUP BY ALL HAVING count(*) > 1)"""
        )
        joins.append(f"LEFT JOIN dups USING ({pk})")
    for name in uscc_cols:
        ctes.append(
            f"""uscc_{name} AS (SELECT v AS "{name}", {_uscc_valid_sql("v")} AS "_ok_{name}"
                FROM (SELECT DISTINCT {sqls[name].typed} AS v FROM src) WHERE v IS NOT NULL)"""
        )
        joins.append(f'LEFT JOIN uscc_{name} USING ("{name}")')
    reasons = [r for c in table.columns for r in _column_reasons(c, sqls[c.name])]
    reasons += [
        f"CASE WHEN NOT ({rule.sql}) THEN '{rule.rule_id}: {rule.text}' END"
        for rule in table.row_rules
    ]
    if repeated_keys:
        reasons.append(
            "CASE WHEN _keep_row IS NOT NULL AND _source_row <> _keep_row "
            "THEN 'duplicate primary key in this file: a later row with the same key is kept' END"
        )
    record = (
        "to_json(struct_pack("
        + ", ".join(f'"{c.name}" := {sqls[c.name].text}' for c in table.columns)
        + "))"
    )
    out_cols = ", ".join(ident(c.name) for c in table.columns)
    return f"""
        WITH {", ".join(ctes)},
        checked AS (SELECT *, concat_ws('; ', {", ".join(reasons)}) AS _reason
                    FROM typed {" ".join(joins)})
        SELECT {out_cols}, _source_row, _reason,
               CASE WHEN _reason <> '' THEN {record} END AS _record
        FROM checked"""


# --- loading a table -------------------------------------------------------------------------


def _manifest(con: duckdb.DuckDBPyConnection, table: str) -> dict[str, tuple[int, datetime]]:
    rows = con.execute(
        f"""SELECT source_file, file_size, file_mtime FROM {RAW}.load_manifest
            WHERE table_name = ? QUALIFY row_number() OVER (
              PARTITION BY source_file ORDER BY loaded_at DESC) = 1""",
        [table],
    ).fetchall()
    return {r[0]: (r[1], r[2]) for r in rows}


def file_stamp(path: Path) -> tuple[int, datetime]:
    """(size, mtime) of a landing file, as raw.load_manifest records it."""
    st = path.stat()
    return st.st_size, datetime.fromtimestamp(st.st_mtime_ns / 1e9, tz=UTC).replace(tzinfo=None)


def _temp_kind(con: duckdb.DuckDBPyConnection, name: str) -> str | None:
    """'VIEW', a table type, or None when there is no temp relation of that name."""
    kind = con.execute(
        "SELECT table_type FROM information_schema.tables WHERE table_name = ? "
        "AND table_catalog = 'temp'",
        [name],
    ).fetchone()
    return kind[0] if kind else None


def _drop_temp(con: duckdb.DuckDBPyConnection, name: str) -> None:
    """Drop a temp table or view of that name, whichever it is."""
    kind = _temp_kind(con, name)
    if kind:
        con.execute(f"DROP {'VIEW' if kind == 'VIEW' else 'TABLE'} {name}")


def _number_rows(con: duckdb.DuckDBPyConnection) -> None:
    """`_file_numbered`: `_file` with its 1-based data row number.

    When the CSV had malformed lines (quarantined on their own), good rows are numbered
    around them so every row keeps the number of its position in the file.
    """
    if _temp_kind(con, "_file_numbered") is not None:  # a Parquet file, numbered on reading
        return
    n_rejects = con.execute("SELECT count(*) FROM _file_rejects").fetchone()[0]
    if n_rejects == 0:
        con.execute(
            "CREATE TEMP VIEW _file_numbered AS SELECT *, rowid + 1 AS _source_row FROM _file"
        )
        return
    con.execute(
        """CREATE TEMP TABLE _file_numbered AS
           WITH slots AS (
             SELECT s AS _source_row, row_number() OVER (ORDER BY s) - 1 AS k
             FROM range(1, (SELECT count(*) FROM _file) + (SELECT count(*) FROM _file_rejects) + 1)
               t(s)
             WHERE s NOT IN (SELECT line - 1 FROM _file_rejects))
           SELECT f.*, slots._source_row FROM (SELECT *, rowid AS k FROM _file) f
           JOIN slots USING (k)"""
    )
    con.execute("ALTER TABLE _file_numbered DROP COLUMN k")


def _stage_file(
    con: duckdb.DuckDBPyConnection, table: Table, path: Path, tmp_dir: Path
) -> FileResult:
    """Validate one file into `_incoming` (clean and quarantined rows, with `_reason`)."""
    result = FileResult(str(path), "loaded")
    with _phase("read"):
        cols, result.encoding = _read_file_into(con, path, tmp_dir)
    known = {c.name.lower() for c in table.columns}
    missing = [c for c in table.required_columns if c.lower() not in cols]
    if cols and missing:
        raise FileRejected(f"missing required column(s): {', '.join(missing)}")
    ignored = sorted(src for low, src in cols.items() if low not in known)
    result.ignored_columns = [cap(c, VALUE_SHOWN_MAX) for c in ignored[:IGNORED_COLUMNS_MAX]]
    if len(ignored) > IGNORED_COLUMNS_MAX:
        result.ignored_columns.append(f"... ({len(ignored) - IGNORED_COLUMNS_MAX} more)")
    cols = {low: src for low, src in cols.items() if low in known}
    types = {r[0]: r[1] for r in con.execute("DESCRIBE _file").fetchall()}
    with _phase("number_rows"):
        _number_rows(con)
    size, mtime = file_stamp(path)
    try:
        with _phase("file_keys"):
            repeated = _file_has_repeated_keys(con, table, cols, types)
        with _phase("validate"):
            _validate_into_incoming(con, table, path, cols, types, mtime, repeated)
    except (duckdb.IOException, duckdb.InvalidInputException) as exc:
        if _temp_kind(con, "_file") != "VIEW":
            raise
        # A Parquet file is read here, not before: a damaged page shows now. The failed
        # statement wrote nothing.
        raise FileRejected(cap(f"unreadable Parquet file: {exc}", LINE_MAX)) from exc
    return result


def _validate_into_incoming(
    con: duckdb.DuckDBPyConnection,
    table: Table,
    path: Path,
    cols: dict[str, str],
    types: dict[str, str],
    mtime: datetime,
    repeated: bool,
) -> None:
    con.execute(
        f"""INSERT INTO _incoming BY NAME
            SELECT *, {sql_text(str(path))} AS _source_file, ?::TIMESTAMP AS _file_mtime
            FROM ({_validate_file_sql(table, cols, types, repeated_keys=repeated)})""",
        [mtime],
    )
    con.execute(
        f"""INSERT INTO _incoming BY NAME
            SELECT line - 1 AS _source_row, {sql_text(str(path))} AS _source_file,
                   ?::TIMESTAMP AS _file_mtime,
                   to_json(struct_pack(csv_line := csv_line)) AS _record,
                   'malformed CSV line: ' || msg AS _reason
            FROM _file_rejects""",
        [mtime],
    )


def _incoming_ddl(table: Table) -> str:
    cols = [f'"{c.name}" {c.sql_type}' for c in table.columns]
    cols += [f"{ident(n)} VARCHAR" for n in table.pseudonym_columns]
    cols += [f"{n} {t}" for n, t in LINEAGE_COLUMNS.items()]
    cols += ["_record JSON", "_reason VARCHAR"]
    return "CREATE OR REPLACE TEMP TABLE _incoming (" + ", ".join(cols) + ")"


def _apply_foreign_keys(con: duckdb.DuckDBPyConnection, table: Table) -> None:
    """Orphans (no parent row in raw) get a reason and so go to quarantine.

    The batch's distinct keys are looked up in the parent (a semi join probing the parent
    with a hash table of the batch's keys, not one of the whole parent per batch); rows are
    updated only when a key has no parent."""
    for column, parent in table.foreign_keys:
        col = ident(column)
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE _orphan_keys AS
                WITH keys AS (SELECT DISTINCT {col} FROM _incoming WHERE {col} IS NOT NULL)
                SELECT {col} FROM keys EXCEPT
                SELECT {col} FROM {RAW}.{ident(parent)} SEMI JOIN keys USING ({col})"""
        )
        if con.execute("SELECT count(*) FROM _orphan_keys").fetchone()[0]:
            con.execute(
                f"""UPDATE _incoming SET _reason = concat_ws('; ', NULLIF(_reason, ''),
                      '{column}: no {parent} row with this {column}')
                    WHERE {col} IN (SELECT {col} FROM _orphan_keys)"""
            )
        _drop_temp(con, "_orphan_keys")


def fill_pseudonyms(
    con: duckdb.DuckDBPyConnection, relation: str, table: Table, *, only_missing: bool = False
) -> int:
    """Set each pseudonym column of `relation` (`Column.pseudonym`) to the HMAC-SHA256 of its
    personal value (trimmed, upper-cased) under `secrets.pseudonym_key()`.

    Hashes are computed in Python over the distinct values, in batches, and joined back; the
    key never enters SQL text, dbt or logs. `only_missing` fills rows without a key yet (rows
    loaded before the column existed). Returns the number of distinct values hashed.
    """
    hashed = 0
    for key_col, pii_col in table.pseudonym_columns.items():
        norm = f"upper(trim({ident(pii_col)}))"
        where = f"{ident(pii_col)} IS NOT NULL" + (
            f" AND {ident(key_col)} IS NULL" if only_missing else ""
        )
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE _pseudonym_todo AS
                SELECT v, row_number() OVER () - 1 AS i
                FROM (SELECT DISTINCT {norm} AS v FROM {relation} WHERE {where})"""
        )
        total = con.execute("SELECT count(*) FROM _pseudonym_todo").fetchone()[0]
        key = secrets.pseudonym_key() if total else b""
        for start in range(0, total, _PSEUDONYM_BATCH):
            values = [
                v
                for (v,) in con.execute(
                    "SELECT v FROM _pseudonym_todo WHERE i >= ? AND i < ?",
                    [start, start + _PSEUDONYM_BATCH],
                ).fetchall()
            ]
            hashes = [secrets.keyed_hash(v, key) for v in values]
            con.register("_pseudonym_batch", pa.table({"v": values, "k": hashes}))
            try:
                con.execute(
                    f"""UPDATE {relation} SET {ident(key_col)} = b.k
                        FROM _pseudonym_batch b WHERE {norm} = b.v AND {where}"""
                )
            finally:
                con.unregister("_pseudonym_batch")
        _drop_temp(con, "_pseudonym_todo")
        hashed += total
    return hashed


def pseudonym_key_check() -> str:
    """The keyed hash that names today's pseudonym key in raw.pseudonym_keys."""
    return secrets.keyed_hash(_KEY_CHECK_TEXT, secrets.pseudonym_key())


def _key_raw_table(con: duckdb.DuckDBPyConnection, table: Table) -> None:
    """Rows of raw keyed with another key (or none: loaded before the column existed) get
    their pseudonyms computed with today's key."""
    check = pseudonym_key_check()
    known = con.execute(
        f"SELECT key_check FROM {RAW}.pseudonym_keys WHERE table_name = ?", [table.name]
    ).fetchone()
    relation = f"{RAW}.{ident(table.name)}"
    if known is not None and known[0] == check:
        fill_pseudonyms(con, relation, table, only_missing=True)
        return
    fill_pseudonyms(con, relation, table)
    con.execute(f"DELETE FROM {RAW}.pseudonym_keys WHERE table_name = ?", [table.name])
    con.execute(
        f"INSERT INTO {RAW}.pseudonym_keys VALUES (?, ?, ?)",
        [table.name, check, datetime.now(UTC).replace(tzinfo=None)],
    )


def check_table_folder(
    con: duckdb.DuckDBPyConnection, landing_dir: Path, table_name: str, files: list[Path]
) -> None:
    """A folder that had files at an earlier load and has none today fails the load: files
    vanishing overnight (a broken transfer, a wrong landing root) must not look like an empty
    delivery. A folder that never had files is an empty table."""
    if files:
        return
    earlier = con.execute(
        f"SELECT count(*), max(loaded_at) FROM {RAW}.load_manifest WHERE table_name = ?",
        [table_name],
    ).fetchone()
    if earlier[0]:
        folder = landing_dir / table_name
        state = "does not exist" if not folder.exists() else "has no landing file"
        raise LandingError(
            f"{folder} {state}, but raw.load_manifest lists {earlier[0]} file(s) of table "
            f"{table_name} from earlier loads (last {earlier[1]:%Y-%m-%d %H:%M} UTC): refusing "
            "to treat a vanished delivery as an empty one. If the table really ended, delete "
            f"its rows from raw.load_manifest (table_name = '{table_name}')."
        )


def gone_files(
    manifest: dict[str, tuple[int, datetime]], files: list[Path], reported: list[FileResult]
) -> list[FileResult]:
    """Files loaded at an earlier load that are no longer in the landing folder. Their rows
    stay loaded (the contract keeps loaded rows until re-delivered; archiving a delivered
    file is normal), but a file that vanishes should be seen, not silently forgotten."""
    present = {str(p) for p in files} | {f.source_file for f in reported}
    return [
        FileResult(
            source,
            "gone",
            reason=cap(
                f"loaded earlier ({size} bytes, modified {mtime:%Y-%m-%d %H:%M}) and no longer "
                "in the landing folder: its rows stay loaded; to retract rows, re-deliver "
                "them corrected",
                LINE_MAX,
            ),
        )
        for source, (size, mtime) in sorted(manifest.items())
        if source not in present
    ]


def load_table(
    con: duckdb.DuckDBPyConnection,
    landing_dir: Path,
    table_name: str,
    *,
    force: bool = False,
    batch_bytes: int = BATCH_BYTES,
) -> TableResult:
    """Load every new or changed file of one landing table. Idempotent.

    Files go in batches of about `batch_bytes` (oldest first), each batch in one transaction:
    memory stays bounded at any scale, and a failure keeps every batch committed before it
    (the manifest records them, so a re-run carries on with the rest).

    Raises `LandingError` (nothing written) when the landing root is missing or empty, or the
    table's folder had files at an earlier load and has none today.
    """
    started = time.perf_counter()
    table = TABLES[table_name]
    result = TableResult(table_name)
    with _phase("scan"):
        check_landing_root(landing_dir)
        files, reported = scan_landing(landing_dir, table_name)
        check_table_folder(con, landing_dir, table_name, files)
    with _phase("pseudonyms"), transaction(con):
        _publish_reported(con, table_name, reported)
        if table.pseudonym_columns:
            _key_raw_table(con, table)
    result.files += reported
    if _has_appended(con, table_name):  # a first load that stopped before de-duplicating
        with _phase("deduplicate"), transaction(con):
            _deduplicate(con, table)
    with _phase("scan"):
        manifest = _manifest(con, table_name)
    result.files += gone_files(manifest, files, reported)
    seen = {} if force else manifest
    todo: list[Path] = []
    for path in files:
        if seen.get(str(path)) == file_stamp(path):
            result.files.append(FileResult(str(path), "unchanged"))
        else:
            todo.append(path)
    for batch in _batches(todo, batch_bytes):
        with tempfile.TemporaryDirectory(prefix="risk_ingest_") as tmp:
            _load_files(con, table, batch, Path(tmp), result)
    if _has_appended(con, table_name):  # a first load: keep the newest of each key once
        with _phase("deduplicate"), transaction(con):
            _deduplicate(con, table)
    with _phase("manifest"):
        result.row_count = con.execute(
            f"SELECT count(*) FROM {RAW}.{table_name}").fetchone()[0]
    result.seconds = time.perf_counter() - started
    return result


#: Manifest status of a file appended by a first load and not yet de-duplicated.
APPENDED = "appended"


def _is_empty(con: duckdb.DuckDBPyConnection, table_name: str) -> bool:
    return con.execute(f"SELECT count(*) FROM (SELECT 1 FROM {RAW}.{ident(table_name)} LIMIT 1)"
                       ).fetchone()[0] == 0


def _has_appended(con: duckdb.DuckDBPyConnection, table_name: str) -> bool:
    return con.execute(
        f"SELECT count(*) FROM {RAW}.load_manifest WHERE table_name = ? AND status = ?",
        [table_name, APPENDED],
    ).fetchone()[0] > 0


def _key_hash(table: Table, alias: str = "") -> str:
    """SQL hash of the primary key: one 64-bit value to group by instead of the key's texts."""
    prefix = f"{alias}." if alias else ""
    return "hash(" + ", ".join(f"{prefix}{ident(k)}" for k in table.primary_key) + ")"


def _deduplicate(con: duckdb.DuckDBPyConnection, table: Table) -> int:
    """Keep the newest delivery of each key of raw.<table> (mtime, then file name, then row,
    as the upsert decides) and mark the appended files loaded. One sorted pass over the key
    hashes finds the keys that may be repeated; only their rows go through the window (exact
    keys, so a hash collision of two keys keeps both). None when one file was appended (a
    file's clean rows have distinct keys). Returns the rows removed."""
    name = f"{RAW}.{ident(table.name)}"
    pk_cols = ", ".join(ident(k) for k in table.primary_key)
    files = con.execute(
        f"SELECT count(*) FROM {RAW}.load_manifest WHERE table_name = ? AND status = ?",
        [table.name, APPENDED],
    ).fetchone()[0]
    removed = 0
    if files > 1:
        con.execute(
            "CREATE OR REPLACE TEMP TABLE _repeated_hashes AS "
            + _repeated_hashes_sql(_key_hash(table), name)
        )
        if con.execute("SELECT count(*) FROM _repeated_hashes").fetchone()[0]:
            removed = con.execute(
                f"""DELETE FROM {name} WHERE rowid IN (
                      SELECT _rid FROM (
                        SELECT t.rowid AS _rid, row_number() OVER (PARTITION BY {pk_cols}
                          ORDER BY _file_mtime DESC, _source_file DESC, _source_row DESC) AS _rank
                        FROM {name} AS t
                        WHERE {_key_hash(table, "t")} IN (SELECT _h FROM _repeated_hashes))
                      WHERE _rank > 1)"""
            ).fetchone()[0]
        _drop_temp(con, "_repeated_hashes")
    con.execute(
        f"UPDATE {RAW}.load_manifest SET status = 'loaded' WHERE table_name = ? AND status = ?",
        [table.name, APPENDED],
    )
    return removed


def _batches(paths: list[Path], batch_bytes: int) -> list[list[Path]]:
    """Consecutive groups of files of at most `batch_bytes` on disk (a larger file alone)."""
    batches: list[list[Path]] = []
    size = 0
    for path in paths:
        n = path.stat().st_size * (GZIP_EXPANSION if _is_gzip(path) else 1)
        if not batches or size + n > batch_bytes:
            batches.append([])
            size = 0
        batches[-1].append(path)
        size += n
    return batches


def _publish_reported(
    con: duckdb.DuckDBPyConnection, table_name: str, reported: list[FileResult]
) -> None:
    """Today's entries that are not landing files replace the earlier ones in
    `raw.rejected_files` (files rejected on reading stay until redelivered: they are in the
    manifest)."""
    now = datetime.now(UTC).replace(tzinfo=None)
    con.execute(
        f"""DELETE FROM {RAW}.rejected_files WHERE table_name = ? AND source_file NOT IN
            (SELECT source_file FROM {RAW}.load_manifest WHERE table_name = ?)""",
        [table_name, table_name],
    )
    for fr in reported:
        con.execute(
            f"INSERT INTO {RAW}.rejected_files VALUES (?, ?, ?, ?)",
            [table_name, fr.source_file, fr.reason, now],
        )


def _load_files(
    con: duckdb.DuckDBPyConnection, table: Table, todo: list[Path], tmp: Path, result: TableResult
) -> None:
    """Stage and validate a batch of files (temp tables, autocommit: row ids stay file
    positions), then write raw, quarantine and manifest in one transaction: all or nothing."""
    now = datetime.now(UTC).replace(tzinfo=None)
    con.execute(_incoming_ddl(table))
    staged: list[FileResult] = []
    rejected: list[FileResult] = []
    for path in todo:
        try:
            staged.append(_stage_file(con, table, path, tmp))
        except FileRejected as exc:
            rejected.append(FileResult(str(path), "rejected", reason=cap(str(exc), REASON_MAX)))
    if table.pseudonym_columns:
        with _phase("pseudonyms"):
            fill_pseudonyms(con, "_incoming", table)
    with _phase("foreign_keys"):
        _apply_foreign_keys(con, table)
    con.execute("BEGIN TRANSACTION")
    try:
        _publish(con, table, staged, rejected, now)
        with _phase("commit"):
            con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    result.files += rejected + staged
    for temp in ("_incoming", "_clean", "_file_numbered", "_file", "_file_rejects"):
        _drop_temp(con, temp)


def _publish(
    con: duckdb.DuckDBPyConnection,
    table: Table,
    staged: list[FileResult],
    rejected: list[FileResult],
    now: datetime,
) -> None:
    name = table.name
    # A first load (raw table empty, or its earlier batches appended and not yet
    # de-duplicated): no row of an earlier load can be replaced, so the batch is appended
    # without probing the growing table; load_table keeps the newest delivery of each key
    # once at the end (`_deduplicate`, the same rule: mtime, then file name, then row).
    append = _has_appended(con, name) or _is_empty(con, name)
    for fr in rejected + staged:
        con.execute(
            f"DELETE FROM {RAW}.rejected_files WHERE table_name = ? AND source_file = ?",
            [name, fr.source_file],
        )
    for fr in rejected:
        con.execute(
            f"INSERT INTO {RAW}.rejected_files VALUES (?, ?, ?, ?)",
            [name, fr.source_file, fr.reason, now],
        )
        _record_manifest(con, name, Path(fr.source_file), fr, now)

    files = [f.source_file for f in staged]
    with _phase("quarantine"):
        con.execute(
            f"DELETE FROM {RAW}.rejected_rows WHERE table_name = ? "
            "AND list_contains(?, source_file)",
            [name, files],
        )
        con.execute(
            f"""INSERT INTO {RAW}.rejected_rows
                SELECT ?, _source_file, _source_row, {_cap_sql("_reason", REASON_MAX)},
                       {_cap_json_sql("_record", REASON_MAX)}, {_pk_text(table)}, ?
                FROM _incoming WHERE _reason <> ''""",
            [name, now],
        )
    pk_cols = ", ".join(f'"{k}"' for k in table.primary_key)
    join = " AND ".join(f'o."{k}" = n."{k}"' for k in table.primary_key)
    contract_cols = ", ".join(ident(c) for c in (*table.column_names, *table.pseudonym_columns))
    lineage = ", ".join(LINEAGE_COLUMNS)
    clean = "FROM _incoming WHERE _reason = ''"
    if append or len(staged) <= 1:
        # Appended batches are de-duplicated once at the end (`_deduplicate`), and the clean
        # rows of one file have distinct keys (the file's duplicates are quarantined).
        source = f"(SELECT * {clean})"
    else:
        with _phase("deduplicate"):
            # Newest delivery of each key in this batch (mtime, then file name, then row);
            # only keys delivered more than once go through the window.
            con.execute(
                f"""CREATE OR REPLACE TEMP TABLE _clean AS
                    WITH repeated AS (SELECT {pk_cols} {clean} GROUP BY ALL HAVING count(*) > 1)
                    SELECT {contract_cols}, {lineage} FROM (SELECT * {clean}) ANTI JOIN repeated
                      USING ({pk_cols})
                    UNION ALL
                    SELECT {contract_cols}, {lineage} FROM (SELECT * {clean}) SEMI JOIN repeated
                      USING ({pk_cols})
                    QUALIFY row_number() OVER (PARTITION BY {pk_cols}
                      ORDER BY _file_mtime DESC, _source_file DESC, _source_row DESC) = 1"""
            )
        source = "_clean"
    newer = (
        "(n._file_mtime > o._file_mtime OR (n._file_mtime = o._file_mtime "
        "AND n._source_file >= o._source_file))"
    )
    with _phase("write"):
        if append:
            con.execute(
                f"""INSERT INTO {RAW}.{name} ({contract_cols}, {lineage})
                    SELECT {contract_cols}, {lineage} FROM {source}"""
            )
        else:
            con.execute(f"DELETE FROM {RAW}.{name} o USING {source} n WHERE {join} AND {newer}")
            con.execute(
                f"""INSERT INTO {RAW}.{name} ({contract_cols}, {lineage})
                    SELECT {contract_cols}, {lineage} FROM {source} n
                    WHERE NOT EXISTS (SELECT 1 FROM {RAW}.{name} o WHERE {join})"""
            )
    with _phase("quarantine"):
        # A key re-delivered cleanly no longer needs its quarantined versions from older files.
        older = con.execute(
            f"""SELECT count(*) FROM {RAW}.rejected_rows WHERE table_name = ?
                AND NOT list_contains(?, source_file)""",
            [name, files],
        ).fetchone()[0]
        if older:
            con.execute(
                f"""DELETE FROM {RAW}.rejected_rows WHERE table_name = ?
                    AND NOT list_contains(?, source_file)
                    AND primary_key IN (SELECT {_pk_text(table)} FROM {source})""",
                [name, files],
            )
    with _phase("manifest"):
        counts = {
            r[0]: (r[1], r[2])
            for r in con.execute(
                """SELECT _source_file, count(*), count(*) FILTER (WHERE _reason <> '')
                   FROM _incoming GROUP BY ALL"""
            ).fetchall()
        }
        for fr in staged:
            fr.rows_read, fr.rows_quarantined = counts.get(fr.source_file, (0, 0))
            fr.rows_loaded = fr.rows_read - fr.rows_quarantined
            _record_manifest(con, name, Path(fr.source_file), fr, now,
                             status=APPENDED if append else None)


def _record_manifest(
    con: duckdb.DuckDBPyConnection,
    table: str,
    path: Path,
    fr: FileResult,
    now: datetime,
    *,
    status: str | None = None,
) -> None:
    size, mtime = file_stamp(path)
    con.execute(
        f"DELETE FROM {RAW}.load_manifest WHERE table_name = ? AND source_file = ?",
        [table, str(path)],
    )
    con.execute(
        f"INSERT INTO {RAW}.load_manifest VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            table,
            str(path),
            size,
            mtime,
            status or fr.status,
            fr.encoding,
            fr.rows_read,
            fr.rows_loaded,
            fr.rows_quarantined,
            fr.ignored_columns,
            now,
        ],
    )


def ingest_all(
    warehouse: Path, landing_dir: Path, *, force: bool = False
) -> dict[str, TableResult]:
    """Load every landing table into `warehouse` (parents first). For scripts and tests."""
    warehouse.parent.mkdir(parents=True, exist_ok=True)
    landing_dir = landing_dir.resolve()
    with _phase("open"):
        con = duckdb.connect(str(warehouse))
    try:
        with _phase("open"):
            ensure_raw_schema(con)
        return {t: load_table(con, landing_dir, t, force=force) for t in LOAD_ORDER}
    finally:
        with _phase("close"):  # the last checkpoint of the warehouse file
            con.close()
