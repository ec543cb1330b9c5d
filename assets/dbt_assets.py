"""The dbt project as Dagster assets, with the one translator that names and groups them.

Models become assets keyed `<layer>/<model>` (staging, intermediate, marts) and grouped by the
domain their folder names in `dbt_project.yml` (`meta.dagster.group`: loan_performance,
enterprise_features, early_warning, pre_lending). dbt sources map onto the ingestion assets
`raw/<table>` and onto the Python-built marts through their `meta.dagster.asset_key`, so the
graph runs landing -> raw -> staging -> intermediate -> marts -> early warning -> exports.
dbt tests become asset checks: severity error blocks (except a test a quiet night skips, see
`RiskDbtTranslator.get_asset_check_spec`), warn only reports.

Three dbt steps: `risk_dbt_models` builds everything up to the feature marts; after the
Python early-warning engine has scored the firms, `decision_history_dbt_models` (tag
`as_of_history`, partitioned by as-of date) adds each decided date's rows to the watchlist
history and the refresh calendar, and `decision_dbt_models` (the other `decisions` models:
watchlist, IFRS 9 stage overlay) rebuilds the current marts as of the current date.
"""


import json
from collections.abc import Iterator, Mapping, Sequence
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
from dagster import (
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    AssetMaterialization,
    AssetSpec,
    Output,
)
from dagster_dbt import (
    DagsterDbtTranslator,
    DbtCliInvocation,
    DbtCliResource,
    DbtProject,
    dbt_assets,
    get_asset_key_for_model,
)

from assets.core import settings
from assets.core.dbt_project import (
    dbt_project,
    keep_partial_parse,
    prune_run_targets,
    write_pd_champion,
    write_run_context,
)
from assets.core.metadata import relation_row_counts
from assets.core.partitions import AS_OF_PARTITIONS, SINGLE_RUN
from assets.core.resources import RiskWarehouse
from assets.refresh_plan import (
    FULL_REFRESH_TAG,
    NOTHING,
    Recompute,
    mark_incremental_base,
    plan_recompute,
)
from assets.scorecard.fit import champion_fingerprint, champion_pd_sql
from assets.signals.catalog import load_catalog, red_fact_predicates

LAYERS = ("staging", "intermediate", "marts")
OWNERS = {
    "staging": "team:data-engineering",
    "intermediate": "team:data-engineering",
    "marts": "team:credit-risk",
}
DECISIONS = "tag:decisions"
AS_OF_HISTORY = "tag:as_of_history"

# Unit tests check logic, not data: pytest runs them (tests/test_loan_performance.py); the
# nightly build runs models and data tests only.
BUILD_ARGS = ["build", "--exclude-resource-type", "unit_test"]


class RiskDbtTranslator(DagsterDbtTranslator):
    """Asset key `<layer>/<model>`, group = the folder's domain, owner per layer."""

    @staticmethod
    def _layer(props: Mapping[str, Any]) -> str | None:
        fqn = props.get("fqn") or []
        return fqn[1] if len(fqn) > 2 and fqn[1] in LAYERS else None

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> AssetKey:
        layer = self._layer(dbt_resource_props)
        if dbt_resource_props.get("resource_type") == "model" and layer:
            return AssetKey([layer, dbt_resource_props["name"]])
        return super().get_asset_key(dbt_resource_props)

    def get_owners(self, dbt_resource_props: Mapping[str, Any]) -> Sequence[str] | None:
        layer = self._layer(dbt_resource_props)
        return [OWNERS[layer]] if layer else super().get_owners(dbt_resource_props)

    def get_asset_check_spec(
        self,
        asset_spec: AssetSpec,
        manifest: Mapping[str, Any],
        unique_id: str,
        project: DbtProject | None,
    ) -> AssetCheckSpec | None:
        """dagster-dbt makes every severity-error test blocking; a test a quiet night skips
        (`skipped_on_quiet_nights`) is not, or Dagster would warn on every such night that a
        blocking check "emitted no result". If it fails on a night that runs it, dbt still
        fails the step, so nothing downstream runs either way."""
        spec = super().get_asset_check_spec(asset_spec, manifest, unique_id, project)
        if spec is not None and spec.blocking and skipped_on_quiet_nights(manifest, unique_id):
            return spec._replace(blocking=False)
        return spec


TRANSLATOR = RiskDbtTranslator()
CATALOG = load_catalog()


def decision_vars(catalog) -> dict[str, object]:
    """The catalog values the decision models read: version, watchlist exit rule, actions."""
    return {
        "catalog_version": catalog.version,
        "watchlist_exit_after_clear_month_ends": catalog.exit_after_clear_month_ends,
        "action_red": catalog.recommended_action["red"],
        "action_amber": catalog.recommended_action["amber"],
        # another firm "on red" in the network features: the red hard triggers on its facts
        "red_hard_triggers": red_fact_predicates(catalog),
        # ... and a firm whose PD from the champion reaches the red tier's cut-off
        "red_pd_cutoff": catalog.pd_tiers.red,
    }


def store_champion_for_dbt(warehouse_path: Path) -> str:
    """Store the SQL scoring the champion PD scorecard in the warehouse now (`champion_pd_sql`;
    '' with none) where the network features' "another firm on red by its PD" reads it
    (`write_pd_champion`, fct_enterprise_month_end_network_pd); returns it. Called as a dbt
    step starts, so the model in use scores, never the one this run may fit after the
    feature marts."""
    warehouse_path.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(warehouse_path)) as con:
        score_sql = champion_pd_sql(con)
        write_pd_champion(con, score_sql)
    return score_sql


def champion_fingerprint_at(warehouse_path: Path) -> str:
    """The fingerprint of the champion stored in the warehouse ('' with none): what the
    network PD facts are scored with, recorded beside them (`mark_incremental_base`)."""
    if not warehouse_path.exists():
        return ""
    with duckdb.connect(str(warehouse_path), read_only=True) as con:
        return champion_fingerprint(con)


def dbt_vars(warehouse: RiskWarehouse) -> dict[str, object]:
    """The vars of every dbt step: warehouse file and DuckDB memory cap (the profile reads
    them as vars, so no environment is changed inside a step) and the catalog values. The
    same in every step and from night to night, so dbt keeps its partial parse: what changes
    goes through the warehouse (the as-of date, `write_run_context`; the champion's scoring
    SQL, `store_champion_for_dbt`), and only a new catalog makes dbt parse again."""
    return {
        "warehouse_path": str(warehouse.warehouse_path),
        "duckdb_memory_limit": settings.duckdb_memory_limit(),
        **decision_vars(CATALOG),
    }


def _key_of(event: object, context: AssetExecutionContext) -> AssetKey | None:
    if isinstance(event, Output):
        return context.asset_key_for_output(event.output_name)
    if isinstance(event, AssetMaterialization):
        return event.asset_key
    return None


def _with_row_counts(
    events: Iterator, warehouse: RiskWarehouse, context: AssetExecutionContext
) -> Iterator:
    """dbt's events with each model's row count added, read after the build in one read-only
    connection (dagster-dbt's threaded row-count fetching collides with DuckDB's single
    writer, so the counts wait until dbt has closed the file)."""
    buffered = list(events)
    relations = {}
    for event in buffered:
        key = _key_of(event, context)
        if key is not None and len(key.path) == 2:
            relations[key] = f"{key.path[0]}.{key.path[1]}"
    counts = {}
    if relations and warehouse.warehouse_path.exists():
        with duckdb.connect(str(warehouse.warehouse_path), read_only=True) as con:
            counts = relation_row_counts(con, relations)
    for event in buffered:
        key = _key_of(event, context)
        if key in counts:
            event = event.with_metadata({**event.metadata, "dagster/row_count": counts[key]})
        yield event
    prune_run_targets()


def _invoke(
    context: AssetExecutionContext,
    dbt: DbtCliResource,
    warehouse: RiskWarehouse,
    as_of: date | None = None,
    recompute: Recompute | None = None,
) -> DbtCliInvocation:
    """Start `dbt build` of this asset's selection as of `as_of` (default the run's current
    date): the date goes into the warehouse first, the vars are the same for every step and
    night, so dbt keeps its partial parse. `recompute`: the incremental facts' plan (None:
    they recompute everything)."""
    extra: list[str] = []
    if recompute is not None and recompute.full:
        extra = ["--full-refresh"]
    elif recompute is not None and recompute.from_month_end == NOTHING and not (
        recompute.enterprises
    ):
        unchanged = unchanged_fact_tests()
        # one space-separated value: dagster-dbt folds it into the asset's own selection
        # (separate tokens would fall out of its parser onto the preceding option)
        extra = ["--exclude", " ".join(unchanged)] if unchanged else []
    partial = recompute is not None and not recompute.full
    write_run_context(
        warehouse.warehouse_path,
        as_of or warehouse.as_of_date,
        recompute.from_month_end if partial else None,
        recompute.enterprises if partial else (),
        recompute.network_from_month_end if partial else None,
        recompute.network_enterprises if partial else (),
        previous_as_of=recompute.previous_as_of if partial else None,
        recompute_loans=recompute.loans if partial else (),
    )
    store_champion_for_dbt(warehouse.warehouse_path)
    return dbt.cli(
        [*BUILD_ARGS, *extra, "--vars", json.dumps(dbt_vars(warehouse))], context=context
    )


def _build(
    context: AssetExecutionContext,
    dbt: DbtCliResource,
    warehouse: RiskWarehouse,
    as_of: date | None = None,
    recompute: Recompute | None = None,
) -> Iterator:
    """One dbt step: the build's events with row counts read after it; the parse state is
    kept for the next step."""
    invocation = _invoke(context, dbt, warehouse, as_of, recompute)
    yield from _with_row_counts(invocation.stream(), warehouse, context)
    keep_partial_parse(invocation.target_path)


def skipped_on_quiet_nights(manifest: Mapping[str, Any], unique_id: str) -> bool:
    """Whether the data test `unique_id` only reads the incremental month-end facts and is not
    tagged `blocking`: a night that recomputes no month end skips it (its tables are as tested
    on the night they changed)."""
    nodes = manifest["nodes"]
    test = nodes[unique_id]
    if test["resource_type"] != "test" or "blocking" in test.get("tags", []):
        return False
    parents = test["depends_on"]["nodes"]
    return bool(parents) and all(
        nodes.get(p, {}).get("config", {}).get("incremental_strategy") == "replace_from_month_end"
        for p in parents
    )


def unchanged_fact_tests(manifest_path=None) -> list[str]:
    """The data tests a night that recomputes no month end skips (`skipped_on_quiet_nights`)."""
    manifest = json.loads((manifest_path or dbt_project.manifest_path).read_text())
    return sorted(
        n["name"] for uid, n in manifest["nodes"].items() if skipped_on_quiet_nights(manifest, uid)
    )


@dbt_assets(
    manifest=dbt_project.manifest_path,
    project=dbt_project,
    dagster_dbt_translator=TRANSLATOR,
    exclude=DECISIONS,
    name="risk_dbt_models",
)
def risk_dbt_models(
    context: AssetExecutionContext, dbt: DbtCliResource, warehouse: RiskWarehouse
) -> Iterator:
    """`dbt build` of staging, intermediate and the fact marts as of the run's date: the
    month-end facts recompute only the month ends tonight's changed rows touch
    (`plan_recompute`), or everything with `--full-refresh` (run tag `risk/full_refresh`, a
    first build, changed code)."""
    as_of = warehouse.as_of_date
    champion = champion_fingerprint_at(warehouse.warehouse_path)
    recompute = plan_recompute(
        warehouse.warehouse_path, warehouse.published_path, as_of,
        full=context.run.tags.get(FULL_REFRESH_TAG) == "true", pd_champion=champion,
    )
    context.log.info(f"month-end facts: {recompute.reason}")
    if not champion:
        context.log.info(
            "network features: no champion PD scorecard stored yet (cold start), so no other "
            "firm is on red by its PD in this build (fct_enterprise_month_end_network_pd empty)"
        )
    mark_incremental_base(warehouse.warehouse_path, None)
    yield from _build(context, dbt, warehouse, as_of, recompute)
    mark_incremental_base(warehouse.warehouse_path, as_of, champion)


@dbt_assets(
    manifest=dbt_project.manifest_path,
    project=dbt_project,
    dagster_dbt_translator=TRANSLATOR,
    select=AS_OF_HISTORY,
    name="decision_history_dbt_models",
    partitions_def=AS_OF_PARTITIONS,
    backfill_policy=SINGLE_RUN,
)
def decision_history_dbt_models(
    context: AssetExecutionContext, dbt: DbtCliResource, warehouse: RiskWarehouse
) -> Iterator:
    """`dbt build` of the history models (watchlist_history, watchlist_refreshes) once per
    as-of date of the run: each replaces its date's rows only. A backfill's earlier dates run
    first (a failure stops the step); Dagster records the last build's events for the range."""
    dates = sorted(warehouse.as_of_dates)
    for d in dates[:-1]:
        keep_partial_parse(_invoke(context, dbt, warehouse, d).wait().target_path)
        context.log.info(f"watchlist history written for {d}")
    yield from _build(context, dbt, warehouse, as_of=dates[-1])


@dbt_assets(
    manifest=dbt_project.manifest_path,
    project=dbt_project,
    dagster_dbt_translator=TRANSLATOR,
    select=DECISIONS,
    exclude=AS_OF_HISTORY,
    name="decision_dbt_models",
)
def decision_dbt_models(
    context: AssetExecutionContext, dbt: DbtCliResource, warehouse: RiskWarehouse
) -> Iterator:
    """`dbt build` of the current decision marts (watchlist, IFRS 9 stage overlay) as of the
    current as-of date: a run for a past date rebuilds them unchanged."""
    yield from _build(context, dbt, warehouse)


dbt_model_assets = [risk_dbt_models, decision_history_dbt_models, decision_dbt_models]


def mart_key(model_name: str) -> AssetKey:
    """The asset key of a dbt model, read from the manifest (never typed by hand)."""
    for assets_def in dbt_model_assets:
        key = get_asset_key_for_model([assets_def], model_name)
        if key in assets_def.keys:
            return key
    raise KeyError(f"no dbt model named {model_name!r} in the manifest")
