"""The dbt project as Dagster assets, with the one translator that names and groups them.

Models become assets keyed `<schema>/<model>` (staging, intermediate, marts), grouped by that
layer; dbt sources map onto the ingestion assets `raw/<table>` through their
`meta.dagster.asset_key`, so the graph runs landing -> raw -> staging -> intermediate -> marts.
dbt tests become asset checks: severity error blocks, warn only reports.
"""

import json
import os
import subprocess
from collections.abc import Mapping, Sequence
from typing import Any

from dagster import AssetExecutionContext, AssetKey
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, DbtProject, dbt_assets

from assets.core import settings
from assets.core.resources import RiskWarehouse, dbt_executable

OWNERS = {
    "staging": "team:data-engineering",
    "intermediate": "team:data-engineering",
    "marts": "team:credit-risk",
}

# Unit tests check logic, not data: pytest runs them (tests/test_loan_performance.py); the
# nightly build runs models and data tests only.
BUILD_ARGS = ["build", "--exclude-resource-type", "unit_test"]

dbt_project = DbtProject(
    project_dir=settings.DBT_PROJECT_DIR, profiles_dir=settings.DBT_PROJECT_DIR
)
dbt_project.prepare_if_dev()


def manifest_is_stale() -> bool:
    """No manifest yet (fresh clone, CI), or a dbt file changed since it was written."""
    manifest = dbt_project.manifest_path
    if not manifest.exists():
        return True
    built = manifest.stat().st_mtime
    project_dir = dbt_project.project_dir
    sources = [project_dir / "dbt_project.yml", project_dir / "profiles.yml"]
    for folder in ("models", "macros", "tests"):
        sources += [p for p in (project_dir / folder).rglob("*") if p.is_file()]
    return any(p.stat().st_mtime > built for p in sources if p.exists())


def ensure_manifest() -> None:
    """`dbt parse` when the manifest is missing or stale: the asset graph is read from it."""
    if manifest_is_stale():
        subprocess.run(
            [
                dbt_executable(),
                "parse",
                "--quiet",
                "--project-dir",
                str(dbt_project.project_dir),
                "--profiles-dir",
                str(dbt_project.profiles_dir),
            ],
            check=True,
            cwd=dbt_project.project_dir,
        )


class RiskDbtTranslator(DagsterDbtTranslator):
    """Asset key `<layer>/<model>`, group = layer, owner per layer."""

    @staticmethod
    def _layer(props: Mapping[str, Any]) -> str | None:
        fqn = props.get("fqn") or []
        return fqn[1] if len(fqn) > 2 and fqn[1] in OWNERS else None

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> AssetKey:
        layer = self._layer(dbt_resource_props)
        if dbt_resource_props.get("resource_type") == "model" and layer:
            return AssetKey([layer, dbt_resource_props["name"]])
        return super().get_asset_key(dbt_resource_props)

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        return self._layer(dbt_resource_props) or super().get_group_name(dbt_resource_props)

    def get_owners(self, dbt_resource_props: Mapping[str, Any]) -> Sequence[str] | None:
        layer = self._layer(dbt_resource_props)
        return [OWNERS[layer]] if layer else super().get_owners(dbt_resource_props)


ensure_manifest()


@dbt_assets(
    manifest=dbt_project.manifest_path,
    project=dbt_project,
    dagster_dbt_translator=RiskDbtTranslator(),
)
def risk_dbt_models(context: AssetExecutionContext, dbt: DbtCliResource, warehouse: RiskWarehouse):
    """`dbt build` as of the run's date, against the run's warehouse."""
    dbt_vars = {"as_of_date": warehouse.as_of_date.isoformat()}
    # dbt's profile reads RISK_WAREHOUSE; DbtCliResource passes os.environ to the subprocess.
    os.environ["RISK_WAREHOUSE"] = str(warehouse.warehouse_path)
    os.environ["RISK_DUCKDB_MEMORY_LIMIT"] = settings.duckdb_memory_limit()
    yield from dbt.cli(BUILD_ARGS + ["--vars", json.dumps(dbt_vars)], context=context).stream()
