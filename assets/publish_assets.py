"""Dagster: the last step of the nightly refresh publishes the warehouse (contract section 5).

It depends on every other asset of `nightly_refresh`, so it runs last and only when nothing
upstream failed: a failed blocking check stops everything downstream of it, this included,
and the published warehouse keeps the previous refresh. The copy and the rename are in
`assets/core/publish.py`; the red-firm alert in `assets/alerts.py`.
"""

from dagster import (
    AssetCheckSeverity,
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    DagsterEventType,
    MaterializeResult,
    MetadataValue,
    asset,
)

from assets import alerts, refresh_plan
from assets.contract import TABLES
from assets.core import publish, settings
from assets.core.resources import RiskWarehouse
from assets.dbt_assets import dbt_model_assets
from assets.early_warning import early_warning_assets
from assets.exports import export_assets
from assets.ingestion_assets import ingestion_assets
from assets.scorecard_assets import pd_scorecard_assets
from assets.screening import screening_assets

OWNER = "team:credit-risk"
GROUP = "exports"
PUBLISH_KEY = AssetKey(["exports", "published_warehouse"])

#: Published: every table of `marts`, and `raw` without personal data (the contract keeps
#: legal_rep_name / legal_rep_id_number in raw, and raw.rejected_rows.record may hold them).
#: Staging and intermediate are dbt views and helper tables over raw: not published.
PUBLISHED_SCHEMAS = ("raw", "marts")
PII_COLUMNS = frozenset(c.name for t in TABLES.values() for c in t.columns if c.pii)
DROP_COLUMNS = {"raw.*": PII_COLUMNS, "raw.rejected_rows": frozenset({"record"})}

#: Every asset the nightly job builds before publishing.
UPSTREAM = sorted(
    {
        key
        for group in (ingestion_assets, dbt_model_assets, early_warning_assets, export_assets,
                      screening_assets, pd_scorecard_assets)
        for assets_def in group
        for key in assets_def.keys
    },
    key=lambda k: k.to_user_string(),
)


def failed_blocking_checks(context: AssetExecutionContext) -> list[str]:
    """Blocking (ERROR) checks that failed in this run: belt and braces, since a failed
    blocking check already stops this step from running."""
    records = context.instance.get_records_for_run(
        context.run.run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION
    ).records
    failed = []
    for rec in records:
        evaluation = rec.event_log_entry.dagster_event.event_specific_data
        if not evaluation.passed and evaluation.severity == AssetCheckSeverity.ERROR:
            key = evaluation.asset_check_key
            failed.append(f"{key.asset_key.to_user_string()}:{key.name}")
    return sorted(set(failed))


@asset(
    key=PUBLISH_KEY,
    group_name=GROUP,
    kinds={"duckdb"},
    owners=[OWNER],
    deps=UPSTREAM,
    description=(
        "The warehouse analysts open (RISK_WAREHOUSE), published when the refresh is complete "
        "and its blocking checks passed: the refresh builds in `<name>.build.duckdb` beside it; "
        "this step writes the tables of `marts` and `raw` (without personal data) into a "
        "temporary file in DuckDB's v1.5.0 format (the PyPI DuckDB 1.5 CLI opens it) and "
        "renames it over RISK_WAREHOUSE in one step. On a normal night the temporary file is a "
        "copy of the published one in which only tables whose content changed are rewritten "
        "(tables that only grew are appended to). Readers keep the previous file until they "
        "reconnect. New or escalated red firms raise an alert (marts.alert_log, "
        "RISK_ALERT_WEBHOOK). Afterwards the build file is compacted when it has grown past "
        "RISK_COMPACT_RATIO (2) times its live size."
    ),
)
def published_warehouse(
    context: AssetExecutionContext, warehouse: RiskWarehouse
) -> MaterializeResult:
    problem = settings.landing_root_problem(warehouse.landing_path)
    if problem:  # an empty run must not replace a good warehouse
        raise RuntimeError(
            f"not publishing: landing root {warehouse.landing_path} {problem} (RISK_LANDING_DIR)"
        )
    blocked = failed_blocking_checks(context)
    if blocked:
        raise RuntimeError(f"not publishing: blocking checks failed: {', '.join(blocked)}")
    as_of = warehouse.as_of_date
    alert = None
    with warehouse.connect() as con:
        has_watchlist = con.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE database_name = current_database() "
            "AND schema_name = 'marts' AND table_name = 'watchlist'"
        ).fetchone()[0]
        # A run for a past date leaves the current watchlist as it was: nothing new to alert.
        if has_watchlist and as_of in warehouse.as_of_dates:
            alert = alerts.red_firms_alert(con, context.run.run_id, as_of)
            if alert is not None:  # recorded first, so the published copy carries it
                alerts.record(con, alert)
    if not warehouse.build_aside:
        context.log.info(f"built in place: {warehouse.published_path} (nothing to publish)")
        metadata: dict = {"published": False}
    else:
        result = publish.publish(
            warehouse.warehouse_path,
            warehouse.published_path,
            schemas=PUBLISHED_SCHEMAS,
            drop_columns=DROP_COLUMNS,
            # The code version lets the next refresh see that nothing changed (refresh_plan).
            info={"run_id": context.run.run_id, "as_of_date": as_of,
                  "code_version": refresh_plan.code_version()},
            memory_limit=settings.duckdb_memory_limit(),
        )
        context.log.info(
            f"published {warehouse.published_path} ({result.mode}"
            + (f": {result.reason}" if result.reason else "") + f"): {len(result.tables)} "
            f"tables ({len(result.rewritten)} written, {len(result.appended)} appended to, "
            f"{len(result.patched)} patched, {result.kept} kept), "
            f"{result.bytes / 2**20:.1f} MiB in {result.seconds:.1f}s"
            + ("" if result.mode == "full" else
               f"; written: {', '.join(sorted(result.rewritten)) or '-'}"
               f"; appended: {', '.join(sorted(result.appended)) or '-'}"
               f"; patched: {', '.join(sorted(result.patched)) or '-'}")
        )
        metadata = {
            "published": True,
            "path": MetadataValue.path(str(result.path)),
            "build_file": MetadataValue.path(str(warehouse.warehouse_path)),
            "tables": len(result.tables),
            "size_mib": round(result.bytes / 2**20, 1),
            "publish_seconds": round(result.seconds, 2),
            "publish_mode": result.mode,
            "full_publish_reason": result.reason,
            "tables_written": MetadataValue.json(sorted(result.rewritten)),
            "rows_appended": MetadataValue.json(dict(result.appended)),
            "rows_patched": MetadataValue.json(dict(result.patched)),
            "tables_kept": result.kept,
            "table_rows": MetadataValue.json(result.tables),
        }
        ratio = settings.compact_ratio()
        if ratio > 0:  # the build file only grows: rewrite it when mostly free blocks
            compaction = publish.compact(
                warehouse.warehouse_path, ratio=ratio, memory_limit=settings.duckdb_memory_limit()
            )
            if compaction.compacted:
                context.log.info(
                    f"compacted the build file: {compaction.bytes_before / 2**20:.1f} -> "
                    f"{compaction.bytes_after / 2**20:.1f} MiB in {compaction.seconds:.1f}s"
                )
            metadata.update({
                "build_file_mib": round(compaction.bytes_after / 2**20, 1),
                "build_file_live_mib": round(compaction.live_bytes / 2**20, 1),
                "build_file_compacted": compaction.compacted,
            })
    webhook = settings.alert_webhook()
    if alert is not None:
        context.log.warning(alert.content())
        if webhook:
            alerts.post(webhook, alert)
    metadata.update({"as_of_date": as_of.isoformat(),
                     "red_firms_alerted": len(alert.details["firms"]) if alert else 0})
    return MaterializeResult(metadata=metadata)


publish_assets: list[AssetsDefinition] = [published_warehouse]
