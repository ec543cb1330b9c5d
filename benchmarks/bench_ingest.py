"""Benchmark ingestion against a bare DuckDB bulk load of the same files. Prints figures.

    python benchmarks/bench_ingest.py --enterprises 10000 [--format parquet] [--keep DIR]
    python benchmarks/bench_ingest.py --landing /tmp/m1/landing --keep DIR [--night]

In one run: the project's ingestion from empty (`ingest_all`, the `raw__*` assets' code) with
seconds per table and per phase (`assets.ingestion.PROFILE`), a bare DuckDB load of the same
files (CREATE TABLE AS read_parquet/read_csv) and the ratio of the two. With --night, a small
delivery onto the loaded raw tables: one new day of repayments, fund flows and registry events
(the last day of each, re-dated to the next day with new ids) plus a corrected re-delivery of
1,000 repayments, as new files in the landing folder (removed afterwards). Set
RISK_DUCKDB_MEMORY_LIMIT to cap DuckDB. Each step runs in its own process so its peak RSS is
its own. Timings on a shared machine are upper bounds.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import queue
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

#: The daily tables of a bank's night: id column and date column.
DAILY = {"repayments": ("payment_id", "payment_date"), "fund_flows": ("flow_id", "txn_date"),
         "registry_events": ("event_id", "event_date")}
NIGHT_TAG = "night-bench"


def _peak_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def _generate(out: str, n: int, fmt: str, q: mp.Queue) -> None:
    from synthetic.generator import generate

    t = time.perf_counter()
    summary = generate(Path(out), n_enterprises=n, seed=7, fmt=fmt)
    q.put((time.perf_counter() - t, getattr(summary, "rows", None), _peak_gib()))


def _ingest(landing: str, warehouse: str, q: mp.Queue) -> None:
    from assets import ingestion

    ingestion.reset_profile()
    t, cpu = time.perf_counter(), time.process_time()
    results = ingestion.ingest_all(Path(warehouse), Path(landing))
    q.put(
        (
            time.perf_counter() - t,
            {
                "tables": {
                    k: (v.row_count, v.rows_loaded, v.rows_quarantined, v.seconds)
                    for k, v in results.items()
                },
                "phases": dict(ingestion.PROFILE),
                "cpu": dict(ingestion.PROFILE_CPU),
                "cpu_total": time.process_time() - cpu,
            },
            _peak_gib(),
        )
    )


def _bare(landing: str, warehouse: str, q: mp.Queue) -> None:
    import duckdb

    from assets.contract import LOAD_ORDER
    from assets.core import settings

    t, cpu = time.perf_counter(), time.process_time()
    with duckdb.connect(warehouse) as con:
        con.execute(f"SET memory_limit = '{settings.duckdb_memory_limit()}'")
        for table in LOAD_ORDER:
            for suffix, reader in (("parquet", "read_parquet"), ("csv", "read_csv")):
                files = sorted((Path(landing) / table).glob(f"*.{suffix}"))
                if files:
                    listing = "[" + ", ".join(f"'{f}'" for f in files) + "]"
                    con.execute(f"CREATE TABLE {table} AS SELECT * FROM {reader}({listing})")
                    break
    q.put((time.perf_counter() - t, time.process_time() - cpu, _peak_gib()))


def _run(target, *args) -> tuple[float, object, float]:
    """Run `target` in a fresh process; return (seconds, payload, peak RSS GiB)."""
    q: mp.Queue = mp.get_context("fork").Queue()
    p = mp.get_context("fork").Process(target=target, args=(*args, q))
    p.start()
    while True:
        try:
            seconds, payload, peak = q.get(timeout=5)
            break
        except queue.Empty:
            if not p.is_alive():
                raise SystemExit(f"{target.__name__} failed (exit code {p.exitcode})") from None
    p.join()
    return seconds, payload, peak


def deliver_night(landing: Path) -> dict[str, int]:
    """New files: the last day of each daily table re-dated to the next day with new ids, and
    1,000 repayments re-delivered with a corrected amount. Returns rows per file."""
    import duckdb

    counts = {}
    with duckdb.connect() as con:
        for table, (id_col, date_col) in DAILY.items():
            src, suffix, fmt = _delivered(landing / table)
            dest = landing / table / f"{NIGHT_TAG}-{table}{suffix}"
            con.execute(
                f"COPY (SELECT * REPLACE ({id_col} || '-n1' AS {id_col}, "
                f"CAST({date_col} AS DATE) + 1 AS {date_col}) FROM {src} WHERE "
                f"CAST({date_col} AS DATE) = (SELECT max(CAST({date_col} AS DATE)) FROM {src})) "
                f"TO '{dest}' ({fmt})"
            )
            counts[dest.name] = con.execute(f"SELECT count(*) FROM '{dest}'").fetchone()[0]
        src, suffix, fmt = _delivered(landing / "repayments")
        dest = landing / "repayments" / f"{NIGHT_TAG}-correction{suffix}"
        con.execute(
            f"COPY (SELECT * REPLACE (amount + 1 AS amount) FROM {src} USING SAMPLE 1000 ROWS "
            f"(reservoir, 42)) TO '{dest}' ({fmt})"
        )
        counts[dest.name] = 1000
    return counts


def _delivered(folder: Path) -> tuple[str, str, str]:
    """(reader over the folder's delivered files, suffix, COPY options) for Parquet or CSV."""
    files = sorted(p for p in folder.iterdir() if not p.name.startswith(NIGHT_TAG))
    listing = "[" + ", ".join(f"'{p}'" for p in files) + "]"
    if files and files[0].suffix == ".parquet":
        return f"read_parquet({listing}, union_by_name = true)", ".parquet", "FORMAT parquet"
    return f"read_csv({listing}, union_by_name = true)", ".csv", "FORMAT csv, HEADER"


def _phase_table(got: dict, total: float) -> None:
    """Wall and CPU seconds per phase (CPU: every DuckDB thread; steadier when shared)."""
    print(f"  per phase          wall s          cpu s  (process cpu {got['cpu_total']:.1f} s)")
    for name, s in sorted(got["phases"].items(), key=lambda kv: -kv[1]):
        print(f"    {name:<14} {s:8.1f} {100 * s / total:5.1f}%  {got['cpu'][name]:8.1f}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--enterprises", type=int, default=10_000)
    ap.add_argument("--format", choices=("csv", "parquet"), default="csv")
    ap.add_argument("--landing", help="an existing landing folder (not generated)")
    ap.add_argument("--keep", help="work directory to keep (default: a temp dir, removed)")
    ap.add_argument("--night", action="store_true", help="also a small delivery afterwards")
    ap.add_argument("--no-bare", action="store_true", help="skip the bare load")
    args = ap.parse_args()
    work = Path(args.keep or tempfile.mkdtemp(prefix="bench_ingest_"))
    work.mkdir(parents=True, exist_ok=True)
    landing = Path(args.landing) if args.landing else work / "landing"
    warehouse = work / "w.duckdb"
    print(f"memory cap RISK_DUCKDB_MEMORY_LIMIT={os.environ.get('RISK_DUCKDB_MEMORY_LIMIT')}")
    try:
        if not landing.exists():
            gen_s, _, gen_gib = _run(_generate, str(landing), args.enterprises, args.format)
            print(f"generate   {args.enterprises:>9,} enterprises  {gen_s:8.1f} s  "
                  f"peak {gen_gib:6.2f} GiB")
        for f in (warehouse, work / "bare.duckdb"):
            f.unlink(missing_ok=True)
            Path(f"{f}.wal").unlink(missing_ok=True)
        ing_s, got, ing_gib = _run(_ingest, str(landing), str(warehouse))
        tables = got["tables"]
        total = sum(c[0] for c in tables.values())
        quarantined = sum(c[2] for c in tables.values())
        print(f"ingest     {total:>12,} rows  {ing_s:8.1f} s  peak {ing_gib:6.2f} GiB  "
              f"({total / ing_s:,.0f} rows/s, {quarantined} quarantined)")
        for table, (n, _, qn, s) in tables.items():
            print(f"    {table:<20} {n:>12,} rows  {qn:>6} quarantined  {s:8.1f} s")
        _phase_table(got, ing_s)
        if not args.no_bare:
            bare_s, bare_cpu, bare_gib = _run(_bare, str(landing), str(work / "bare.duckdb"))
            print(f"bare load  {total:>12,} rows  {bare_s:8.1f} s  peak {bare_gib:6.2f} GiB  "
                  f"(cpu {bare_cpu:.1f} s)")
            print(f"ratio ingest / bare load: {ing_s / bare_s:.1f}x wall, "
                  f"{got['cpu_total'] / bare_cpu:.1f}x cpu")
        if args.night:
            night_files = deliver_night(landing)
            try:
                n_s, got, n_gib = _run(_ingest, str(landing), str(warehouse))
            finally:
                for table in DAILY:
                    for f in (landing / table).glob(f"{NIGHT_TAG}-*"):
                        f.unlink()
            loaded = sum(c[1] for c in got["tables"].values())
            print(f"night      {loaded:>12,} rows  {n_s:8.1f} s  peak {n_gib:6.2f} GiB  "
                  f"files: {night_files}")
            for table, (_, rows, _, s) in got["tables"].items():
                print(f"    {table:<20} {rows:>12,} rows loaded  {s:8.1f} s")
            _phase_table(got, n_s)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
