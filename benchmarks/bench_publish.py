"""Time the publish step: build file -> published warehouse (v1.5.0 storage) -> os.replace,
for a first (full) publish and for the nights after it (incremental).

    .venv/bin/python benchmarks/bench_publish.py --build /tmp/p100k/wh.build.duckdb
        [--published /tmp/p100k/wh.duckdb] [--nights quiet,night] [--full]
        [--check-python /tmp/duck15/bin/python]
    .venv/bin/python benchmarks/bench_publish.py --build /tmp/p100k/wh.build.duckdb \\
        --make-proxy /tmp/p1m/wh.build.duckdb --times 10

The first publish is full unless the published file and its record match. Each name in
`--nights` changes the build file (in a subprocess, not timed) and publishes again:
- `quiet`: nothing changed (a re-run);
- `grow`: every `raw` table grows by 1% (appended rows) and every `marts` table is rebuilt
  with 1% more rows, in the same order (what append-only incremental models give);
- `night`: the same, but every `marts` table is rebuilt in another row order (what dbt's
  whole rebuilds give): big marts are patched, small ones rewritten;
- `churn`: every `marts` table rebuilt with about 60% of its rows changed (40% dropped,
  40% duplicated): every mart rewritten, the worst night.
`--full` times a full publish instead (the previous design, and the nights it falls back to).
Prints seconds, what was written, appended and kept, the file sizes, and the peak RSS of the
process that published (each publish runs in its own process).

`--fingerprint-only` times what every nightly publish reads: the fingerprint of every
published table of the build file (no file written; for a scale proxy too big to publish
twice on the disk at hand).

`--make-proxy` writes a larger build file for a scale proxy: every `raw` and `marts` table of
`--build` with more than 100k rows repeated `--times` times, each text `*_id` column suffixed
with the copy number so keys stay unique; smaller tables copied once.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

PUBLISH = """
import json, resource, sys, time
sys.path.insert(0, {root!r})
from pathlib import Path
from assets.core import publish, settings
from assets.publish_assets import DROP_COLUMNS, PUBLISHED_SCHEMAS
build, published = Path({build!r}), Path({published!r})
started = time.perf_counter()
with publish.run_lock(published, wait=settings.lock_wait_seconds(), what="bench"):
    r = publish.publish(build, published, schemas=PUBLISHED_SCHEMAS, drop_columns=DROP_COLUMNS,
                        info={{"run_id": "bench"}}, memory_limit=settings.duckdb_memory_limit(),
                        incremental={incremental!r})
print(json.dumps({{"seconds": time.perf_counter() - started, "mode": r.mode, "reason": r.reason,
    "written": len(r.rewritten), "appended": r.appended, "patched": r.patched,
    "kept": r.kept, "bytes": r.bytes, "steps": r.steps,
    "rows": sum(r.tables.values()), "tables": len(r.tables),
    "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
"""

NIGHT = """
import duckdb, sys
order = "" if sys.argv[2] == "grow" else "ORDER BY random()"
share = 40 if sys.argv[2] == "churn" else 1
con = duckdb.connect(sys.argv[1])
con.execute("SET enable_progress_bar = false")
tables = con.execute("SELECT schema_name, table_name FROM duckdb_tables() "
                     "WHERE schema_name IN ('raw', 'marts')").fetchall()
for s, t in tables:
    name = f'"{s}"."{t}"'
    if s == "raw":
        con.execute(f"INSERT INTO {name} SELECT * FROM {name} USING SAMPLE 1 PERCENT (system)")
    else:
        kept = f"SELECT * FROM {name}" + (
            " USING SAMPLE 60 PERCENT (bernoulli)" if sys.argv[2] == "churn" else "")
        con.execute(f"CREATE OR REPLACE TABLE {name} AS SELECT * FROM ({kept} UNION ALL "
                    f"SELECT * FROM {name} USING SAMPLE {share} PERCENT (bernoulli)) {order}")
con.execute("CHECKPOINT")
"""

FINGERPRINT = """
import resource, sys, time
sys.path.insert(0, {root!r})
import duckdb
from assets.core import publish
from assets.core.sql import ident
from assets.publish_assets import DROP_COLUMNS, PUBLISHED_SCHEMAS
con = duckdb.connect()
con.execute("SET enable_progress_bar = false")
con.execute("ATTACH '{build}' AS build (READ_ONLY)")
started, rows = time.perf_counter(), 0
for s, t in con.execute("SELECT schema_name, table_name FROM duckdb_tables() WHERE "
                        "database_name = 'build' AND list_contains(?, schema_name)",
                        [list(PUBLISHED_SCHEMAS)]).fetchall():
    cols, _ = publish._published_columns(con, s, t, DROP_COLUMNS)
    rows += publish._fingerprint(con, f"{{ident(s)}}.{{ident(t)}}", cols, 0)[0][0]
print(f"fingerprint of {{rows:,}} rows: {{time.perf_counter() - started:.1f}}s, peak RSS "
      f"{{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f}} MiB")
"""

PROXY = """
import duckdb, sys
src, dest, times = sys.argv[1], sys.argv[2], int(sys.argv[3])
con = duckdb.connect(dest)
con.execute("SET enable_progress_bar = false")
con.execute("SET preserve_insertion_order = false")
con.execute(f"ATTACH '{src}' AS src (READ_ONLY)")
for s in ("raw", "marts"):
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {s}")
for s, t, n in con.execute("SELECT schema_name, table_name, estimated_size FROM duckdb_tables() "
                           "WHERE database_name = 'src' AND schema_name IN ('raw', 'marts')"
                           ).fetchall():
    cols = con.execute("SELECT column_name, data_type FROM duckdb_columns() WHERE "
                       "database_name = 'src' AND schema_name = ? AND table_name = ? "
                       "ORDER BY column_index", [s, t]).fetchall()
    k = times if n > 100_000 else 1
    sel = ", ".join(
        f'"{c}" || CASE WHEN copy = 0 THEN \\'\\' ELSE \\'~\\' || copy END AS "{c}"'
        if c.endswith("_id") and ty == "VARCHAR" else f'"{c}"' for c, ty in cols)
    con.execute(f'CREATE TABLE "{s}"."{t}" AS SELECT {sel} FROM src."{s}"."{t}", '
                f"range({k}) AS r(copy)")
    print(s, t, con.execute(f'SELECT count(*) FROM "{s}"."{t}"').fetchone()[0], flush=True)
"""


def run_publish(build: Path, published: Path, *, incremental: bool) -> dict:
    code = PUBLISH.format(root=str(ROOT), build=str(build), published=str(published),
                          incremental=incremental)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def show(label: str, r: dict, build: Path) -> None:
    print(
        f"{label}: {r['seconds']:.1f}s {r['mode']}"
        + (f" ({r['reason']})" if r["reason"] else "")
        + f"; {r['written']} tables written, {len(r['appended'])} appended to "
        f"(+{sum(r['appended'].values()):,} rows), {len(r['patched'])} patched "
        f"({sum(r['patched'].values()):,} rows), {r['kept']} kept; {r['tables']} tables, "
        f"{r['rows']:,} rows; build {build.stat().st_size / 2**20:,.0f} MiB -> published "
        f"{r['bytes'] / 2**20:,.0f} MiB; peak RSS {r['peak_mib']:,.0f} MiB; steps "
        + ", ".join(f"{k} {v:.1f}s" for k, v in r["steps"].items()),
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--build", required=True, type=Path)
    parser.add_argument("--published", type=Path, help="default: the build file's name "
                        "without .build")
    parser.add_argument("--nights", default="", help="comma-separated: quiet, grow, night, churn")
    parser.add_argument("--full", action="store_true", help="every publish a full one")
    parser.add_argument("--make-proxy", type=Path, help="write a scale proxy here and stop")
    parser.add_argument("--fingerprint-only", action="store_true")
    parser.add_argument("--times", type=int, default=10)
    parser.add_argument("--check-python", help="python with PyPI duckdb<2 to open the result")
    args = parser.parse_args()
    build: Path = args.build.resolve()
    if args.make_proxy:
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", PROXY, str(build), str(args.make_proxy),
                        str(args.times)], check=True)
        print(f"proxy {args.make_proxy}: {args.make_proxy.stat().st_size / 2**20:,.0f} MiB "
              f"in {time.perf_counter() - started:.0f}s")
        return
    if args.fingerprint_only:
        subprocess.run([sys.executable, "-c", FINGERPRINT.format(root=str(ROOT),
                                                                 build=str(build))], check=True)
        return
    published = (args.published or build.with_name(build.name.replace(".build", ""))).resolve()
    show("publish", run_publish(build, published, incremental=not args.full), build)
    for night in filter(None, args.nights.split(",")):
        if night in ("grow", "night", "churn"):
            started = time.perf_counter()
            subprocess.run([sys.executable, "-c", NIGHT, str(build), night], check=True)
            print(f"  (changed the build file in {time.perf_counter() - started:.0f}s)")
        elif night != "quiet":
            parser.error(f"--nights: unknown night {night!r} (quiet, grow, night, churn)")
        show(night, run_publish(build, published, incremental=not args.full), build)
    if args.check_python:
        check = ("import duckdb, sys; con = duckdb.connect(sys.argv[1], read_only=True); "
                 "t = con.execute('SELECT schema_name, table_name FROM duckdb_tables()')"
                 ".fetchall(); print(duckdb.__version__, len(t), sum(con.execute("
                 "f'SELECT count(*) FROM \"{s}\".\"{n}\"').fetchone()[0] for s, n in t))")
        out = subprocess.run([args.check_python, "-c", check, str(published)],
                             capture_output=True, text=True, check=False)
        print(f"opened with duckdb {out.stdout.strip() or out.stderr.strip()[-300:]}")


if __name__ == "__main__":
    main()
