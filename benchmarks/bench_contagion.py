"""Risk that travels (issue 13): what the network signals add on a book with contagion.

    python benchmarks/bench_contagion.py --enterprises 20000 --seed 13 --months 48 \
        --dir /tmp/issue13/contagion [--reuse]

Generates a landing directory with the generator's default `NetworkConfig` (guarantee
circles, chains, funds, related groups and contagion in the truth), runs `risk refresh` and
`risk backtest` on it (the champion PD scorecard is fitted by the back-test), then on a copy
of the warehouse decides every month end of the back-test window with three catalogs:

- `with network`: the catalog as committed: its network signals fire and give reasons, and
  its network hard triggers (network_guaranteed_party_in_default: amber) list a firm under
  the PD engine too;
- `network, no trigger`: the same without the network hard triggers (signals and reasons);
- `without network`: the catalog minus every `network_*` signal.

Each under both engines (the champion PD scorecard, and the expert catalog as in cold start),
plus `pd+net`: a scorecard refitted on the champion's fit date with the network features added
to its candidates (NETWORK_FEATURES; scorecard.yml itself is not changed), with the catalog as
committed.
Prints each network signal's lift and hit count from the back-test (marts.backtest_signals),
and how many contagion defaults of the truth (`contagion.parquet`; a developer tool, never
read by the pipeline) the watchlist listed at a month end in the 12 months before their
default day (and, of those, after the source firm's default: listed for the right reason).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from assets.backtest_assets import backtest  # noqa: E402
from assets.core.sql import date_literal  # noqa: E402
from assets.signals.catalog import load_catalog, parse_catalog  # noqa: E402
from assets.signals.decisions import (  # noqa: E402
    Engine,
    build_decision_history,
    current_engine,
)
from synthetic.generator import generate  # noqa: E402
from synthetic.network import NetworkConfig  # noqa: E402

#: Candidate scorecard features of the `pd+net` variant (columns of fct_enterprise_month_end).
NETWORK_FEATURES = (
    "guarantees_given_to_revenue_12m", "guaranteed_parties_in_default",
    "guaranteed_parties_past_due", "own_guarantors_in_default", "circle_members_in_default",
    "related_parties_in_default", "related_parties_past_due",
)  # the *_on_red features are never candidates (scorecard spec: NETWORK_ON_RED)


def _network_scorecard(con: duckdb.DuckDBPyConnection, champion: Engine) -> Engine | None:
    """A challenger fitted like the champion with the network features among its candidates."""
    import yaml

    from assets.scorecard.fit import fit_scorecard, load_model
    from assets.scorecard.spec import SPEC_PATH, parse_spec

    data = yaml.safe_load(SPEC_PATH.read_text(encoding="utf-8"))
    data["features"] = [*data["features"],
                        *({"name": f, "mart": "enterprise"} for f in NETWORK_FEATURES)]
    (fit_date,) = con.execute(
        "select fit_date from marts.pd_scorecard_models where model_version = ?",
        [champion.model_version]).fetchone()
    version = fit_scorecard(con, fit_date, parse_spec(data, "scorecard + network"))
    model = load_model(con, version)
    if model is None:
        print(f"pd+net: no model ({version})")
        return None
    chosen = [f.name for f in model.feature_specs]
    print(f"pd+net: {version}, features chosen: {', '.join(chosen)}")
    return Engine(model_version=model.model_version, features=tuple(model.feature_specs))


def _risk(args: list[str], env: dict[str, str]) -> float:
    t = time.perf_counter()
    proc = subprocess.run([str(ROOT / ".venv/bin/risk"), *args], env=env, cwd=ROOT,
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"risk {args[0]} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return time.perf_counter() - t


def _variants() -> dict[str, object]:
    import yaml

    from assets.signals.catalog import CATALOG_PATH

    data = yaml.safe_load(CATALOG_PATH.read_text(encoding="utf-8"))
    without = dict(data)
    without["signals"] = [s for s in data["signals"] if not s["id"].startswith("network_")]
    without["hard_triggers"] = {k: v for k, v in data["hard_triggers"].items()
                                if not k.startswith("network_")}
    no_trigger = dict(data)
    no_trigger["hard_triggers"] = {k: v for k, v in data["hard_triggers"].items()
                                   if not k.startswith("network_")}
    return {
        "with network": load_catalog(),
        "network, no trigger": parse_catalog(no_trigger, "network, no trigger"),
        "without network": parse_catalog(without, "without network"),
    }


def _contagion_listed(con: duckdb.DuckDBPyConnection, decisions: str, truth: Path,
                      start, end) -> tuple[int, int, int, float | None]:
    """(contagion firms defaulting in [start + 1 day, end + 12 months], listed in the 12 months
    before default, listed after the source's default and before their own, median months
    from the first listing to the default)."""
    row = con.execute(f"""
        with c as (
            select enterprise_id, min(source_enterprise_id) as source_id
            from '{truth / "contagion.parquet"}' group by enterprise_id
        ),
        d as (
            select enterprise_id, min(default_date) as default_date
            from marts.fct_loan_defaults group by 1
        ),
        cd as (
            select c.enterprise_id, d.default_date, sd.default_date as source_default
            from c join d using (enterprise_id)
            left join d as sd on sd.enterprise_id = c.source_id
            where d.default_date > {date_literal(start)}
              and d.default_date <= {date_literal(end)} + interval 12 month
        ),
        hit as (
            select cd.enterprise_id,
                   bool_or(h.listed) as listed,
                   bool_or(h.listed and h.month_end >= cd.source_default) as listed_after_source,
                   date_diff('month', min(h.month_end) filter (where h.listed),
                             any_value(cd.default_date)) as lead_months
            from cd join {decisions} as h
              on h.enterprise_id = cd.enterprise_id
             and h.month_end < cd.default_date
             and h.month_end >= cd.default_date - interval 12 month
            group by 1
        )
        select count(*), count(*) filter (where hit.listed),
               count(*) filter (where hit.listed_after_source), median(hit.lead_months)
        from cd left join hit using (enterprise_id)
    """).fetchone()
    return int(row[0]), int(row[1] or 0), int(row[2] or 0), row[3]


def _print_network_signals(con: duckdb.DuckDBPyConnection, truth: Path, run_id: str) -> None:
    """The network signals of a back-test run: lift, precision and population firm-months
    fired (marts.backtest_signals), and the population firms it fired on / of them defaulting
    within 12 months of a hit (marts.backtest_scores of the run)."""
    run = con.execute("select window_start, window_end, model_version, auc_12m "
                      "from marts.backtest_runs where run_id = ?", [run_id]).fetchone()
    print(f"back-test {run_id}: {run[0]}..{run[1]}, engine {run[2]}, auc_12m {run[3]:.3f}")
    n_truth = con.execute(
        f"select count(*), count(*) filter (where channel = 'guarantee_circle') "
        f"from '{truth / 'contagion.parquet'}'").fetchone()
    print(f"truth: {n_truth[0]} contagion firms ({n_truth[1]} in circles)")
    rows = con.execute(f"""
        with firms as (
            select h.signal_id, count(distinct h.enterprise_id) as firms,
                   count(distinct h.enterprise_id) filter (where b.default_within_12m)
                       as defaulted
            from ({_window_hits_sql(run[0], run[1])}) as h
            join marts.backtest_scores as b
              on b.enterprise_id = h.enterprise_id and b.month_end = h.month_end
             and b.run_id = ?
            group by 1
        )
        select s.signal_id, s.lift, s.precision_12m, s.fired_firm_months,
               coalesce(f.firms, 0), coalesce(f.defaulted, 0)
        from marts.backtest_signals as s left join firms as f using (signal_id)
        where s.run_id = ? and s.signal_id like 'network_%'
        order by s.signal_id""", [run_id, run_id]).fetchall()
    print(f"  {'signal':<40} {'lift':>7} {'prec_12m':>9} {'fired':>7} {'firms':>6} "
          f"{'dflt12m':>7}")
    for sid, lift, prec, fired, firms, dflt in rows:
        print(f"  {sid:<40} {lift or 0:>7.2f} {prec or 0:>9.3f} {fired or 0:>7} {firms:>6} "
              f"{dflt:>7}")


def _window_hits_sql(start, end) -> str:
    """(enterprise_id, month_end, signal_id) of the network signals at the window's month
    ends: the catalog's own predicates over the feature mart (no network signal reads a
    change column)."""
    from assets.signals.catalog import signal_predicate_sql

    return "\nunion all\n".join(
        f"select f.enterprise_id, f.month_end, {s.id!r} as signal_id "
        f"from (select f0.*, npd.* exclude (enterprise_id, month_end) "
        f"from marts.fct_enterprise_month_end as f0 "
        f"left join marts.fct_enterprise_month_end_network_pd as npd "
        f"on npd.enterprise_id = f0.enterprise_id and npd.month_end = f0.month_end) as f "
        f"where f.month_end between {date_literal(start)} and {date_literal(end)} "
        f"and {signal_predicate_sql(s, 'f')}"
        for s in load_catalog().signals if s.id.startswith("network_")
    )


def _pd_route(args: argparse.Namespace, wh: Path, truth: Path) -> int:
    """Another firm on red by its PD: build fct_enterprise_month_end_network_pd on a copy of
    the warehouse with the champion stored by `risk backtest` (the model in use the next
    night), then back-test the catalog with and without the three *_red_by_pd signals."""
    import yaml

    from assets.core.dbt_project import run_dbt
    from assets.dbt_assets import decision_vars, store_champion_for_dbt
    from assets.signals.catalog import CATALOG_PATH

    build = wh.with_name(f"{wh.stem}.build.duckdb")
    work = args.dir / "work_pd.duckdb"
    shutil.copy(build if build.exists() else wh, work)
    t = time.perf_counter()
    store_champion_for_dbt(work)
    run_dbt(["run", "--select", "fct_enterprise_month_end_network_pd"], warehouse=work,
            dbt_vars=decision_vars(load_catalog()),
            target_path=args.dir / "target_pd")
    print(f"network PD mart (dbt run): {time.perf_counter() - t:.1f} s")
    data = yaml.safe_load(CATALOG_PATH.read_text(encoding="utf-8"))
    no_pd = dict(data)
    no_pd["signals"] = [s for s in data["signals"] if not s["id"].endswith("_red_by_pd")]
    variants = {"with PD route": load_catalog(),
                "no PD route": parse_catalog(no_pd, "no PD route")}
    con = duckdb.connect(str(work))
    row = con.execute(
        "select count(*), sum(guaranteed_parties_red_by_pd), sum(own_guarantors_red_by_pd), "
        "sum(related_parties_red_by_pd), any_value(pd_model_version) "
        "from marts.fct_enterprise_month_end_network_pd").fetchone()
    print(f"network PD mart: {row[0]} firm-months; parties red by PD: guaranteed {row[1]}, "
          f"own guarantors {row[2]}, related {row[3]}; model {row[4]}")
    champion = current_engine(con)
    engines = {"pd": champion} if champion.model_version else {}
    engines["expert"] = Engine(note="bench")
    print(f"\n{'catalog':<15} {'engine':<7} {'window':<23} {'auc_12m':>8} {'recall_6m':>9} "
          f"{'recall_fm':>9} {'perf_listed':>11} {'contagion':>9} {'listed<=12m':>11} "
          f"{'after_src':>9} {'lead_med':>8}")
    signals: dict[str, str] = {}
    for cname, cat in variants.items():
        for ename, engine in engines.items():
            t = time.perf_counter()
            run = backtest(con, cat, engine=engine, window_months=args.window_months,
                           out_of_time=False)[-1]
            start, end = run["window_start"], run["window_end"]
            decisions = build_decision_history(con, cat, engine, start=start, end=end)
            n, listed, after, lead = _contagion_listed(con, decisions, truth, start, end)
            print(f"{cname:<15} {ename:<7} {start}..{end} {run['auc_12m'] or 0:>8.3f} "
                  f"{run['recall_6m'] or 0:>9.3f} {run['recall_firm'] or 0:>9.3f} "
                  f"{run['performing_listed_share'] or 0:>11.3f} {n:>9} {listed:>11} "
                  f"{after:>9} {lead if lead is not None else '-':>8}  "
                  f"({time.perf_counter() - t:.0f} s)")
            if cname == "with PD route":  # backtest_scores holds the latest run only
                out = io.StringIO()
                with contextlib.redirect_stdout(out):
                    _print_network_signals(con, truth, run["run_id"])
                signals[ename] = out.getvalue()
    for ename, text in signals.items():
        print(f"\nnetwork signals, with PD route, {ename} engine:\n{text}")
    con.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--enterprises", type=int, default=20_000)
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--months", type=int, default=48)
    ap.add_argument("--end-month", default="2026-10")
    ap.add_argument("--dir", type=Path, default=Path("/tmp/issue13/contagion"))
    ap.add_argument("--reuse", action="store_true", help="keep a warehouse already built")
    ap.add_argument("--window-months", type=int, default=24)
    ap.add_argument("--circles", type=float, default=None,
                    help="NetworkConfig.circles (default: the generator's)")
    ap.add_argument("--contagion-scale", type=float, default=1.0,
                    help="multiply the three contagion shares (capped at 1)")
    ap.add_argument("--lifts-only", action="store_true",
                    help="after refresh and back-test, back-test the committed catalog once "
                         "(champion, --window-months) and print the network signals' figures "
                         "(no variants)")
    ap.add_argument("--pd-route", action="store_true",
                    help="after refresh and back-test, build the network PD mart with the "
                         "champion (as the next night would) and compare the committed catalog "
                         "with and without the *_red_by_pd signals, under both engines")
    args = ap.parse_args(argv)

    landing, wh = args.dir / "landing", args.dir / "warehouse.duckdb"
    truth = args.dir / "landing_truth"
    env = {**os.environ, "RISK_LANDING_DIR": str(landing), "RISK_WAREHOUSE": str(wh),
           "RISK_AS_OF": f"{args.end_month}-28", "DAGSTER_HOME": str(args.dir / "dagster")}
    (args.dir / "dagster").mkdir(parents=True, exist_ok=True)
    if not (args.reuse and wh.exists()):
        t = time.perf_counter()
        base = NetworkConfig()
        cfg = NetworkConfig(
            circles=base.circles if args.circles is None else args.circles,
            contagion_circle=min(1.0, base.contagion_circle * args.contagion_scale),
            contagion_guarantor=min(1.0, base.contagion_guarantor * args.contagion_scale),
            contagion_related=min(1.0, base.contagion_related * args.contagion_scale),
        )
        generate(landing, args.enterprises, args.seed, "parquet", end_month=args.end_month,
                 months=args.months, network_config=cfg)
        print(f"generate {args.enterprises} firms, {args.months} months, seed {args.seed}, "
              f"{cfg}: {time.perf_counter() - t:.0f} s")
        print(f"risk refresh: {_risk(['refresh'], env):.0f} s")
        print(f"risk backtest: {_risk(['backtest'], env):.0f} s")

    if args.pd_route:
        return _pd_route(args, wh, truth)

    if args.lifts_only:
        # one back-test of the committed catalog under the champion, on a copy of the build
        # file (`risk backtest` leaves the scorecard and its marts there)
        build = wh.with_name(f"{wh.stem}.build.duckdb")
        work = args.dir / "work_lifts.duckdb"
        shutil.copy(build if build.exists() else wh, work)
        with duckdb.connect(str(work)) as con:
            champion = current_engine(con)
            t = time.perf_counter()
            runs = backtest(con, load_catalog(), engine=champion,
                            window_months=args.window_months, out_of_time=False)
            print(f"back-test of {args.window_months} month ends: "
                  f"{time.perf_counter() - t:.0f} s")
            _print_network_signals(con, truth, runs[-1]["run_id"])
        return 0

    work = args.dir / "work.duckdb"
    shutil.copy(wh, work)
    con = duckdb.connect(str(work))
    n_truth = con.execute(
        f"select count(*), count(*) filter (where channel = 'guarantee_circle'), "
        f"count(*) filter (where channel = 'guarantee'), "
        f"count(*) filter (where channel = 'related_party') "
        f"from '{truth / 'contagion.parquet'}'").fetchone()
    print(f"truth: {n_truth[0]} contagion firms (circle {n_truth[1]}, guarantee {n_truth[2]}, "
          f"related {n_truth[3]})")
    champion = current_engine(con)
    engines = {"pd": champion} if champion.model_version else {}
    engines["expert"] = Engine(note="bench")
    if champion.model_version:
        net = _network_scorecard(con, champion)
        if net is not None:
            engines["pd+net"] = net
    print(f"engines: {', '.join(f'{k} = {e.name}' for k, e in engines.items())}")

    lifts: dict[str, list] = {}
    print(f"\n{'catalog':<20} {'engine':<7} {'window':<23} {'auc_12m':>8} {'recall_6m':>9} "
          f"{'perf_listed':>11} {'contagion':>9} {'listed<=12m':>11} {'after_src':>9} "
          f"{'lead_med':>8}")
    for cname, cat in _variants().items():
        for ename, engine in engines.items():
            if ename == "pd+net" and cname != "with network":
                continue
            runs = backtest(con, cat, engine=engine, window_months=args.window_months,
                            out_of_time=False)
            run = runs[-1]
            start, end = run["window_start"], run["window_end"]
            decisions = build_decision_history(con, cat, engine, start=start, end=end)
            n, listed, after, lead = _contagion_listed(con, decisions, truth, start, end)
            print(f"{cname:<20} {ename:<7} {start}..{end} {run['auc_12m'] or 0:>8.3f} "
                  f"{run['recall_6m'] or 0:>9.3f} {run['performing_listed_share'] or 0:>11.3f} "
                  f"{n:>9} {listed:>11} {after:>9} {lead if lead is not None else '-':>8}")
            if cname == "with network":
                lifts[ename] = con.execute(
                    "select signal_id, hit_rate_defaulters, lift, precision_12m, "
                    "fired_firm_months "
                    "from marts.backtest_signals where run_id = ? and signal_id like 'network_%' "
                    "order by signal_id", [run["run_id"]]).fetchall()
    for ename, rows in lifts.items():
        print(f"\nnetwork signals, back-test ({ename} engine run):")
        print(f"  {'signal':<40} {'hit_dflt':>9} {'lift':>7} {'prec_12m':>9} {'fired':>7}")
        for sid, rate, lift, prec, hits in rows:
            print(f"  {sid:<40} {rate or 0:>9.4f} {lift or 0:>7.2f} {prec or 0:>9.3f} "
                  f"{hits or 0:>7}")
    con.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
