"""Time the publish step: build file -> published warehouse (v1.5.0 storage) -> os.replace.

    .venv/bin/python benchmarks/bench_publish.py --build /tmp/p100k/wh.build.duckdb
        [--published /tmp/p100k/wh.duckdb] [--repeat 2] [--check-python /tmp/duck15/bin/python]

Prints seconds, the build and published file sizes, rows per schema, peak memory (RSS of
this process) and, with --check-python (a Python with PyPI duckdb 1.5), whether that DuckDB
opens the published file and reads every table.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from assets.core import publish, settings  # noqa: E402
from assets.publish_assets import DROP_COLUMNS, PUBLISHED_SCHEMAS  # noqa: E402

CHECK = """
import duckdb, sys
con = duckdb.connect(sys.argv[1], read_only=True)
tables = con.execute("SELECT schema_name, table_name FROM duckdb_tables()").fetchall()
rows = sum(con.execute(f'SELECT count(*) FROM "{s}"."{t}"').fetchone()[0] for s, t in tables)
print(duckdb.__version__, len(tables), rows)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--build", required=True, type=Path)
    parser.add_argument("--published", type=Path, help="default: the build file's name "
                        "without .build")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--check-python", help="python with PyPI duckdb<2 to open the result")
    args = parser.parse_args()
    build: Path = args.build.resolve()
    published = (args.published or build.with_name(build.name.replace(".build", ""))).resolve()
    for i in range(args.repeat):
        started = time.perf_counter()
        with publish.run_lock(published, wait=settings.lock_wait_seconds(), what="bench"):
            result = publish.publish(
                build, published, schemas=PUBLISHED_SCHEMAS, drop_columns=DROP_COLUMNS,
                info={"run_id": f"bench-{i}"}, memory_limit=settings.duckdb_memory_limit(),
            )
        took = time.perf_counter() - started
        by_schema: dict[str, int] = {}
        for name, n in result.tables.items():
            by_schema[name.split(".")[0]] = by_schema.get(name.split(".")[0], 0) + n
        print(
            f"publish #{i + 1}: {took:.1f}s  build {build.stat().st_size / 2**20:,.0f} MiB -> "
            f"published {result.bytes / 2**20:,.0f} MiB, {len(result.tables)} tables, rows "
            + ", ".join(f"{s} {n:,}" for s, n in sorted(by_schema.items()))
        )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10
    print(f"peak RSS {peak:,.0f} MiB")
    if args.check_python:
        out = subprocess.run([args.check_python, "-c", CHECK, str(published)],
                             capture_output=True, text=True, check=False)
        print(f"opened with duckdb {out.stdout.strip() or out.stderr.strip()[-300:]}")


if __name__ == "__main__":
    main()
