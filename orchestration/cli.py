"""`risk`: the headless entry point (contract section 5).

risk refresh                      run the nightly_refresh job in-process, recorded in DAGSTER_HOME
risk backtest [--no-refit]        refit the PD scorecard and back-test the early warning on the
                                  warehouse's own outcomes (job model_backtest)
risk generate --enterprises N --seed S --out DIR [--format csv|parquet]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from assets.core import settings


def _refresh(_: argparse.Namespace) -> int:
    settings.ensure_dagster_home()
    from dagster import DagsterInstance

    from assets.core.dbt_project import prepare_dbt_project

    prepare_dbt_project()  # the asset graph is read from dbt's manifest
    from orchestration.definitions import defs

    warehouse, landing = settings.warehouse_path(), settings.landing_dir()
    as_of = settings.as_of_date()
    print(
        f"risk refresh: landing {landing}\n              warehouse {warehouse}\n"
        f"              as of {as_of}",
        flush=True,
    )
    started = time.perf_counter()
    job = defs.resolve_job_def("nightly_refresh")
    with DagsterInstance.get() as instance:
        result = job.execute_in_process(
            instance=instance,
            raise_on_error=False,
            run_config={
                "loggers": {"console": {"config": {"log_level": "INFO"}}},
                # From the environment now, not as it was when the definitions were imported.
                "resources": {
                    "warehouse": {
                        "config": {
                            "warehouse": str(warehouse),
                            "landing_dir": str(landing),
                            "as_of": as_of.isoformat(),
                        }
                    }
                },
            },
            tags={"trigger": "risk refresh"},
        )
        step_seconds = _step_seconds(instance, result.run_id)
    seconds = time.perf_counter() - started
    _print_summary(warehouse)
    if step_seconds:
        print(f"\n {'step':<64} seconds")
        for step, took in step_seconds.items():
            print(f" {step:<64} {took:>7.1f}")
    failed = [e.step_key for e in result.all_events if e.is_step_failure and e.step_key is not None]
    if not result.success:
        print(
            f"\nrisk refresh FAILED after {seconds:.1f}s (run {result.run_id}); "
            f"failed steps: {', '.join(failed) or 'see the run log'}",
            file=sys.stderr,
        )
        return 1
    print(
        f"\nrisk refresh succeeded in {seconds:.1f}s (run {result.run_id}); warehouse: {warehouse}"
    )
    return 0


def _step_seconds(instance, run_id: str) -> dict[str, float]:
    """Wall time of each step of the run, from its event log."""
    started: dict[str, float] = {}
    took: dict[str, float] = {}
    for entry in instance.all_logs(run_id):
        event = entry.dagster_event
        if event is None or event.step_key is None:
            continue
        if event.event_type_value == "STEP_START":
            started[event.step_key] = entry.timestamp
        elif event.event_type_value in ("STEP_SUCCESS", "STEP_FAILURE"):
            took[event.step_key] = entry.timestamp - started.get(event.step_key, entry.timestamp)
    return took


def _print_summary(warehouse: Path) -> None:
    """What was loaded, quarantined and built, read back from the warehouse."""
    import duckdb

    if not warehouse.exists():
        return
    with duckdb.connect(str(warehouse), read_only=True) as con:
        tables = {
            r[0]
            for r in con.execute(
                "SELECT table_schema || '.' || table_name FROM information_schema.tables"
            ).fetchall()
        }
        if "raw.load_manifest" not in tables:
            return
        print("\n table                 rows in raw   quarantined   rejected files")
        from assets.contract import LOAD_ORDER

        for t in LOAD_ORDER:
            rows = con.execute(f"SELECT count(*) FROM raw.{t}").fetchone()[0]
            q = con.execute(
                "SELECT count(*) FROM raw.rejected_rows WHERE table_name = ?", [t]
            ).fetchone()[0]
            f = con.execute(
                "SELECT count(*) FROM raw.rejected_files WHERE table_name = ?", [t]
            ).fetchone()[0]
            print(f" {t:<20} {rows:>12,} {q:>13,} {f:>16,}")
        marts = sorted(t for t in tables if t.startswith("marts."))
        if marts:
            print("\n mart                                   rows")
            for m in marts:
                n = con.execute(f"SELECT count(*) FROM {m}").fetchone()[0]
                print(f" {m:<36} {n:>10,}")


def _backtest(args: argparse.Namespace) -> int:
    settings.ensure_dagster_home()
    from dagster import AssetKey, AssetSelection, DagsterInstance

    from assets.core.dbt_project import prepare_dbt_project

    prepare_dbt_project()
    from orchestration.definitions import defs

    warehouse = settings.warehouse_path()
    if not warehouse.exists():
        print(f"risk backtest: no warehouse at {warehouse} (RISK_WAREHOUSE); run `risk refresh` "
              "first", file=sys.stderr)
        return 2
    print(f"risk backtest: warehouse {warehouse}", flush=True)
    job = defs.resolve_job_def("model_backtest")
    selection = None
    if args.no_refit:
        from assets.backtest_assets import BACKTEST_MARTS

        selection = AssetSelection.assets(*(AssetKey(["marts", m]) for m in BACKTEST_MARTS))
    with DagsterInstance.get() as instance:
        result = job.execute_in_process(
            instance=instance,
            raise_on_error=False,
            run_config={"resources": {"warehouse": {"config": {
                "warehouse": str(warehouse),
                "landing_dir": str(settings.landing_dir()),
                "as_of": settings.as_of_date().isoformat(),
            }}}},
            asset_selection=list(selection.resolve(defs.resolve_asset_graph()))
            if selection is not None else None,
            tags={"trigger": "risk backtest"},
        )
    if not result.success:
        print(f"risk backtest FAILED (run {result.run_id}): see the run log", file=sys.stderr)
        return 1
    _print_backtest(warehouse)
    return 0


def _print_backtest(warehouse: Path) -> None:
    """The runs just written, as a table a person can read."""
    import duckdb

    cols = ["auc_6m", "ks_6m", "auc_12m", "recall_6m", "precision_red_6m",
            "performing_listed_share", "listed_while_current_share", "lead_time_median"]
    with duckdb.connect(str(warehouse), read_only=True) as con:
        rows = con.execute(
            f"SELECT window_start, window_end, model_version, {', '.join(cols)} "
            "FROM marts.backtest_runs ORDER BY ran_at DESC LIMIT 2"
        ).fetchall()
    print(f"\n {'window':<25} {'engine':<40} " + " ".join(f"{c[:12]:>12}" for c in cols))
    for r in reversed(rows):
        vals = " ".join(f"{v:>12.3f}" if isinstance(v, float) else f"{v!s:>12}" for v in r[3:])
        print(f" {r[0]} .. {r[1]}  {r[2]:<40} {vals}")
    print("\n marts.backtest_runs / _signals / _calibration / _cutoffs / _lead_times / "
          "_stability hold the details.")


def _generate(args: argparse.Namespace) -> int:
    from synthetic.generator import generate

    summary = generate(
        Path(args.out), n_enterprises=args.enterprises, seed=args.seed, fmt=args.format
    )
    print(summary)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="risk", description="SME credit early-warning platform")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser(
        "refresh",
        help="run nightly_refresh end to end (honours RISK_LANDING_DIR, RISK_AS_OF, "
        "RISK_WAREHOUSE)",
    ).set_defaults(func=_refresh)
    bt = sub.add_parser(
        "backtest",
        help="refit the PD scorecard and back-test the early warning on the warehouse's own "
        "outcomes (writes marts.backtest_*)",
    )
    bt.add_argument("--no-refit", action="store_true", help="back-test the current engine only")
    bt.set_defaults(func=_backtest)
    gen = sub.add_parser("generate", help="write a synthetic landing directory")
    gen.add_argument("--enterprises", type=int, required=True)
    gen.add_argument("--seed", type=int, default=42)
    gen.add_argument("--out", required=True)
    gen.add_argument("--format", choices=("csv", "parquet"), default="csv")
    gen.set_defaults(func=_generate)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
