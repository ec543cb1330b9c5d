"""Benchmark the synthetic generator: seconds, rows per table, rows/s and peak RSS.

python benchmarks/bench_generate.py --enterprises 10000 [--format parquet] --out /tmp/x \
    [--noise-scale 1.0]

--noise-scale multiplies every benign-noise share (synthetic.noise.NoiseConfig; 0: no noise).
"""

from __future__ import annotations

import argparse
import resource
from pathlib import Path

from synthetic.generator import generate
from synthetic.noise import NoiseConfig


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--enterprises", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--format", choices=("csv", "parquet"), default="csv")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--end-month", default="2026-10")
    parser.add_argument("--months", type=int, default=36)
    parser.add_argument("--noise-scale", type=float, default=1.0)
    args = parser.parse_args(argv)

    noise = NoiseConfig().scaled(args.noise_scale)
    s = generate(
        args.out, args.enterprises, args.seed, args.format, args.end_month, args.months,
        noise=noise,
    )  # fmt: skip
    width = max(len(t) for t in s.rows)
    print(f"enterprises={args.enterprises} format={args.format} seed={args.seed} "
          f"noise_scale={args.noise_scale}")  # fmt: skip
    for table, n in s.rows.items():
        print(f"  {table:<{width}} {n:>13,}")
    size = sum(p.stat().st_size for ps in s.files.values() for p in ps)
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
    print(f"  {'total':<{width}} {s.total_rows:>13,}")
    print(f"seconds={s.seconds:.1f} rows_per_s={s.total_rows / s.seconds:,.0f} "
          f"bytes={size / 2**20:,.0f}MiB peak_rss={peak_mib:,.0f}MiB")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
