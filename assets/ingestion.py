"""Contract-exact loading of the landing zone into DuckDB `raw` (data-contract.md section 1).

All validation runs inside DuckDB, one file at a time, as SQL generated from the specs in
`assets.contract`; nothing is pulled into pandas. For each landing table:

1. list its files; skip those the manifest says were already loaded unchanged (size, mtime);
2. read each new or changed file (CSV in UTF-8 / GB18030, or Parquet) into a temp table;
   a file with a bad encoding or a missing required column is rejected whole;
3. type every column and compute, per row, every broken rule as a readable reason;
4. quarantine orphans (foreign key without parent), then, in one transaction per table,
   upsert the clean rows by primary key (newest file wins: mtime, then name) and record
   quarantined rows, rejected files and the manifest.

Rows are never deleted except when a newer delivery of the same primary key replaces them.
"""

from __future__ import annotations

import codecs
import csv
import io
import os
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from assets.contract import (
    LINEAGE_COLUMNS,
    LOAD_ORDER,
    TABLES,
    USCC_ALPHABET,
    USCC_WEIGHTS,
    Column,
    Table,
    raw_table_ddl,
)
from assets.core import settings
from assets.core.sql import text as sql_text

RAW = "raw"
_CHUNK = 1 << 24  # 16 MiB per read when sniffing an encoding
#: Landing bytes staged per transaction. Parquet expands ~8x in memory, CSV ~1-2x.
BATCH_BYTES = int(os.environ.get("RISK_INGEST_BATCH_BYTES", 64 << 20))

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
)


@dataclass
class FileResult:
    """What happened to one landing file. rows_read = rows_loaded + rows_quarantined."""

    source_file: str
    status: str  # loaded | rejected | unchanged
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


# --- set-up ----------------------------------------------------------------------------------


def ensure_raw_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create `raw`, every contract table (so a missing folder is an empty table) and the
    quarantine/manifest tables."""
    con.execute(f"SET memory_limit = '{settings.duckdb_memory_limit()}'")
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {RAW}")
    for table in TABLES.values():
        con.execute(raw_table_ddl(table, RAW))
    for ddl in META_DDL:
        con.execute(ddl)


def landing_files(landing_dir: Path, table: str) -> list[Path]:
    """The table's landing files, oldest first (mtime, then name): later files win."""
    folder = landing_dir / table
    if not folder.is_dir():
        return []
    files = [
        p
        for p in folder.iterdir()
        if p.is_file() and p.suffix.lower() in (".csv", ".parquet") and not p.name.startswith(".")
    ]
    return sorted(files, key=lambda p: (p.stat().st_mtime_ns, p.name))


# --- reading one file ------------------------------------------------------------------------


def detect_encoding(path: Path) -> str:
    """'utf-8' (BOM or not) or 'gb18030' (a superset of GBK); anything else is rejected."""
    for encoding in ("utf-8", "gb18030"):
        decoder = codecs.getincrementaldecoder(encoding)()
        try:
            with path.open("rb") as fh:
                while chunk := fh.read(_CHUNK):
                    decoder.decode(chunk)
                decoder.decode(b"", final=True)
            return encoding
        except UnicodeDecodeError:
            continue
    raise FileRejected("encoding is neither UTF-8 nor GB18030/GBK")


def _transcode_to_utf8(path: Path, encoding: str, tmp_dir: Path) -> Path:
    """DuckDB reads UTF-8 only (the encodings extension needs the internet): re-encode."""
    out = tmp_dir / f"{path.stem}.utf8.csv"
    with (
        path.open("r", encoding=encoding, newline="") as src,
        out.open("w", encoding="utf-8", newline="") as dst,
    ):
        while chunk := src.read(_CHUNK):
            dst.write(chunk)
    return out


def _csv_header(path: Path) -> list[str]:
    with path.open("r", encoding="utf-8-sig", newline="") as fh:
        first = fh.readline()
    if not first.strip():
        return []
    return [h.strip() for h in next(csv.reader(io.StringIO(first)))]


def _read_file_into(
    con: duckdb.DuckDBPyConnection, path: Path, tmp_dir: Path
) -> tuple[dict[str, str], str | None]:
    """Read `path` into temp table `_file` (+ `_file_rejects` for malformed CSV lines).

    Returns {lower-cased column name: source column name} and the detected encoding.
    """
    for temp in ("_file_numbered", "_file", "_file_rejects"):
        _drop_temp(con, temp)
    if path.suffix.lower() == ".parquet":
        try:
            con.execute(
                f"CREATE TEMP TABLE _file AS SELECT * FROM read_parquet({sql_text(str(path))})"
            )
        except duckdb.Error as exc:
            raise FileRejected(f"unreadable Parquet file: {exc}") from exc
        names = [r[0] for r in con.execute("DESCRIBE _file").fetchall()]
        con.execute("CREATE TEMP TABLE _file_rejects (line BIGINT, csv_line VARCHAR, msg VARCHAR)")
        return {n.strip().lower(): n for n in names}, None

    encoding = detect_encoding(path)
    readable = path if encoding == "utf-8" else _transcode_to_utf8(path, encoding, tmp_dir)
    header = _csv_header(readable)
    con.execute("CREATE TEMP TABLE _file_rejects (line BIGINT, csv_line VARCHAR, msg VARCHAR)")
    if not header:  # an empty file: zero rows
        con.execute("CREATE TEMP TABLE _file AS SELECT 1 AS _empty WHERE false")
        return {}, encoding
    if len(set(header)) != len(header):
        raise FileRejected(f"duplicate column names in header: {header}")
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
        raise FileRejected(f"unreadable CSV: {exc}") from exc
    con.execute(
        """INSERT INTO _file_rejects
           SELECT line, any_value(csv_line), string_agg(DISTINCT error_message, '; ')
           FROM _rej_errors GROUP BY line"""
    )
    return {h.lower(): h for h in header}, encoding


# --- SQL generated from the contract ---------------------------------------------------------


def _uscc_valid_sql(v: str) -> str:
    """SQL for 'v is a valid USCC': alphabet, length 18 and GB 32100 check character."""
    terms = " + ".join(
        f"(strpos('{USCC_ALPHABET}', substr({v}, {i + 1}, 1)) - 1) * {w}"
        for i, w in enumerate(USCC_WEIGHTS)
    )
    check = f"substr('{USCC_ALPHABET}', ((31 - (({terms}) % 31)) % 31) + 1, 1)"
    return f"(regexp_full_match({v}, '[{USCC_ALPHABET}]{{18}}') AND substr({v}, 18, 1) = {check})"


def _typed_expr(col: Column, src: str | None, src_type: str | None) -> tuple[str, str]:
    """(text expression of the delivered value, typed expression) for one column."""
    if src is None:
        return "NULL::VARCHAR", f"NULL::{col.sql_type}"
    quoted = f'"{src}"'
    text = f"NULLIF(trim(CAST({quoted} AS VARCHAR)), '')"
    if col.kind in ("text", "uscc", "enum", "month"):
        return text, text
    if col.kind == "date":
        if src_type == "VARCHAR":
            typed = (
                f"CASE WHEN regexp_full_match({text}, '[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}') "
                f"THEN try_strptime({text}, '%Y-%m-%d')::DATE END"
            )
        else:
            typed = f"TRY_CAST({quoted} AS DATE)"
        return text, typed
    if src_type == "VARCHAR":
        return text, f"TRY_CAST({text} AS {col.sql_type})"
    return text, f"TRY_CAST({quoted} AS {col.sql_type})"


def _column_reasons(col: Column) -> list[str]:
    """SQL CASE expressions yielding a reason when the column breaks its rule (else NULL)."""
    n, t = f'"_txt_{col.name}"', f'"{col.name}"'
    reasons = []
    if not col.nullable:
        reasons.append(f"CASE WHEN {n} IS NULL THEN '{col.name}: required value missing' END")
    shown = f"'{col.name}: ''' || {n} || ''' is not {col.rule_text()}'"
    bad = []
    if col.kind in ("date", "money", "decimal", "int"):
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
        reasons.append(f"CASE WHEN {n} IS NOT NULL AND ({' OR '.join(bad)}) THEN {shown} END")
    return reasons


def _pk_text(table: Table) -> str:
    """The primary key as one text value (parts joined by '|'), to match quarantined rows."""
    parts = [f'CAST("{k}" AS VARCHAR)' for k in table.primary_key]
    return parts[0] if len(parts) == 1 else "concat_ws('|', " + ", ".join(parts) + ")"


def _validate_file_sql(table: Table, cols: dict[str, str], types: dict[str, str]) -> str:
    """SELECT over `_file_numbered` giving typed contract columns, lineage, `_reason` and, for
    quarantined rows only, `_record` (the delivered values).

    Costly checks run once per distinct value or key, not per row: the USCC check character
    over distinct codes, duplicate keys through a grouped aggregate rather than a window.
    """
    selects = []
    for c in table.columns:
        src = cols.get(c.name.lower())
        text, typed = _typed_expr(c, src, types.get(src) if src else None)
        selects += [f'{text} AS "_txt_{c.name}"', f'{typed} AS "{c.name}"']
    pk = ", ".join(f'"{k}"' for k in table.primary_key)
    uscc_cols = [c.name for c in table.columns if c.kind == "uscc"]
    ctes = [
        f"typed AS MATERIALIZED (SELECT {', '.join(selects)}, _source_row FROM _file_numbered)",
        f"""dups AS (SELECT {pk}, max(_source_row) AS _keep_row FROM typed
                     GROUP BY ALL HAVING count(*) > 1)""",
    ]
    joins = [f"LEFT JOIN dups USING ({pk})"]
    for name in uscc_cols:
        ctes.append(
            f"""uscc_{name} AS (SELECT v AS "{name}", {_uscc_valid_sql("v")} AS "_ok_{name}"
                FROM (SELECT DISTINCT "{name}" AS v FROM typed WHERE "{name}" IS NOT NULL))"""
        )
        joins.append(f'LEFT JOIN uscc_{name} USING ("{name}")')
    reasons = [r for c in table.columns for r in _column_reasons(c)]
    reasons += [
        f"CASE WHEN NOT ({rule.sql}) THEN '{rule.rule_id}: {rule.text}' END"
        for rule in table.row_rules
    ]
    reasons.append(
        "CASE WHEN _keep_row IS NOT NULL AND _source_row <> _keep_row "
        "THEN 'duplicate primary key in this file: a later row with the same key is kept' END"
    )
    record = (
        "to_json(struct_pack("
        + ", ".join(f'"{c.name}" := "_txt_{c.name}"' for c in table.columns)
        + "))"
    )
    ok_cols = "".join(f', "_ok_{n}"' for n in uscc_cols)
    return f"""
        WITH {", ".join(ctes)},
        checked AS (SELECT *, concat_ws('; ', {", ".join(reasons)}) AS _reason
                    FROM typed {" ".join(joins)})
        SELECT * EXCLUDE (_keep_row{ok_cols}),
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


def _file_stamp(path: Path) -> tuple[int, datetime]:
    st = path.stat()
    return st.st_size, datetime.fromtimestamp(st.st_mtime_ns / 1e9, tz=UTC).replace(tzinfo=None)


def _drop_temp(con: duckdb.DuckDBPyConnection, name: str) -> None:
    """Drop a temp table or view of that name, whichever it is."""
    kind = con.execute(
        "SELECT table_type FROM information_schema.tables WHERE table_name = ? "
        "AND table_catalog = 'temp'",
        [name],
    ).fetchone()
    if kind:
        con.execute(f"DROP {'VIEW' if kind[0] == 'VIEW' else 'TABLE'} {name}")


def _number_rows(con: duckdb.DuckDBPyConnection) -> None:
    """`_file_numbered`: `_file` with its 1-based data row number.

    When the CSV had malformed lines (quarantined on their own), good rows are numbered
    around them so every row keeps the number of its position in the file.
    """
    n_rejects = con.execute("SELECT count(*) FROM _file_rejects").fetchone()[0]
    _drop_temp(con, "_file_numbered")
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
    cols, result.encoding = _read_file_into(con, path, tmp_dir)
    known = {c.name.lower() for c in table.columns}
    missing = [c for c in table.required_columns if c.lower() not in cols]
    if cols and missing:
        raise FileRejected(f"missing required column(s): {', '.join(missing)}")
    result.ignored_columns = sorted(src for low, src in cols.items() if low not in known)
    cols = {low: src for low, src in cols.items() if low in known}
    types = {r[0]: r[1] for r in con.execute("DESCRIBE _file").fetchall()}
    _number_rows(con)
    size, mtime = _file_stamp(path)
    con.execute(
        f"""INSERT INTO _incoming BY NAME
            SELECT * EXCLUDE ({", ".join(f'"_txt_{c.name}"' for c in table.columns)}),
                   {sql_text(str(path))} AS _source_file, ?::TIMESTAMP AS _file_mtime
            FROM ({_validate_file_sql(table, cols, types)})""",
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
    return result


def _incoming_ddl(table: Table) -> str:
    cols = [f'"{c.name}" {c.sql_type}' for c in table.columns]
    cols += [f"{n} {t}" for n, t in LINEAGE_COLUMNS.items()]
    cols += ["_record JSON", "_reason VARCHAR"]
    return "CREATE OR REPLACE TEMP TABLE _incoming (" + ", ".join(cols) + ")"


def _apply_foreign_keys(con: duckdb.DuckDBPyConnection, table: Table) -> None:
    """Orphans (no parent row in raw) get a reason and so go to quarantine."""
    for column, parent in table.foreign_keys:
        con.execute(
            f"""UPDATE _incoming SET _reason = concat_ws('; ', NULLIF(_reason, ''),
                  '{column}: no {parent} row with this {column}')
                WHERE "{column}" IS NOT NULL
                  AND "{column}" NOT IN (SELECT "{column}" FROM {RAW}.{parent})"""
        )


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
    """
    started = time.perf_counter()
    table = TABLES[table_name]
    result = TableResult(table_name)
    seen = {} if force else _manifest(con, table_name)
    todo: list[Path] = []
    for path in landing_files(landing_dir, table_name):
        if seen.get(str(path)) == _file_stamp(path):
            result.files.append(FileResult(str(path), "unchanged"))
        else:
            todo.append(path)
    for batch in _batches(todo, batch_bytes):
        with tempfile.TemporaryDirectory(prefix="risk_ingest_") as tmp:
            _load_files(con, table, batch, Path(tmp), result)
    result.row_count = con.execute(f"SELECT count(*) FROM {RAW}.{table_name}").fetchone()[0]
    result.seconds = time.perf_counter() - started
    return result


def _batches(paths: list[Path], batch_bytes: int) -> list[list[Path]]:
    """Consecutive groups of files of at most `batch_bytes` on disk (a larger file alone)."""
    batches: list[list[Path]] = []
    size = 0
    for path in paths:
        n = path.stat().st_size
        if not batches or size + n > batch_bytes:
            batches.append([])
            size = 0
        batches[-1].append(path)
        size += n
    return batches


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
            rejected.append(FileResult(str(path), "rejected", reason=str(exc)))
    _apply_foreign_keys(con, table)
    con.execute("BEGIN TRANSACTION")
    try:
        _publish(con, table, staged, rejected, now)
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
    con.execute(
        f"DELETE FROM {RAW}.rejected_rows WHERE table_name = ? AND list_contains(?, source_file)",
        [name, files],
    )
    con.execute(
        f"""INSERT INTO {RAW}.rejected_rows
            SELECT ?, _source_file, _source_row, _reason, _record, {_pk_text(table)}, ?
            FROM _incoming WHERE _reason <> ''""",
        [name, now],
    )
    pk_cols = ", ".join(f'"{k}"' for k in table.primary_key)
    join = " AND ".join(f'o."{k}" = n."{k}"' for k in table.primary_key)
    contract_cols = ", ".join(f'"{c}"' for c in table.column_names)
    lineage = ", ".join(LINEAGE_COLUMNS)
    # Newest delivery of each key in this batch (mtime, then file name, then row); only keys
    # delivered more than once go through the window.
    clean = "FROM _incoming WHERE _reason = ''"
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
    newer = (
        "(n._file_mtime > o._file_mtime OR (n._file_mtime = o._file_mtime "
        "AND n._source_file >= o._source_file))"
    )
    con.execute(f"DELETE FROM {RAW}.{name} o USING _clean n WHERE {join} AND {newer}")
    con.execute(
        f"""INSERT INTO {RAW}.{name} ({contract_cols}, {lineage})
            SELECT {contract_cols}, {lineage} FROM _clean n
            WHERE NOT EXISTS (SELECT 1 FROM {RAW}.{name} o WHERE {join})"""
    )
    # A key re-delivered cleanly no longer needs its quarantined versions from older files.
    con.execute(
        f"""DELETE FROM {RAW}.rejected_rows WHERE table_name = ?
            AND NOT list_contains(?, source_file)
            AND primary_key IN (SELECT {_pk_text(table)} FROM _clean)""",
        [name, files],
    )
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
        _record_manifest(con, name, Path(fr.source_file), fr, now)


def _record_manifest(
    con: duckdb.DuckDBPyConnection, table: str, path: Path, fr: FileResult, now: datetime
) -> None:
    size, mtime = _file_stamp(path)
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
            fr.status,
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
    with duckdb.connect(str(warehouse)) as con:
        ensure_raw_schema(con)
        return {t: load_table(con, landing_dir, t, force=force) for t in LOAD_ORDER}
