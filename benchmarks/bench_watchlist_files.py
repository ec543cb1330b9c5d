"""Benchmark the officers' watchlist files (CSV and workbook) by the number of listed firms.
Prints figures; times nothing in CI.

    python benchmarks/bench_watchlist_files.py --firms 3000 28213 [--no-openpyxl]

At 1M enterprises about 28,000 firms are listed (28,213 at the bank). The workbook holds every
firm, then each firm again on its branch's sheet, so its cost should grow in step with the
firms listed. Each writer runs in a fresh process: seconds, and the peak memory it adds to the
process that holds the rows (peak RSS after the write less peak RSS before it). `openpyxl` is
the writer sheets.py used before it wrote the XML itself (the tests' reference copy).
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from assets.report import sheets  # noqa: E402

CITIES = ("杭州", "宁波", "温州", "绍兴", "湖州", "嘉兴", "金华", "台州", "丽水", "衢州")
DISTRICTS = ("西湖", "滨江", "萧山", "余杭", "鄞州")
TRADES = ("机械制造", "纺织印染", "电子科技", "建材贸易", "食品加工", "物流运输", "五金工具")
REASONS = (
    "近3个月增值税申报缺失2次，最近一次申报较上年同期下降42%",
    "近12个月被列为失信被执行人1次，涉案金额约人民币35万元",
    "近6个月水电费欠缴累计3个月，欠缴金额较上季度增加",
    "担保圈内有1家企业已违约，本企业为其提供连带责任担保",
    "近3个月营收同比下降35%，应收账款周转天数增加到96天",
)
ACTIONS = ("冻结未用额度；5个工作日内现场走访", "加强监控，每月复核纳税与水电数据",
           "压降敞口，补充抵押担保")


def officer_rows(n: int, seed: int = 7) -> list[dict]:
    """Made-up officer rows, shaped as `render.officer_row` makes them (no real firm): Chinese
    names, 18-character codes (some all digits), 60 branches, two reasons of ~80 characters
    together, PD for most firms."""
    rnd = random.Random(seed)
    rows = []
    for i in range(n):
        red = rnd.random() < 0.3
        code = f"{rnd.randrange(10**17, 10**18)}" if i % 10 == 0 else f"91330100MA{i:08d}"
        branch = f"{CITIES[i % 60 % 10]}{DISTRICTS[i % 60 // 12]}支行{i % 60}"
        rows.append({
            "name": f"{rnd.choice(CITIES)}{rnd.randrange(1000)}{rnd.choice(TRADES)}有限公司",
            "enterprise_id": code, "branch_name": branch, "officer_id": f"RM{rnd.randrange(900)}",
            "industry": rnd.choice(TRADES), "exposure": round(rnd.uniform(1e5, 5e7), 2),
            "tier": "红色" if red else "黄色", "tier_code": "red" if red else "amber",
            "pd": round(rnd.uniform(0.02, 0.6), 4) if rnd.random() < 0.9 else None,
            "risk_score": round(rnd.uniform(40, 99), 1),
            "status": rnd.choice(("新增", "持续", "升级")),
            "first_flagged_date": f"2026-{rnd.randrange(1, 11):02d}-{rnd.randrange(1, 29):02d}",
            "reasons": rnd.sample(REASONS, 2), "recommended_action": rnd.choice(ACTIONS),
        })
    return rows


def _child(writer: str, n: int, dest: Path) -> dict:
    """One write in this (fresh) process: seconds and the peak memory the write added."""
    rows = officer_rows(n)
    if writer == "openpyxl":
        sys.path.insert(0, str(ROOT / "tests"))
        from test_sheets import openpyxl_write_xlsx as write
    elif writer == "csv":
        def write(rows, lang, dest, _title):
            sheets.write_csv(rows, lang, dest)
    else:
        write = sheets.write_xlsx
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t = time.perf_counter()
    write(rows, "zh", dest, "全部")
    seconds = time.perf_counter() - t
    added = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before  # KiB on Linux
    return {"s": seconds, "peak_mib": added / 1024, "mib": dest.stat().st_size / 2**20}


def _run(writer: str, n: int, dest: Path) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", writer, "--firms", str(n),
                          "--dest", str(dest)], check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--firms", type=int, nargs="+", default=[3000, 28213])
    ap.add_argument("--no-openpyxl", action="store_true", help="skip the former writer")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--dest", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(_child(args.child, args.firms[0], args.dest)))
        return
    print(f"{'listed firms':>12} {'csv s':>6} {'xlsx s':>7} {'peak MiB':>9} {'file MiB':>9}"
          f"   {'openpyxl s':>10} {'peak MiB':>9} {'file MiB':>9}")
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.firms:
            c = _run("csv", n, Path(tmp) / "w.csv")
            x = _run("xml", n, Path(tmp) / "w.xlsx")
            line = (f"{n:>12,} {c['s']:>6.2f} {x['s']:>7.2f} {x['peak_mib']:>9.1f} "
                    f"{x['mib']:>9.1f}")
            if not args.no_openpyxl:
                o = _run("openpyxl", n, Path(tmp) / "o.xlsx")
                line += f"   {o['s']:>10.2f} {o['peak_mib']:>9.1f} {o['mib']:>9.1f}"
            print(line, flush=True)


if __name__ == "__main__":
    main()
