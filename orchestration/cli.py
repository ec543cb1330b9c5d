"""`risk`: the headless entry point (contract section 5).

risk refresh [--full]             run the nightly_refresh job in-process, recorded in DAGSTER_HOME;
                                  builds in <RISK_WAREHOUSE stem>.build.duckdb and publishes
                                  RISK_WAREHOUSE atomically when the run succeeded; with nothing
                                  new since the publish (assets/refresh_plan.py) prints one line
                                  and exits 0, unless --full
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


def _check_settings(command: str, *, landing: bool) -> str | None:
    """The RISK_* settings a command needs, checked before anything runs: one line naming the
    variable and its value, or None."""
    try:
        as_of = settings.check_as_of()
        if command == "refresh":  # the run is the as-of partition of D
            from assets.core.partitions import partition_problem

            problem = partition_problem(as_of)
            if problem:
                raise settings.SettingError("RISK_AS_OF", as_of.isoformat(), problem)
        settings.check_warehouse()
        if landing:
            settings.check_landing_dir()
    except settings.SettingError as exc:
        return f"risk {command}: {exc}"
    return None


def _warehouse_config(warehouse: Path, landing: Path, as_of) -> dict:
    return {"config": {
        "warehouse": str(warehouse),
        "landing_dir": str(landing),
        "as_of": as_of.isoformat(),
        "build_aside": True,
    }}


def _run_tags(trigger: str) -> dict[str, str]:
    from assets.core.publish import process_tag
    from assets.core.resources import PROCESS_TAG

    return {
        "trigger": trigger,
        PROCESS_TAG: process_tag(),
        settings.WAREHOUSE_RUN_TAG: "write",
        "risk/as_of_date": settings.as_of_date().isoformat(),
    }


def _refresh(args: argparse.Namespace) -> int:
    problem = _check_settings("refresh", landing=True)
    if problem:
        print(problem, file=sys.stderr)
        return 2
    settings.ensure_dagster_home()
    from assets.core import publish

    warehouse, landing = settings.warehouse_path(), settings.landing_dir()
    as_of = settings.as_of_date()
    try:  # one refresh at a time; held for the whole run (the run's resource re-enters it)
        publish.acquire(warehouse, wait=settings.lock_wait_seconds(), what="risk refresh")
    except publish.WarehouseBusy as exc:
        print(f"risk refresh: {exc}", file=sys.stderr)
        return 1
    try:
        from assets.refresh_plan import decide_refresh

        plan = decide_refresh(warehouse, landing, as_of, full=args.full)
        if not plan.rebuild:  # one line, exit 0: the published warehouse is already current
            print(f"risk refresh: {plan.reason} ({warehouse}); `risk refresh --full` rebuilds")
            return 0
        return _refresh_locked(warehouse, landing, as_of, verbose=args.verbose, full=args.full)
    finally:
        publish.release(warehouse)


def _refresh_locked(
    warehouse: Path, landing: Path, as_of, *, verbose: bool = False, full: bool = False
) -> int:
    print(
        f"risk refresh: landing {landing}\n              warehouse {warehouse}\n"
        f"              as of {as_of}\n              loading the pipeline ...",
        flush=True,
    )
    from dagster import DagsterInstance

    from assets.core.dbt_project import prepare_dbt_project
    from assets.core.publish import build_path
    from assets.core.resources import fail_orphaned_runs
    from assets.refresh_plan import FULL_REFRESH_TAG

    prepare_dbt_project()  # the asset graph is read from dbt's manifest
    from orchestration.definitions import defs
    from orchestration.sensors import raise_failure_alert

    print("              running nightly_refresh (each step is logged below)", flush=True)
    started = time.perf_counter()
    job = defs.resolve_job_def("nightly_refresh")
    with DagsterInstance.get() as instance:
        for run_id in fail_orphaned_runs(instance):
            print(f"risk refresh: run {run_id} was left STARTED by a process that is gone; "
                  "marked failed", flush=True)
            raise_failure_alert(instance, instance.get_run_by_id(run_id), lock_wait=0)
        result = job.execute_in_process(
            instance=instance,
            raise_on_error=False,
            run_config={
                "loggers": {"console": {"config": {"log_level": "INFO"}}},
                # From the environment now, not as it was when the definitions were imported.
                "resources": {"warehouse": _warehouse_config(warehouse, landing, as_of)},
            },
            tags={**_run_tags("risk refresh"), **({FULL_REFRESH_TAG: "true"} if full else {})},
            partition_key=as_of.isoformat(),  # the as-of partition D (Asia/Shanghai)
        )
        step_seconds = _step_seconds(instance, result.run_id)
        if not result.success:
            raise_failure_alert(instance, instance.get_run_by_id(result.run_id), lock_wait=0)
    seconds = time.perf_counter() - started
    _print_summary(build_path(warehouse), verbose=verbose)
    if step_seconds and verbose:
        print(f"\n {'step':<64} seconds")
        for step, took in step_seconds.items():
            print(f" {step:<64} {took:>7.1f}")
    failed = [e.step_key for e in result.all_events if e.is_step_failure and e.step_key is not None]
    if not result.success:
        print(
            f"\nrisk refresh FAILED after {seconds:.1f}s (run {result.run_id}); "
            f"failed steps: {', '.join(failed) or 'see the run log'}; "
            f"published warehouse unchanged: {warehouse}",
            file=sys.stderr,
        )
        return 1
    _print_what_next(warehouse, as_of)
    print(
        f"\nrisk refresh succeeded in {seconds:.1f}s (run {result.run_id}); warehouse: {warehouse}"
    )
    return 0


def _print_what_next(warehouse: Path, as_of) -> None:
    """What a person needs after a refresh: the watchlist in numbers, what changed, where the
    report and sheets are, how to look further."""
    import duckdb

    from assets.report.files import exports_dir

    if not warehouse.exists():
        return
    try:
        with duckdb.connect(str(warehouse), read_only=True) as con:
            # D's rows: the current watchlist, or D's history rows for a past date.
            wl = "(SELECT * FROM marts.watchlist_history WHERE as_of_date = $d)"
            tiers = dict(con.execute(
                f"SELECT tier, count(*) FROM {wl} GROUP BY ALL", {"d": as_of}).fetchall())
            status = dict(con.execute(
                f"SELECT status, count(*) FROM {wl} GROUP BY ALL", {"d": as_of}).fetchall())
            cleared = con.execute(
                "SELECT count(*) FROM marts.watchlist_history AS h WHERE h.as_of_date = "
                "(SELECT max(as_of_date) FROM marts.watchlist_history WHERE as_of_date < $d) "
                f"AND h.enterprise_id NOT IN (SELECT enterprise_id FROM {wl})",
                {"d": as_of},
            ).fetchone()[0]
            engine = con.execute(
                f"SELECT any_value(engine) FROM {wl}", {"d": as_of}).fetchone()[0]
            current = con.execute(
                "SELECT max(as_of_date) FROM marts.watchlist_refreshes").fetchone()[0]
    except duckdb.Error as exc:
        print(f"\n (no watchlist summary: {exc})")
        return
    out = exports_dir() / as_of.isoformat()
    print(
        f"\n watchlist as of {as_of}: {tiers.get('red', 0)} red, {tiers.get('amber', 0)} amber "
        f"({status.get('new', 0)} new, {status.get('escalated', 0)} escalated, {cleared} left "
        f"since the last refresh); engine: {engine or 'n/a'}"
        + (f"\n a past date: the current marts stay as of {current}" if current
           and current > as_of else "")
        + f"\n report and sheets: {out / 'report.html'}, {out / 'watchlist.xlsx'}"
        f"\n analysts: duckdb -readonly {warehouse}   (docs/analyst-guide.md)"
        "\n runs and checks: make ui, then http://127.0.0.1:3000   (step timings: --verbose)"
    )


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


def _print_summary(warehouse: Path, *, verbose: bool = False) -> None:
    """What was loaded and quarantined (and with --verbose, each mart's rows), read back from
    the build file."""
    import duckdb

    if not warehouse.is_file():
        return
    try:
        con = duckdb.connect(str(warehouse), read_only=True)
    except duckdb.Error as exc:  # the run's failure says more; the summary is a courtesy
        print(f"\n (no summary: {exc})")
        return
    with con:
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
        if marts and verbose:
            print("\n mart                                   rows")
            for m in marts:
                n = con.execute(f"SELECT count(*) FROM {m}").fetchone()[0]
                print(f" {m:<36} {n:>10,}")


def _backtest(args: argparse.Namespace) -> int:
    import os

    problem = _check_settings("backtest", landing="RISK_LANDING_DIR" in os.environ)
    if problem:
        print(problem, file=sys.stderr)
        return 2
    settings.ensure_dagster_home()
    from assets.core import publish

    warehouse = settings.warehouse_path()
    build = publish.build_path(warehouse)
    if not build.exists() and not (warehouse.exists() and not publish.is_published_copy(warehouse)):
        print(f"risk backtest: no warehouse at {warehouse} (RISK_WAREHOUSE); run `risk refresh` "
              "first", file=sys.stderr)
        return 2
    try:
        publish.acquire(warehouse, wait=settings.lock_wait_seconds(), what="risk backtest")
    except publish.WarehouseBusy as exc:
        print(f"risk backtest: {exc}", file=sys.stderr)
        return 1
    try:
        return _backtest_locked(args, warehouse)
    finally:
        publish.release(warehouse)


def _backtest_locked(args: argparse.Namespace, warehouse: Path) -> int:
    from dagster import AssetKey, AssetSelection, DagsterInstance

    from assets.core.dbt_project import prepare_dbt_project
    from assets.core.publish import build_path

    prepare_dbt_project()
    from orchestration.definitions import defs

    print(f"risk backtest: warehouse {build_path(warehouse)}", flush=True)
    job = defs.resolve_job_def("model_backtest")
    selection = None
    if args.no_refit:
        from assets.backtest_assets import BACKTEST_MARTS

        selection = AssetSelection.assets(*(AssetKey(["marts", m]) for m in BACKTEST_MARTS))
    with DagsterInstance.get() as instance:
        result = job.execute_in_process(
            instance=instance,
            raise_on_error=False,
            run_config={"resources": {"warehouse": _warehouse_config(
                warehouse, settings.landing_dir(), settings.as_of_date()
            )}},
            asset_selection=list(selection.resolve(defs.resolve_asset_graph()))
            if selection is not None else None,
            tags=_run_tags("risk backtest"),
        )
    if not result.success:
        print(f"risk backtest FAILED (run {result.run_id}): see the run log", file=sys.stderr)
        return 1
    _print_backtest(build_path(warehouse))
    meta = next((e.materialization.metadata for e in result.get_asset_materialization_events()
                 if e.asset_key == AssetKey(["marts", "backtest_runs"])), {})
    if meta.get("published") and meta["published"].value:
        print(f"\n published to {warehouse}: analysts see the results now.")
    elif "not_published_because" in meta:
        print(f"\n {meta['not_published_because'].value}: the results are published with the "
              "next `risk refresh`.")
    return 0


def _print_backtest(warehouse: Path) -> None:
    """The runs just written, as a table a person can read."""
    import duckdb

    cols = ["auc_6m", "auc_6m_list_order", "ks_6m", "auc_12m", "recall_6m", "precision_red_6m",
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
    refresh = sub.add_parser(
        "refresh",
        help="run nightly_refresh end to end (honours RISK_LANDING_DIR, RISK_AS_OF, "
        "RISK_WAREHOUSE)",
    )
    refresh.add_argument(
        "--verbose", action="store_true", help="also print mart row counts and step timings"
    )
    refresh.add_argument(
        "--full", action="store_true",
        help="rebuild even when no landing file, as-of date or code changed since the publish",
    )
    refresh.set_defaults(func=_refresh)
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


# Exit codes: 0 success; 1 a step or blocking check failed, or another refresh holds the
# warehouse; 2 a RISK_* setting is unusable (one line naming it, nothing runs).

if __name__ == "__main__":
    sys.exit(main())
