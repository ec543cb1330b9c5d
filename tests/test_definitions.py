"""The Dagster code location: loads, and every asset says who owns it, what it is and where."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from dagster import Definitions

SNAPSHOT = Path(__file__).parent / "snapshots" / "asset_specs.json"


@pytest.fixture(scope="module")
def defs() -> Definitions:
    from orchestration.definitions import defs

    return defs


def _spec_snapshot(defs: Definitions) -> dict[str, dict]:
    graph = defs.resolve_asset_graph()
    out = {}
    for key in sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string()):
        node = graph.get(key)
        out[key.to_user_string()] = {
            "group": node.group_name,
            "kinds": sorted(node.kinds),
            "owners": sorted(node.owners),
            "deps": sorted(d.to_user_string() for d in node.parent_keys),
            "checks": sorted(c.name for c in node.check_keys),
            "partitioned": node.partitions_def is not None,
        }
    return out


def test_definitions_load(defs: Definitions) -> None:
    Definitions.validate_loadable(defs)
    assert defs.resolve_job_def("nightly_refresh") is not None


def test_every_asset_has_group_kinds_owner_and_description(defs: Definitions) -> None:
    graph = defs.resolve_asset_graph()
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        name = key.to_user_string()
        assert node.group_name and node.group_name != "default", name
        assert node.kinds, name
        assert node.owners, name
        assert (node.description or "").strip(), name


def test_ingestion_assets_feed_the_dbt_sources(defs: Definitions) -> None:
    snap = _spec_snapshot(defs)
    ingestion = {k for k, v in snap.items() if v["group"] == "ingestion"}
    assert ingestion == {f"raw/{t}" for t in __import__("assets.contract").contract.TABLES}
    staging_deps = {d for k, v in snap.items() if k.startswith("staging/") for d in v["deps"]}
    assert ingestion <= staging_deps  # landing -> raw -> staging, no gaps


DOMAINS = {
    "ingestion", "loan_performance", "enterprise_features", "early_warning", "pre_lending",
    "exports",
}


def test_groups_are_domains_and_keys_keep_the_layer(defs: Definitions) -> None:
    snap = _spec_snapshot(defs)
    assert {v["group"] for v in snap.values()} == DOMAINS
    layers = {k.split("/")[0] for k in snap}
    assert layers == {"raw", "staging", "intermediate", "marts", "models", "exports"}


def test_nightly_schedule_runs_at_two_beijing_time(defs: Definitions) -> None:
    schedule = defs.resolve_schedule_def("nightly_refresh_0200_shanghai")
    assert schedule.cron_schedule == "0 2 * * *"
    assert schedule.execution_timezone == "Asia/Shanghai"
    assert schedule.job_name == "nightly_refresh"
    assert schedule.default_status.value == "RUNNING"
    from datetime import UTC, datetime

    from dagster import build_schedule_context

    # 18:00 UTC on 31 Oct is 02:00 on 1 Nov in Beijing: the run is as of 1 Nov.
    ctx = build_schedule_context(
        scheduled_execution_time=datetime(2026, 10, 31, 18, tzinfo=UTC),
        repository_def=defs.get_repository_def(),
    )
    request = schedule.evaluate_tick(ctx).run_requests[0]
    assert request.tags["risk/as_of_date"] == "2026-11-01"
    # ... and it runs the as-of partition of that date.
    assert request.partition_key == "2026-11-01"


def test_decision_assets_are_partitioned_by_as_of_date(defs: Definitions) -> None:
    """The per-date decisions carry the as-of partitions (single-run backfill); the current
    marts, the facts and publishing do not, so a past date never rebuilds them as of then."""
    from dagster import AssetKey, BackfillPolicy

    from assets.core.partitions import AS_OF_PARTITIONS

    graph = defs.resolve_asset_graph()
    partitioned = {k.to_user_string() for k in graph.get_all_asset_keys()
                   if graph.get(k).partitions_def is not None}
    assert partitioned == {
        "marts/signal_hits", "marts/enterprise_risk_profile", "marts/enterprise_decisions",
        "marts/watchlist_history", "marts/watchlist_refreshes", "exports/watchlist_report",
        "marts/loan_ifrs9_stage_history",
    }
    for name in partitioned:
        node = graph.get(AssetKey(name.split("/")))
        assert node.partitions_def == AS_OF_PARTITIONS, name
        assert node.backfill_policy == BackfillPolicy.single_run(), name
    assert AS_OF_PARTITIONS.timezone == "Asia/Shanghai"
    job = defs.resolve_job_def("nightly_refresh")
    assert job.partitions_def == AS_OF_PARTITIONS
    # A backfill launched from the job page follows the job's policy (Dagster 1.13,
    # job_backfill._get_partitions_chunk): one run tagged with the range, not a run per date.
    assert job.backfill_policy == BackfillPolicy.single_run()


def test_asset_specs_match_snapshot(defs: Definitions) -> None:
    """Changing the graph is fine, but deliberate: UPDATE_SNAPSHOTS=1 pytest rewrites it."""
    current = _spec_snapshot(defs)
    if os.environ.get("UPDATE_SNAPSHOTS") or not SNAPSHOT.exists():
        SNAPSHOT.write_text(json.dumps(current, indent=2, sort_keys=True) + "\n")
    assert current == json.loads(SNAPSHOT.read_text())


def test_landing_sensor_fires_on_new_files_only(
    defs: Definitions, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dagster import build_sensor_context

    from orchestration.sensors import landing_files_sensor

    monkeypatch.setenv("RISK_LANDING_DIR", str(tmp_path))
    (tmp_path / "loans").mkdir()
    assert landing_files_sensor.default_status.value == "STOPPED"
    ctx = build_sensor_context(cursor=None)
    assert landing_files_sensor(ctx).__class__.__name__ == "SkipReason"
    (tmp_path / "loans" / "a.csv").write_text("loan_id\n")
    request = landing_files_sensor(ctx)
    assert request.__class__.__name__ == "RunRequest" and request.tags["changed_files"] == "1"
    again = build_sensor_context(cursor=ctx.cursor)
    assert landing_files_sensor(again).__class__.__name__ == "SkipReason"
