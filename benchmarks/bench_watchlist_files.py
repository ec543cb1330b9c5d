"""Benchmark the officers' watchlist files (CSV and workbook) by the number of listed firms.
Prints figures; times nothing in CI.

    python benchmarks/bench_watchlist_files.py --firms 3000 28000

At 1M enterprises about 28,000 firms are listed. The workbook holds every firm, then each
firm again on its branch's sheet, so its cost should grow in step with the firms listed.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from assets.report import sheets  # noqa: E402


def officer_rows(n: int) -> list[dict]:
    """Made-up officer rows, shaped as `render.officer_row` makes them (no real firm)."""
    return [
        {"name": f"企业{i}", "enterprise_id": f"91330100MA{i:08d}", "branch_name": f"支行{i % 56}",
         "officer_id": f"RM{i % 900}", "industry": "制造业", "exposure": 1234567.89,
         "tier": "红" if i % 3 == 0 else "黄", "tier_code": "red" if i % 3 == 0 else "amber",
         "pd": 0.31, "risk_score": 55, "status": "新", "first_flagged_date": "2026-10-31",
         "reasons": ["近3个月增值税申报缺失2次", "近12个月被列为失信被执行人"],
         "recommended_action": "冻结未用额度；5个工作日内现场走访"}
        for i in range(n)
    ]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--firms", type=int, nargs="+", default=[3000, 28000])
    args = ap.parse_args()
    print(f"{'listed firms':>12} {'csv s':>7} {'xlsx s':>7} {'xlsx MiB':>9}")
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.firms:
            rows = officer_rows(n)
            t = time.perf_counter()
            sheets.write_csv(rows, "zh", Path(tmp) / "w.csv")
            csv_s = time.perf_counter() - t
            t = time.perf_counter()
            sheets.write_xlsx(rows, "zh", Path(tmp) / "w.xlsx", "全部")
            xlsx_s = time.perf_counter() - t
            mib = (Path(tmp) / "w.xlsx").stat().st_size / 2**20
            print(f"{n:>12,} {csv_s:>7.1f} {xlsx_s:>7.1f} {mib:>9.1f}")


if __name__ == "__main__":
    main()
