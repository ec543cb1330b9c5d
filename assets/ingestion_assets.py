"""One Dagster asset per landing table: landing files -> raw.<table> in DuckDB.

The loading itself is `assets.ingestion` (plain DuckDB, testable without Dagster); this module
only gives each table its asset, its quarantine check and its materialization metadata.

Personal data (`Column.pii` in `assets.contract`) and its pseudonyms never appear in a preview,
metadata value or log line; every log line and metadata text about a file is cut to
`LINE_MAX` characters.
"""

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    MaterializeResult,
    MetadataValue,
    asset,
)

from assets.contract import LOAD_ORDER, TABLES
from assets.core.metadata import markdown_table
from assets.core.resources import RiskWarehouse
from assets.core.sql import ident, literal
from assets.ingestion import (
    LINE_MAX,
    RAW,
    TableResult,
    cap,
    ensure_raw_schema,
    load_table,
)

OWNER = "team:data-engineering"
GROUP = "ingestion"
QUARANTINE_CHECK = "no_rejected_rows_or_files"
#: Rejected files listed in the check's metadata (the count is always the total).
FILES_SHOWN = 20


def preview_columns(table_name: str) -> list[str]:
    """Columns a preview may show: the table's without personal data or its pseudonyms."""
    table = TABLES[table_name]
    hidden = {*table.pii_columns, *table.pseudonym_columns}
    return [c for c in table.column_names if c not in hidden] + ["_source_file", "_source_row"]


def raw_asset_key(table: str) -> AssetKey:
    return AssetKey([RAW, table])


def _build_asset(table_name: str) -> AssetsDefinition:
    table = TABLES[table_name]
    parents = sorted({parent for _, parent in table.foreign_keys})
    key = raw_asset_key(table_name)

    @asset(
        key=key,
        group_name=GROUP,
        kinds={"duckdb", "python"},
        owners=[OWNER],
        description=(
            f"{table.description} Loaded from `<landing>/{table_name}/*.csv|*.csv.gz|*.parquet` "
            f"into `raw.{table_name}` (primary key {', '.join(table.primary_key)}); rows breaking "
            "a contract rule go to `raw.rejected_rows`, unreadable files and entries that are "
            "not landing files to `raw.rejected_files`. Fails when the landing root is missing "
            "or empty, or the folder had files at an earlier load and has none today."
        ),
        deps=[raw_asset_key(p) for p in parents],
        check_specs=[
            AssetCheckSpec(
                QUARANTINE_CHECK,
                asset=key,
                description="WARN when rows or files of this table are in quarantine.",
            )
        ],
        metadata={"primary_key": ", ".join(table.primary_key)},
    )
    def _ingest(context: AssetExecutionContext, warehouse: RiskWarehouse):
        with warehouse.connect() as con:
            ensure_raw_schema(con)
            result = load_table(con, warehouse.landing_path.resolve(), table_name)
            headers = preview_columns(table_name)
            preview_rows = con.execute(
                f"SELECT {', '.join(ident(c) for c in headers)} "
                f"FROM {RAW}.{ident(table_name)} LIMIT 10"
            ).fetchall()
            rejected_rows, examples = _quarantine_summary(con, table_name)
            files_total = con.execute(
                f"SELECT count(*) FROM {RAW}.rejected_files WHERE table_name = ?", [table_name]
            ).fetchone()[0]
            rejected_files = con.execute(
                f"""SELECT source_file, left(reason, {literal(LINE_MAX)})
                    FROM {RAW}.rejected_files WHERE table_name = ?
                    ORDER BY source_file LIMIT {literal(FILES_SHOWN)}""",
                [table_name],
            ).fetchall()
        _log(context, result)
        yield MaterializeResult(
            metadata={
                "dagster/row_count": result.row_count,
                "files_new_or_changed": len(result.files_loaded) + len(result.files_rejected),
                "files_unchanged": sum(f.status == "unchanged" for f in result.files),
                "files_gone": sum(f.status == "gone" for f in result.files),
                "rows_read": result.rows_read,
                "rows_loaded": result.rows_loaded,
                "rows_quarantined": result.rows_quarantined,
                "files_rejected": len(result.files_rejected),
                "ignored_columns": MetadataValue.json(
                    {
                        cap(f.source_file, LINE_MAX): f.ignored_columns
                        for f in result.files[:FILES_SHOWN]
                        if f.ignored_columns
                    }
                ),
                "seconds": round(result.seconds, 3),
                "preview": MetadataValue.md(markdown_table(preview_rows, headers)),
            }
        )
        yield AssetCheckResult(
            check_name=QUARANTINE_CHECK,
            passed=rejected_rows == 0 and files_total == 0,
            severity=AssetCheckSeverity.WARN,
            metadata={
                "rejected_rows": rejected_rows,
                "rejected_files": files_total,
                "examples": MetadataValue.md(
                    markdown_table(examples, ["source_file", "row", "reason"])
                    + "\n\n"
                    + markdown_table(rejected_files, ["rejected file", "reason"])
                ),
            },
        )

    return _ingest


def _quarantine_summary(con, table_name: str) -> tuple[int, list[tuple]]:
    total = con.execute(
        f"SELECT count(*) FROM {RAW}.rejected_rows WHERE table_name = ?", [table_name]
    ).fetchone()[0]
    examples = con.execute(
        f"""SELECT source_file, row_number, left(reason, {literal(LINE_MAX)})
            FROM {RAW}.rejected_rows
            WHERE table_name = ? ORDER BY source_file, row_number LIMIT 10""",
        [table_name],
    ).fetchall()
    return total, examples


def _log(context: AssetExecutionContext, result: TableResult) -> None:
    """One line per new, changed or rejected file, each cut to LINE_MAX characters; files gone
    from the landing since an earlier load: the first FILES_SHOWN, then a count."""
    gone = [f for f in result.files if f.status == "gone"]
    for f in gone[:FILES_SHOWN]:
        context.log.warning(cap(f"{result.table}: {f.source_file}: {f.reason}", LINE_MAX))
    if len(gone) > FILES_SHOWN:
        context.log.warning(
            f"{result.table}: {len(gone) - FILES_SHOWN} more files loaded earlier are no longer "
            "in the landing folder (their rows stay loaded)"
        )
    for f in result.files:
        if f.status == "rejected":
            context.log.warning(
                cap(f"{result.table}: rejected file {f.source_file}: {f.reason}", LINE_MAX)
            )
        elif f.status == "loaded":
            context.log.info(
                cap(
                    f"{result.table}: {f.source_file}: read {f.rows_read}, loaded "
                    f"{f.rows_loaded}, quarantined {f.rows_quarantined}"
                    + (f", ignored columns {f.ignored_columns}" if f.ignored_columns else ""),
                    LINE_MAX,
                )
            )


ingestion_assets: list[AssetsDefinition] = [_build_asset(t) for t in LOAD_ORDER]
