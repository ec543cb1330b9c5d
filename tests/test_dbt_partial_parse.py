"""dbt keeps partial parsing from night to night: the as-of date reaches the models through
main.dbt_run_context (written before dbt runs), not through --vars, so a new date changes none
of dbt's parse inputs."""

from __future__ import annotations

import os
from pathlib import Path

import duckdb
import pytest
from conftest import CONTRACT_EXAMPLES

from assets.core.dbt_project import RUN_CONTEXT, keep_partial_parse, run_dbt
from assets.ingestion import ingest_all

SELECT = ["--select", "+fct_loan_month_end"]


def _invocations(log: Path) -> list[str]:
    """dbt.log split per invocation (each starts with 'Running with dbt')."""
    parts = log.read_text(errors="replace").split("Running with dbt=")
    return parts[1:]


def test_a_new_as_of_date_keeps_partial_parsing_and_is_built(tmp_path: Path) -> None:
    warehouse, target = tmp_path / "w.duckdb", tmp_path / "target"
    ingest_all(warehouse, CONTRACT_EXAMPLES / "landing")
    for as_of in ("2024-11-30", "2024-12-31"):
        run_dbt(["run", *SELECT], warehouse=warehouse, dbt_vars={"as_of_date": as_of},
                target_path=target)
        with duckdb.connect(str(warehouse), read_only=True) as con:
            assert con.execute(f"SELECT as_of_date FROM {RUN_CONTEXT}").fetchone()[0] \
                .isoformat() == as_of
            built = con.execute("SELECT max(month_end) FROM marts.fct_loan_month_end").fetchone()
        assert [d.isoformat() for d in built] == [as_of]  # the models read the table
    first, second = _invocations(target / "logs" / "dbt.log")
    assert "Unable to do partial parsing because saved manifest not found" in first
    assert "Unable to do partial parsing" not in second
    assert "Partial parsing enabled" in second


def test_the_parse_state_of_a_run_is_kept_for_the_next(tmp_path: Path) -> None:
    project_target, run_target = tmp_path / "target", tmp_path / "target" / "run-1"
    assert not keep_partial_parse(run_target, project_target)  # nothing to keep
    run_target.mkdir(parents=True)
    (run_target / "partial_parse.msgpack").write_bytes(b"state of run 1")
    assert keep_partial_parse(run_target, project_target)
    assert (project_target / "partial_parse.msgpack").read_bytes() == b"state of run 1"
    assert [p.name for p in project_target.iterdir() if p.is_file()] == ["partial_parse.msgpack"]


def test_pruning_keeps_the_newest_run_folders_and_any_still_being_written(tmp_path) -> None:
    import time

    from assets.core.dbt_project import prune_run_targets

    now = time.time()
    ages = {f"risk_dbt_models-run{i:02d}-x": i * 600 + 30 for i in range(14)}  # 0.5 .. 130.5 min
    for name, age in ages.items():
        (tmp_path / name).mkdir()
        os.utime(tmp_path / name, (now - age, now - age))
    (tmp_path / "compiled").mkdir()  # not a run folder
    deleted = prune_run_targets(keep=3, target=tmp_path)
    left = sorted(p.name for p in tmp_path.iterdir())
    # the 3 newest are kept, so are the ones touched within the hour (ages 0..50 min), and
    # of the rest (60 min and older) every one goes
    assert deleted == 14 - 6
    assert left == sorted(["compiled", *[n for n, a in ages.items() if a < 3600]])


def test_a_dbt_step_builds_no_dbt_adapter_inside_the_dagster_process(monkeypatch) -> None:
    """dagster-dbt would build a dbt adapter (all macros loaded, ~2.3 s) on every `cli()` call
    for row counts and column metadata this project never fetches: the resource skips it."""
    import dbt.adapters.factory

    from assets.core.dbt_project import dbt_resource

    registered = []  # dagster-dbt swallows an adapter error, so record the call instead
    monkeypatch.setattr(dbt.adapters.factory, "register_adapter",
                        lambda *args, **kwargs: registered.append(args))
    invocation = dbt_resource().cli(["--version"], raise_on_error=True)
    invocation.wait()
    assert invocation.adapter is None
    assert registered == []


def test_run_dbt_in_this_process_answers_as_the_cli_and_releases_the_file(
    tmp_path: Path, monkeypatch
) -> None:
    """run_dbt calls dbt in the test's own process: it returns the CLI's exit code and console
    output, ignores the caller's RISK_AS_OF without changing it, and leaves the warehouse
    closed, so it opens again read-only (another configuration than dbt-duckdb's)."""
    warehouse, target = tmp_path / "w.duckdb", tmp_path / "target"
    ingest_all(warehouse, CONTRACT_EXAMPLES / "landing")
    monkeypatch.setenv("RISK_AS_OF", "not a date")
    proc = run_dbt(["run", "--select", "stg_core_banking__loans"], warehouse=warehouse,
                   dbt_vars={"as_of_date": "2024-12-31"}, target_path=target)
    assert proc.returncode == 0 and "Completed successfully" in proc.stdout, proc.stdout
    assert os.environ["RISK_AS_OF"] == "not a date"
    with duckdb.connect(str(warehouse), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM staging.stg_core_banking__loans").fetchone()[0]
    failed = run_dbt(["test", "--select", "no_such_model"], warehouse=warehouse,
                     target_path=target, check=False)
    assert failed.returncode == 0  # nothing selected: dbt warns and succeeds, as its CLI does
    bad = run_dbt(["run", "--no-such-option"], warehouse=warehouse, target_path=target,
                  check=False)
    assert bad.returncode == 2 and "no-such-option" in bad.stderr + bad.stdout
    with pytest.raises(RuntimeError, match=r"dbt run --no-such-option failed \(exit 2\)"):
        run_dbt(["run", "--no-such-option"], warehouse=warehouse, target_path=target)
