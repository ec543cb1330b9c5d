"""Exports for credit officers: watchlist CSV/Parquet and a self-contained HTML report.

Only the Dagster asset lives here; reading the marts, charts, HTML and file writing are in
`assets/report/` (no Dagster there), so they are tested without running an asset.
"""

from datetime import date

import duckdb
from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    AssetSpec,
    MaterializeResult,
    MetadataValue,
    asset,
    multi_asset,
)

from assets.core.metadata import markdown_table
from assets.core.partitions import AS_OF_PARTITIONS, SINGLE_RUN
from assets.core.resources import RiskWarehouse
from assets.dbt_assets import mart_key
from assets.report import dimensions
from assets.report.files import ExportFiles, exports_dir, write_exports
from assets.report.model import ReportData
from assets.report.queries import gather_report_data
from assets.screening.rules import load_rules
from assets.screening.screening_assets import SCREENING_KEY
from assets.signals.catalog import load_catalog

OWNER = "team:credit-risk"
GROUP = "exports"
WATCHLIST = mart_key("watchlist")
WATCHLIST_HISTORY = mart_key("watchlist_history")
PORTFOLIO_MONTHLY = mart_key("portfolio_monthly")
APPLICATION_SCREENING = SCREENING_KEY
DIM_SIGNAL = AssetKey(["marts", "dim_signal"])
DIM_SCREENING_RULE = AssetKey(["marts", "dim_screening_rule"])
DIMENSIONS = [mart_key("dim_enterprise"), mart_key("dim_branch"), mart_key("dim_industry")]
PREVIEW_COLUMNS = ["enterprise_id", "tier", "risk_score", "status", "reasons"]


@multi_asset(
    specs=[
        AssetSpec(
            DIM_SIGNAL,
            group_name="early_warning",
            kinds={"duckdb", "python"},
            owners=[OWNER],
            description="One row per early-warning signal of assets/signals/catalog.yml (names, "
            "descriptions and reason templates in English and Chinese, conditions), replaced "
            "whole on every refresh.",
        ),
        AssetSpec(
            DIM_SCREENING_RULE,
            group_name="pre_lending",
            kinds={"duckdb", "python"},
            owners=[OWNER],
            description="One row per pre-lending access rule of "
            "assets/screening/access_rules.yml, replaced whole on every refresh.",
        ),
    ],
)
def rule_dimensions(context: AssetExecutionContext, warehouse: RiskWarehouse):
    """The rule-file dimensions for analysts (SQL may not read a rule file, so Python writes)."""
    catalog, rules = load_catalog(), load_rules()
    with warehouse.connect() as con:
        n_signals = dimensions.write_table(
            con, "dim_signal", dimensions.DIM_SIGNAL_COLUMNS, dimensions.signal_rows(catalog)
        )
        n_rules = dimensions.write_table(
            con,
            "dim_screening_rule",
            dimensions.DIM_SCREENING_RULE_COLUMNS,
            dimensions.screening_rule_rows(rules),
        )
    yield MaterializeResult(
        asset_key=DIM_SIGNAL,
        metadata={"dagster/row_count": n_signals, "catalog_version": catalog.version},
    )
    yield MaterializeResult(
        asset_key=DIM_SCREENING_RULE,
        metadata={"dagster/row_count": n_rules, "rules_version": rules.version},
    )


def _export_one(warehouse: RiskWarehouse, as_of: date) -> tuple[ReportData, ExportFiles]:
    """`<exports>/<D>/` for one as-of date: the current watchlist for the current date, D's
    rows of the watchlist history for a past date."""
    out_dir = exports_dir() / as_of.isoformat()
    if warehouse.warehouse_path.exists():
        with warehouse.connect(read_only=True) as con:
            data = gather_report_data(con, as_of, from_history=not warehouse.is_current(as_of))
            files = write_exports(con, data, out_dir)
    else:  # before the first load: header-only files and a report that says so
        data = ReportData.without_warehouse(as_of)
        with duckdb.connect() as con:
            files = write_exports(con, data, out_dir)
    return data, files


@asset(
    key=AssetKey(["exports", "watchlist_report"]),
    partitions_def=AS_OF_PARTITIONS,
    backfill_policy=SINGLE_RUN,
    group_name=GROUP,
    kinds={"duckdb", "python", "html"},
    owners=[OWNER],
    deps=[
        WATCHLIST, WATCHLIST_HISTORY, PORTFOLIO_MONTHLY, APPLICATION_SCREENING, DIM_SIGNAL,
        *DIMENSIONS,
    ],
    description=(
        "Credit officers' exports for as-of date D, in `<RISK_EXPORTS_DIR>/<D>/` (default "
        "`data/exports/`), in RISK_REPORT_LANG (zh by default, or en): `watchlist.xlsx` (every "
        "firm, then one sheet per branch; credit codes as text), `watchlist.csv` (the same "
        "columns, UTF-8 with BOM), `watchlist.parquet` (the mart as it is), `report.html` "
        "(self-contained: one-minute summary of what changed, 12-month trends of tiers and "
        "NPL, NPL by industry and top branches, reasons by topic and signal, the watchlist, "
        "last month's screening, the back-test) and, when screening has run, "
        "`application_screening.csv`. Partitioned by as-of date: partition D writes `<D>/` "
        "only (a past date's watchlist is read from watchlist_history); the folder is written "
        "aside and renamed into place as a set."
    ),
)
def watchlist_report(context: AssetExecutionContext, warehouse: RiskWarehouse) -> MaterializeResult:
    written = {d: _export_one(warehouse, d) for d in sorted(warehouse.as_of_dates)}
    as_of = max(written)
    data, files = written[as_of]
    for msg in data.missing.values():
        context.log.warning(msg)

    rows = data.watchlist_rows
    top = sorted(rows, key=lambda r: -(r.get("risk_score") or 0))[:20]
    metadata = {
        "dagster/row_count": len(rows),
        "as_of_date": as_of.isoformat(),
        "export_dir": MetadataValue.path(str(files.out_dir)),
        "export_dirs": len(written),
        "watchlist_csv": MetadataValue.path(str(files.watchlist_csv)),
        "watchlist_parquet": MetadataValue.path(str(files.watchlist_parquet)),
        "report_html": MetadataValue.path(str(files.report_html)),
        "watchlist_xlsx": MetadataValue.path(str(files.watchlist_xlsx)),
        "sheets": len(files.sheet_titles),
        "watchlist_rows": len(rows),
        "new_entries": len(data.new_entries),
        "red": sum(r.get("tier") == "red" for r in rows),
        "amber": sum(r.get("tier") == "amber" for r in rows),
        "missing_tables": MetadataValue.json(sorted(data.missing)),
        "preview": MetadataValue.md(
            markdown_table([[r.get(c) for c in PREVIEW_COLUMNS] for r in top], PREVIEW_COLUMNS)
            if rows
            else "No firms on the watchlist."
        ),
    }
    if files.application_screening_csv is not None:
        metadata["application_screening_csv"] = MetadataValue.path(
            str(files.application_screening_csv)
        )
        metadata["application_screening_rows"] = files.application_screening_rows
    return MaterializeResult(metadata=metadata)


export_assets: list[AssetsDefinition] = [rule_dimensions, watchlist_report]
