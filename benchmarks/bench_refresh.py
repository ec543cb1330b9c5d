"""Benchmark `risk refresh` end to end on generated data and print what the bank would check.

    python benchmarks/bench_refresh.py --enterprises 10000 [--as-of 2026-10-31] [--keep DIR]

Prints per-stage wall time (ingestion, dbt, early warning, exports), peak RSS of the refresh
(dbt included), and the portfolio's NPL ratio and default count so figures can be sanity-
checked against the generator's ground truth.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--enterprises", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--format", choices=("csv", "parquet"), default="parquet")
    ap.add_argument("--as-of", default="2026-10-31")
    ap.add_argument("--keep", help="work directory to keep (default: temp, removed)")
    args = ap.parse_args()
    work = Path(args.keep or tempfile.mkdtemp(prefix="bench_refresh_"))
    landing = work / "landing"
    try:
        if not landing.exists():
            subprocess.run(
                [
                    BIN / "risk",
                    "generate",
                    "--enterprises",
                    str(args.enterprises),
                    "--seed",
                    str(args.seed),
                    "--out",
                    str(landing),
                    "--format",
                    args.format,
                ],
                check=True,
                stdout=subprocess.DEVNULL,
            )
        env = {
            **os.environ,
            "RISK_LANDING_DIR": str(landing),
            "RISK_AS_OF": args.as_of,
            "RISK_WAREHOUSE": str(work / "warehouse.duckdb"),
            "RISK_EXPORTS_DIR": str(work / "exports"),
            "DAGSTER_HOME": str(work / "dagster_home"),
        }
        started = time.perf_counter()
        proc = subprocess.run(
            [BIN / "risk", "refresh"], env=env, capture_output=True, text=True, cwd=ROOT
        )
        total = time.perf_counter() - started
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        if proc.returncode != 0:
            print(proc.stdout[-3000:], proc.stderr[-3000:])
            raise SystemExit(f"risk refresh failed ({proc.returncode})")
        step_table = proc.stdout.split("\n step ", 1)[-1]  # the step-timing table only
        steps = {m[0]: float(m[1]) for m in re.findall(r"^ (\S+)\s+([0-9.]+)$", step_table, re.M)}
        stages = {"ingestion": 0.0, "dbt": 0.0, "early warning + screening": 0.0, "exports": 0.0}
        for step, seconds in steps.items():
            if step.startswith("raw__"):
                stages["ingestion"] += seconds
            elif step == "risk_dbt_models":
                stages["dbt"] += seconds
            elif step.startswith("exports__"):
                stages["exports"] += seconds
            else:
                stages["early warning + screening"] += seconds
        print(
            f"refresh of {args.enterprises:,} enterprises as of {args.as_of}: {total:.1f} s "
            f"wall, peak RSS {peak:,.0f} MiB (largest process)"
        )
        for stage, seconds in stages.items():
            print(f"  {stage:<28} {seconds:8.1f} s")
        _print_portfolio(work / "warehouse.duckdb", args.as_of)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


def _print_portfolio(warehouse: Path, as_of: str) -> None:
    import duckdb

    with duckdb.connect(str(warehouse), read_only=True) as con:
        me, out, npl, loans = con.execute(
            """SELECT month_end, sum(outstanding_principal), sum(npl_principal), sum(loans)
               FROM marts.portfolio_monthly
               WHERE month_end = (SELECT max(month_end) FROM marts.portfolio_monthly)
               GROUP BY month_end"""
        ).fetchone()
        defaults_12m = con.execute(
            "SELECT sum(default_count) FROM marts.portfolio_monthly "
            "WHERE month_end > ?::DATE - INTERVAL 12 MONTH",
            [as_of],
        ).fetchone()[0]
        defaulted = con.execute(
            "SELECT count(DISTINCT loan_id) FROM marts.fct_loan_month_end WHERE is_default"
        ).fetchone()[0]
        all_loans = con.execute("SELECT count(*) FROM raw.loans").fetchone()[0]
        tiers = dict(
            con.execute("SELECT tier, count(*) FROM marts.watchlist GROUP BY 1").fetchall()
        )
        monitored = con.execute("SELECT count(*) FROM marts.enterprise_risk_profile").fetchone()[0]
        decisions = dict(
            con.execute(
                "SELECT decision, count(*) FROM marts.application_screening GROUP BY 1"
            ).fetchall()
        )
    print(
        f"  portfolio at {me}: {loans:,} loans, outstanding {out:,.2f} CNY, NPL {npl:,.2f} "
        f"CNY, NPL ratio {npl / out:.2%}"
    )
    print(
        f"  defaults: {defaults_12m:,} loans defaulted in the last 12 months; {defaulted:,} of "
        f"{all_loans:,} loans ever defaulted"
    )
    print(f"  watchlist: {tiers} of {monitored:,} monitored enterprises; screening {decisions}")


if __name__ == "__main__":
    main()
