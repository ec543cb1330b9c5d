"""Benchmark the PD scorecard on a warehouse copy: fit, scoring every firm-month, memory, AUC/KS.

python benchmarks/bench_scorecard.py --warehouse data/warehouse.duckdb [--fit-date 2026-10-31]
    [--copy /tmp/bench.duckdb] [--repeat 3]

Works on a copy (the original is never opened read-write). The copy needs
marts.fct_enterprise_month_end_trends (dbt build --select fct_enterprise_month_end_trends).
Prints the fit time (SQL sample + optbinning + evaluation), the time to score all firm-months
of the feature marts in SQL (materialised into a temp table, feature_points included), peak
resident memory of this process (DuckDB runs in-process) and the model card figures.
"""

import argparse
import resource
import shutil
import tempfile
import time
from datetime import date
from pathlib import Path

import duckdb

from assets.core.sql import date_literal
from assets.scorecard import features_relation_sql, load_spec, score_sql
from assets.scorecard.fit import fit_scorecard, load_model, model_card, promote


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warehouse", type=Path, required=True)
    parser.add_argument("--fit-date", type=date.fromisoformat, default=None,
                        help="default: the warehouse's last month end")
    parser.add_argument("--copy", type=Path, default=None, help="where to copy the warehouse")
    parser.add_argument("--repeat", type=int, default=2, help="scoring runs (best is shown)")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        copy = args.copy or Path(tmp) / "bench_scorecard.duckdb"
        shutil.copy(args.warehouse, copy)
        con = duckdb.connect(str(copy))
        fit_date = args.fit_date or con.execute(
            "select max(month_end) from marts.fct_enterprise_month_end").fetchall()[0][0]
        spec = load_spec()

        started = time.perf_counter()
        version = fit_scorecard(con, fit_date, spec)
        fit_seconds = time.perf_counter() - started
        decision = promote(con, version, spec)
        card = model_card(con, version)
        m = card["model"]
        print(f"fit as of {fit_date}: {version} ({m['status']}) in {fit_seconds:.1f}s; "
              f"peak memory so far {_peak_mb():.0f} MB")
        if m["status"] == "cold_start":
            print(m["notes"])
            return 0
        print(f"  training {m['train_start']} .. {m['train_end']}: {m['n_train']} firm-months, "
              f"{m['n_train_defaults']} defaults; OOT {m['oot_start']} .. {m['oot_end']}: "
              f"{m['n_oot']} firm-months, {m['n_oot_defaults']} defaults")
        print(f"  AUC train {m['auc_train']:.4f}  KS train {m['ks_train']:.4f}  "
              f"AUC OOT {m['auc_oot']:.4f}  KS OOT {m['ks_oot']:.4f}")
        psi = {item: p for item, kind, p in card["psi"]}
        print(f"  PSI score {psi.get('score', float('nan')):.4f}; promotion: {decision.reason}")
        print(f"  features ({len(m['features'])}):")
        for f, n, lo, hi, _range, coef, p in card["features"]:
            print(f"    {f:<42} {n} bins  points {lo:7.1f} .. {hi:7.1f}  coef {coef:+.3f}  "
                  f"PSI {p if p is None else round(p, 3)}")

        model = load_model(con, version)
        n_rows = con.execute(
            "select count(*) from marts.fct_enterprise_month_end").fetchall()[0][0]
        best = float("inf")
        for _ in range(max(args.repeat, 1)):
            started = time.perf_counter()
            con.execute(f"create or replace temp table bench_scores as "
                        f"{score_sql(con, version, features_relation_sql(), model.feature_specs)}")
            best = min(best, time.perf_counter() - started)
        scored = con.execute("select count(*), avg(pd) from bench_scores").fetchall()[0]
        print(f"scoring all firm-months: {scored[0]} of {n_rows} rows in {best:.2f}s "
              f"({scored[0] / best / 1e6:.2f} M rows/s), mean PD {scored[1]:.4f}")
        latest = con.execute("select max(month_end) from marts.fct_enterprise_month_end"
                             ).fetchall()[0][0]
        started = time.perf_counter()
        con.execute(
            "create or replace temp table bench_latest as "
            + score_sql(con, version, features_relation_sql(f"month_end = {date_literal(latest)}"),
                        model.feature_specs)
        )
        print(f"scoring the latest month end ({latest}): "
              f"{time.perf_counter() - started:.2f}s")
        print(f"peak memory {_peak_mb():.0f} MB")
        con.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
