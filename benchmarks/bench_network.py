"""Benchmark the guarantee-network step (issue 13): the dbt models of
`models/intermediate/network/` and `models/marts/network/` (open guarantees per month end,
guarantees given, cycle edges, circles as strongly connected components, the network
features int_enterprise_month__network with the other firms on red, guarantee_exposure,
guarantee_circles). Prints seconds, rows and peak memory, and each model's dbt time from
run_results.json. dbt runs with the catalog's vars, as the Dagster step does.

    python benchmarks/bench_network.py --enterprises 100000 [--keep DIR] [--as-of 2026-10-31]

Generates a synthetic landing directory (parquet, --seed, default 7) unless DIR already holds one,
loads it with the project's ingestion, builds what the network step reads (the loan
performance marts and the new staging views) and then times the network step alone. Each
phase runs in its own process (dbt runs as a subprocess), so its peak RSS is its own.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

NETWORK = ("path:models/intermediate/network", "path:models/marts/network")
UPSTREAM = (
    "+fct_loan_month_end",
    # the facts of the hard red triggers read for the other firm "on red"
    "+int_enterprise_month__loans",
    "+int_enterprise_month__registry_events",
    "+int_enterprise_month__fund_use",
    "stg_core_banking__guarantees",
    "stg_registry__enterprise_links",
    "stg_registry__enterprises",
    # the feature marts the other firm's PD is scored on (fct_enterprise_month_end_network_pd)
    "+fct_enterprise_month_end_trends",
)


def _phase(name: str, code: str) -> None:
    """Run `code` in a fresh interpreter; print its wall time and peak RSS."""
    t = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", "import resource, sys\n" + code + _PEAK],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    if proc.returncode != 0:
        raise SystemExit(f"{name} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    peak = proc.stdout.strip().splitlines()[-1]
    print(f"{name:<22} {time.perf_counter() - t:8.1f} s   peak {peak}")


_PEAK = (
    "\nself = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss"
    "\nkids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss"
    "\nprint(f'{max(self, kids) / 1024:.0f} MiB')\n"
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--enterprises", type=int, default=100_000)
    ap.add_argument("--keep", type=Path, help="work directory kept afterwards (reused)")
    ap.add_argument("--as-of", default="2026-10-31")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--champion-from", type=Path,
                    help="a warehouse whose champion PD scorecard is copied in first, so the "
                         "other firms' PDs are scored (fct_enterprise_month_end_network_pd)")
    args = ap.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="bench_network_"))
    work.mkdir(parents=True, exist_ok=True)
    landing, warehouse = work / "landing", work / "warehouse.duckdb"
    target = work / "target"
    print(f"{args.enterprises:,} enterprises, as of {args.as_of}, in {work}")
    try:
        if not (landing / "enterprises").exists():
            _phase(
                "generate",
                "from pathlib import Path\nfrom synthetic.generator import generate\n"
                f"generate(Path({str(landing)!r}), n_enterprises={args.enterprises}, "
                f"seed={args.seed}, fmt='parquet')",
            )
        if not warehouse.exists():
            _phase(
                "ingest",
                "import os\nos.environ.setdefault('RISK_PSEUDONYM_KEY', 'bench')\n"
                "from pathlib import Path\nfrom assets.ingestion import ingest_all\n"
                f"ingest_all(Path({str(warehouse)!r}), Path({str(landing)!r}))",
            )
            _phase("dbt upstream", _dbt_code(warehouse, target, args.as_of, UPSTREAM))
        if args.champion_from:
            _copy_champion(args.champion_from, warehouse)
        _phase("network step (dbt)", _dbt_code(warehouse, target, args.as_of, NETWORK))
        results = json.loads((target / "run_results.json").read_text())["results"]
        for r in results:
            print(f"  {r['unique_id'].split('.')[-1]:<38} {r['execution_time']:8.1f} s")
        import duckdb

        with duckdb.connect(str(warehouse), read_only=True) as con:
            for table in (
                "raw.guarantees",
                "intermediate.int_network__guarantees_open",
                "intermediate.int_network__guarantee_cycle_edges",
                "intermediate.int_network__guarantee_circles",
                "intermediate.int_network__guarantees_given",
                "intermediate.int_enterprise_month__network",
                "marts.guarantee_exposure",
                "marts.guarantee_circles",
                "marts.fct_enterprise_month_end_network_pd",
            ):
                n = con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
                print(f"  {table:<50} {n:>12,} rows")
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


def _copy_champion(source: Path, warehouse: Path) -> None:
    """Replace the warehouse's PD scorecard tables by the source's (its champion scores)."""
    import duckdb

    with duckdb.connect(str(warehouse)) as con:
        con.execute(f"ATTACH {str(source)!r} AS src (READ_ONLY)")
        con.execute("CREATE SCHEMA IF NOT EXISTS marts")
        for table in ("pd_scorecard_models", "pd_scorecard_bins"):
            con.execute(f"CREATE OR REPLACE TABLE marts.{table} AS "
                        f"SELECT * FROM src.marts.{table}")
        version = con.execute("SELECT model_version, features FROM marts.pd_scorecard_models "
                              "WHERE status = 'champion'").fetchall()
    print(f"champion copied from {source}: {version}")


def _dbt_code(warehouse: Path, target: Path, as_of: str, select: tuple[str, ...]) -> str:
    """dbt as the Dagster step runs it: with the catalog's vars (red hard triggers, the red
    PD cut-off) and the champion stored in the warehouse before the step."""
    return (
        "from pathlib import Path\nfrom assets.core.dbt_project import run_dbt\n"
        "from assets.signals.catalog import load_catalog\n"
        "from assets.dbt_assets import decision_vars, store_champion_for_dbt\n"
        f"store_champion_for_dbt(Path({str(warehouse)!r}))\n"
        f"run_dbt(['run', '--select', *{list(select)!r}], warehouse=Path({str(warehouse)!r}), "
        f"dbt_vars={{'as_of_date': {as_of!r}, **decision_vars(load_catalog())}}, "
        f"target_path=Path({str(target)!r}))"
    )


if __name__ == "__main__":
    main()
