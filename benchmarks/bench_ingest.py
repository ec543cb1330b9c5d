"""Benchmark ingestion against a bare DuckDB bulk load of the same files. Prints figures.

    python benchmarks/bench_ingest.py --enterprises 10000 [--format parquet] [--keep DIR]

Each phase runs in its own process so its peak RSS is measured on its own.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _generate(out: str, n: int, fmt: str, q: mp.Queue) -> None:
    from synthetic.generator import generate

    t = time.perf_counter()
    summary = generate(Path(out), n_enterprises=n, seed=7, fmt=fmt)
    q.put((time.perf_counter() - t, getattr(summary, "rows", None), _peak_mib()))


def _ingest(landing: str, warehouse: str, q: mp.Queue) -> None:
    from assets.ingestion import ingest_all

    t = time.perf_counter()
    results = ingest_all(Path(warehouse), Path(landing))
    q.put(
        (
            time.perf_counter() - t,
            {k: (v.row_count, v.rows_quarantined) for k, v in results.items()},
            _peak_mib(),
        )
    )


def _bare(landing: str, warehouse: str, fmt: str, q: mp.Queue) -> None:
    import duckdb

    from assets.contract import LOAD_ORDER

    t = time.perf_counter()
    with duckdb.connect(warehouse) as con:
        for table in LOAD_ORDER:
            files = sorted((Path(landing) / table).glob(f"*.{fmt}"))
            if not files:
                continue
            reader = "read_parquet" if fmt == "parquet" else "read_csv"
            listing = "[" + ", ".join(f"'{f}'" for f in files) + "]"
            con.execute(f"CREATE TABLE {table} AS SELECT * FROM {reader}({listing})")
    q.put((time.perf_counter() - t, None, _peak_mib()))


def _run(target, *args) -> tuple[float, object, float]:
    """Run `target` in a fresh process; return (seconds, payload, peak RSS MiB)."""
    q: mp.Queue = mp.Queue()
    p = mp.get_context("fork").Process(target=target, args=(*args, q))
    p.start()
    seconds, payload, peak = q.get()
    p.join()
    return seconds, payload, peak


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--enterprises", type=int, default=10_000)
    ap.add_argument("--format", choices=("csv", "parquet"), default="csv")
    ap.add_argument("--keep", help="work directory to keep (default: a temp dir, removed)")
    args = ap.parse_args()
    work = Path(args.keep or tempfile.mkdtemp(prefix="bench_ingest_"))
    work.mkdir(parents=True, exist_ok=True)
    landing = work / "landing"
    try:
        if not landing.exists():
            gen_s, rows, gen_mb = _run(_generate, str(landing), args.enterprises, args.format)
            print(
                f"generate   {args.enterprises:>9,} enterprises  {gen_s:8.1f} s  "
                f"peak {gen_mb:8.0f} MiB"
            )
        ing_s, counts, ing_mb = _run(_ingest, str(landing), str(work / "w.duckdb"))
        total = sum(c[0] for c in counts.values())
        quarantined = sum(c[1] for c in counts.values())
        print(
            f"ingest     {total:>12,} rows  {ing_s:8.1f} s  peak {ing_mb:8.0f} MiB  "
            f"({total / ing_s:,.0f} rows/s, {quarantined} quarantined)"
        )
        bare_s, _, bare_mb = _run(_bare, str(landing), str(work / "bare.duckdb"), args.format)
        print(f"bare load  {total:>12,} rows  {bare_s:8.1f} s  peak {bare_mb:8.0f} MiB")
        print(f"ratio ingest / bare load: {ing_s / bare_s:.1f}x")
        for table, (n, qn) in counts.items():
            print(f"  {table:<20} {n:>12,} rows  {qn:>6} quarantined")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
