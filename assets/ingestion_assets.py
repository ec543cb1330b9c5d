"""One Dagster asset per landing table: landing files -> raw.<table> in DuckDB.

The loading itself is `assets.ingestion` (plain DuckDB, testable without Dagster); this module
only gives each table its asset, its quarantine check and its materialization metadata.
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
from assets.ingestion import RAW, TableResult, ensure_raw_schema, load_table

OWNER = "team:data-engineering"
GROUP = "ingestion"
QUARANTINE_CHECK = "no_rejected_rows_or_files"


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
            f"{table.description} Loaded from `<landing>/{table_name}/*.csv|*.parquet` into "
            f"`raw.{table_name}` (primary key {', '.join(table.primary_key)}); rows breaking a "
            "contract rule go to `raw.rejected_rows`, unreadable files to `raw.rejected_files`."
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
            preview = con.execute(
                f"SELECT * EXCLUDE (_file_mtime) FROM {RAW}.{table_name} LIMIT 10"
            )
            headers = [d[0] for d in preview.description]
            preview_rows = preview.fetchall()
            rejected_rows, examples = _quarantine_summary(con, table_name)
            rejected_files = con.execute(
                f"SELECT source_file, reason FROM {RAW}.rejected_files WHERE table_name = ?",
                [table_name],
            ).fetchall()
        _log(context, result)
        yield MaterializeResult(
            metadata={
                "dagster/row_count": result.row_count,
                "files_new_or_changed": len(result.files_loaded) + len(result.files_rejected),
                "files_unchanged": sum(f.status == "unchanged" for f in result.files),
                "rows_read": result.rows_read,
                "rows_loaded": result.rows_loaded,
                "rows_quarantined": result.rows_quarantined,
                "files_rejected": len(result.files_rejected),
                "ignored_columns": MetadataValue.json(
                    {f.source_file: f.ignored_columns for f in result.files if f.ignored_columns}
                ),
                "seconds": round(result.seconds, 3),
                "preview": MetadataValue.md(markdown_table(preview_rows, headers)),
            }
        )
        yield AssetCheckResult(
            check_name=QUARANTINE_CHECK,
            passed=rejected_rows == 0 and not rejected_files,
            severity=AssetCheckSeverity.WARN,
            metadata={
                "rejected_rows": rejected_rows,
                "rejected_files": len(rejected_files),
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
        f"""SELECT source_file, row_number, reason FROM {RAW}.rejected_rows
            WHERE table_name = ? ORDER BY source_file, row_number LIMIT 10""",
        [table_name],
    ).fetchall()
    return total, examples


def _log(context: AssetExecutionContext, result: TableResult) -> None:
    for f in result.files:
        if f.status == "rejected":
            context.log.warning(f"{result.table}: rejected file {f.source_file}: {f.reason}")
        elif f.status == "loaded":
            context.log.info(
                f"{result.table}: {f.source_file}: read {f.rows_read}, loaded {f.rows_loaded}, "
                f"quarantined {f.rows_quarantined}"
                + (f", ignored columns {f.ignored_columns}" if f.ignored_columns else "")
            )


ingestion_assets: list[AssetsDefinition] = [_build_asset(t) for t in LOAD_ORDER]
