"""Time compacting a build file: its size, its live size, and a forced rewrite of a copy.

    .venv/bin/python benchmarks/bench_compact.py --build /tmp/p100k/w.build.duckdb [--in-place]

Works on a copy beside the file unless --in-place. Prints the file and live sizes before, the
size after, seconds and peak memory (RSS of this process).
"""

from __future__ import annotations

import argparse
import resource
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from assets.core import publish, settings  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--build", required=True, type=Path)
    parser.add_argument("--in-place", action="store_true")
    args = parser.parse_args()
    target = args.build
    if not args.in_place:
        target = args.build.with_name(f"bench-{args.build.name}")
        shutil.copyfile(args.build, target)
    try:
        result = publish.compact(
            target, ratio=0, min_bytes=0, memory_limit=settings.duckdb_memory_limit(),
            force=True,
        )
    finally:
        if not args.in_place:
            target.unlink(missing_ok=True)
    mib = 2**20
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"build file {result.bytes_before / mib:,.1f} MiB, live {result.live_bytes / mib:,.1f} "
        f"MiB -> compacted {result.bytes_after / mib:,.1f} MiB in {result.seconds:.1f} s "
        f"(peak RSS {peak:,.0f} MiB)"
    )


if __name__ == "__main__":
    main()
