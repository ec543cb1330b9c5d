"""Benchmark the nightly refresh at bank scale (issue 10). Prints figures; times nothing in CI.

    python benchmarks/bench_nightly.py --enterprises 100000 --seed 31337 --work /tmp/nightly
    python benchmarks/bench_nightly.py --landing /tmp/issue10/landing --work /tmp/nightly

Steps, each in its own process (wall time and that process's peak RSS, from wait4):
1. a bare DuckDB bulk load of the same landing files (CREATE TABLE AS read_parquet/read_csv);
2. `risk refresh` from empty (a fresh warehouse and DAGSTER_HOME), with its step timings;
3. a nothing-new night: `risk refresh` again, same as-of date (assets/refresh_plan.py);
4. incremental nights (--nights, default 2): one new day of repayments, fund flows and
   registry events (the landing's last day of each, re-dated to D + n with new ids, as new
   files), then `risk refresh` as of D + n (the month-end facts recompute nothing or from the
   earliest month end those rows touch). The first night after a full refresh also scores
   the network PD facts with the champion that refresh fitted (it had none when its dbt step
   ran) and re-decides the window on them; the second is a steady night;
5. with --full-night: `risk refresh --full` over the existing build file.
With --night-only WAREHOUSE, only step 4 on an existing published warehouse (its build file
beside it and DAGSTER_HOME given by --dagster-home), as of --as-of.
Prints the ratio full refresh / bare load, the publish step's time and, for the incremental
night, the facts' recompute plan and which tables the publish wrote, appended to or patched.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent

BARE_LOAD = """
import sys, duckdb
from pathlib import Path
from assets.contract import LOAD_ORDER
landing, warehouse = Path(sys.argv[1]), sys.argv[2]
with duckdb.connect(warehouse) as con:
    for table in LOAD_ORDER:
        for suffix, reader in (("parquet", "read_parquet"), ("csv", "read_csv")):
            files = sorted((landing / table).glob(f"*.{suffix}"))
            if files:
                listing = "[" + ", ".join(f"'{f}'" for f in files) + "]"
                con.execute(f"CREATE TABLE {table} AS SELECT * FROM {reader}({listing})")
                break
"""


def measured(cmd: list[str], env: dict[str, str], log: Path) -> tuple[float, float, int, str]:
    """Run `cmd`; (seconds, peak RSS GiB of it and its children, exit code, output)."""
    started = time.perf_counter()
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    return seconds, usage.ru_maxrss / 2**20, proc.returncode, log.read_text(errors="replace")


def step_seconds(output: str) -> dict[str, float]:
    """The `--verbose` step table of `risk refresh`."""
    header = re.search(r"^ step\s+seconds$", output, re.MULTILINE)
    table = output[header.end():] if header else ""
    return {m.group(1): float(m.group(2))
            for m in re.finditer(r"^ (\S+)\s+([0-9.]+)$", table, re.MULTILINE)}


#: The daily tables of a bank's night: id column and date column.
DAILY = {"repayments": ("payment_id", "payment_date"), "fund_flows": ("flow_id", "txn_date"),
         "registry_events": ("event_id", "event_date")}


def deliver_next_day(landing: Path, day: str) -> dict[str, int]:
    """New landing files with one more day of the daily tables: the rows of each table's
    last day, dated `day`, with new ids. Returns rows per table."""
    import duckdb

    counts = {}
    with duckdb.connect() as con:
        for table, (id_col, date_col) in DAILY.items():
            # in the format the table's files have (a generated landing may be CSV); CSV is
            # read as text, so ids and codes keep their leading zeros
            fmt = "parquet" if any((landing / table).glob("*.parquet")) else "csv"
            src = (f"read_parquet('{landing}/{table}/*.parquet', union_by_name = true)"
                   if fmt == "parquet" else
                   f"read_csv('{landing}/{table}/*.csv', union_by_name = true, all_varchar = true)")
            day_value = f"DATE '{day}'" if fmt == "parquet" else f"'{day}'"
            dest = landing / table / f"day-{day}.{fmt}"
            options = "FORMAT parquet" if fmt == "parquet" else "FORMAT csv, HEADER true"
            con.execute(
                f"COPY (SELECT * REPLACE ({id_col} || '-{day}' AS {id_col}, "
                f"{day_value} AS {date_col}) FROM {src} WHERE CAST({date_col} AS DATE) = "
                f"(SELECT max(CAST({date_col} AS DATE)) FROM {src})) TO '{dest}' ({options})")
            counts[table] = con.execute(f"SELECT count(*) FROM '{dest}'").fetchone()[0]
    return counts


def incremental_night(
    landing: Path, run_env: dict[str, str], work: Path, as_of: str, night: int = 1
) -> float:
    """Step 4: deliver D + night and refresh as of it; prints and returns the seconds."""
    from datetime import date, timedelta

    day = str(date.fromisoformat(as_of) + timedelta(days=night))
    counts = deliver_next_day(landing, day)
    log = work / ("incremental.log" if night == 1 else f"incremental_{night}.log")
    s, gib, rc, out = measured([str(BIN / "risk"), "refresh", "--verbose"],
                               {**run_env, "RISK_AS_OF": day}, log)
    assert rc == 0, out[-3000:]
    rows = ", ".join(f"{t} {n:,}" for t, n in counts.items())
    print(f"{'incremental night (' + day + ')':<34} {s:>9.1f} {gib:>9.2f}   new rows: {rows}")
    steps = step_seconds(out)
    print_groups(steps, s)
    plan = re.search(r"month-end facts: (.*)$", out, re.MULTILINE)
    published = re.search(r"published \S+ \((.*)$", out, re.MULTILINE)
    if plan:
        print(f"  dbt plan: {plan.group(1)}")
    if published:  # what the publish did with each table (kept, appended, patched, written)
        print(f"  publish: {published.group(1)}")
    print("  night's steps (seconds, in the order they ran):")
    for name, took in steps.items():
        print(f"    {name:<62} {took:>7.1f}")
    return s


def print_groups(steps: dict[str, float], wall: float) -> None:
    """The step groups of one `risk refresh`, and everything else: the process's wall time
    minus those groups (steps run one after another in the in-process executor, so the
    rest is the other steps, run start-up and the time between steps)."""
    groups = {
        "ingestion (raw__*)": sum(v for k, v in steps.items() if k.startswith("raw__")),
        "dbt risk_dbt_models": steps.get("risk_dbt_models", 0.0),
        "dbt decision_dbt_models": steps.get("decision_dbt_models", 0.0),
        "publish": steps.get("exports__published_warehouse", 0.0),
    }
    groups["everything else (wall - above)"] = wall - sum(groups.values())
    for name, took in groups.items():
        print(f"  {name:<32} {took:>9.1f}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--landing", help="existing landing directory (else generated)")
    ap.add_argument("--enterprises", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=31337)
    ap.add_argument("--as-of", default="2026-11-27")
    ap.add_argument("--work", required=True, help="work directory (warehouse, logs)")
    ap.add_argument("--full-night", action="store_true", help="also time `risk refresh --full`")
    ap.add_argument("--nights", type=int, default=2, help=(
        "incremental nights after the full refresh (default 2: the first also scores the "
        "network PD facts with the champion the full refresh fitted, and re-decides the "
        "window on them; the second is a steady night, the one the ratio uses)"))
    ap.add_argument("--night-only", help=(
        "only incremental nights (--nights) on this published warehouse, as of --as-of + 1, "
        "+ 2, ..."))
    ap.add_argument("--dagster-home", help="DAGSTER_HOME of --night-only")
    args = ap.parse_args()
    if args.night_only:
        work = Path(args.work)
        work.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "PYTHONPATH": str(ROOT), "RISK_LANDING_DIR": str(args.landing),
               "RISK_WAREHOUSE": args.night_only, "DAGSTER_HOME": args.dagster_home,
               "RISK_EXPORTS_DIR": str(work / "exports")}
        for night in range(1, args.nights + 1):
            incremental_night(Path(args.landing), env, work, args.as_of, night)
        return
    work = Path(args.work)
    if work.exists():
        for sub in ("wh", "dagster_home", "exports", "bare.duckdb"):
            target = work / sub
            shutil.rmtree(target, ignore_errors=True) if target.is_dir() else target.unlink(
                missing_ok=True)
    work.mkdir(parents=True, exist_ok=True)
    landing = Path(args.landing) if args.landing else work / "landing"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    if not landing.exists():
        s, gib, rc, _ = measured(
            [str(BIN / "risk"), "generate", "--enterprises", str(args.enterprises), "--seed",
             str(args.seed), "--out", str(landing), "--format", "parquet"],
            env, work / "generate.log")
        print(f"generate {args.enterprises:,} enterprises: {s:.1f} s, peak {gib:.2f} GiB")
    files = [p for p in landing.rglob("*") if p.is_file()]
    mib = sum(p.stat().st_size for p in files) / 2**20
    print(f"landing {landing}: {len(files)} files, {mib:,.0f} MiB")

    bare_s, bare_gib, rc, out = measured(
        [sys.executable, "-c", BARE_LOAD, str(landing), str(work / "bare.duckdb")],
        env, work / "bare.log")
    assert rc == 0, out[-2000:]
    print(f"{'step':<34} {'seconds':>9} {'peak GiB':>9}")
    print(f"{'bare DuckDB load':<34} {bare_s:>9.1f} {bare_gib:>9.2f}")

    (work / "wh").mkdir()
    run_env = {
        **env,
        "RISK_LANDING_DIR": str(landing),
        "RISK_AS_OF": args.as_of,
        "RISK_WAREHOUSE": str(work / "wh" / "warehouse.duckdb"),
        "RISK_EXPORTS_DIR": str(work / "exports"),
        "DAGSTER_HOME": str(work / "dagster_home"),
    }
    full_s, full_gib, rc, out = measured(
        [str(BIN / "risk"), "refresh", "--verbose"], run_env, work / "full.log")
    assert rc == 0, out[-3000:]
    print(f"{'risk refresh from empty':<34} {full_s:>9.1f} {full_gib:>9.2f}")
    print_groups(step_seconds(out), full_s)

    none_s, none_gib, rc, out = measured([str(BIN / "risk"), "refresh"], run_env,
                                         work / "nothing_new.log")
    assert rc == 0 and "nothing to do" in out, out[-3000:]
    print(f"{'nothing-new night':<34} {none_s:>9.1f} {none_gib:>9.2f}")
    for night in range(1, args.nights + 1):
        inc_s = incremental_night(landing, run_env, work, args.as_of, night)
    if args.full_night:
        f_s, f_gib, rc, out = measured([str(BIN / "risk"), "refresh", "--full", "--verbose"],
                                       run_env, work / "full_night.log")
        assert rc == 0, out[-3000:]
        print(f"{'risk refresh --full (build kept)':<34} {f_s:>9.1f} {f_gib:>9.2f}")
    print(f"\nratio full refresh / bare load: {full_s / bare_s:.1f}x "
          f"(goal <= 3x); nothing-new night {none_s:.1f} s (goal <= 15 s); incremental night "
          f"{args.nights} {inc_s / full_s:.0%} of the full refresh (goal <= 10%)")


if __name__ == "__main__":
    main()
