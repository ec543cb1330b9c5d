"""Back-test the watchlist against the synthetic generator's ground truth.

python benchmarks/backtest_watchlist.py --warehouse data/warehouse.duckdb \
    --truth data/landing_truth [--months 12] [--horizon 6]

Works on a copy of the warehouse (the original is untouched): re-runs the early-warning engine
as of each of the last `--months` month ends that still have `--horizon` months of future
(marts are point in time, so as of an earlier month end they show what the bank knew then),
then prints, over those dates:
- recall: of firms monitored and not yet defaulted at a date that default in the next
  `--horizon` months (truth first_default_date), the share on the watchlist at that date;
- false alarms: of monitored never-distressed firms (not distressed, diverter or liquidity
  stressed), the share on the watchlist (firm-dates);
- diverters caught: of fund diverters ever monitored, the share listed at some date;
- with a truth that records the generator's benign noise (synthetic.noise): false alarms per
  noise kind (never-distressed firms that got it, against those that got none), and recall
  per distress speed (sudden defaults show nothing before the missed payments).
"""

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import duckdb

from assets.early_warning import monitored_enterprises_sql, run_early_warning
from assets.signals.catalog import load_catalog


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warehouse", type=Path, required=True)
    parser.add_argument("--truth", type=Path, required=True, help="<landing>_truth directory")
    parser.add_argument("--months", type=int, default=12)
    parser.add_argument("--horizon", type=int, default=6)
    args = parser.parse_args(argv)

    catalog = load_catalog()
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "backtest.duckdb"
        shutil.copy(args.warehouse, copy)
        con = duckdb.connect(str(copy))
        for table in ("watchlist_history", "watchlist_refreshes", "signal_hits_history"):
            con.execute(f"DROP TABLE IF EXISTS marts.{table}")
        truth = (args.truth / "enterprises.parquet").as_posix()
        con.execute(f"CREATE TEMP TABLE truth AS SELECT * FROM read_parquet('{truth}')")
        d = con.execute("SELECT max(month_end) FROM marts.fct_enterprise_month_end").fetchone()[0]
        dates = [
            r[0]
            for r in con.execute(
                "SELECT DISTINCT month_end FROM marts.fct_enterprise_month_end "
                f"WHERE month_end <= DATE '{d}' - INTERVAL {args.horizon} MONTH "
                f"ORDER BY month_end DESC LIMIT {args.months}"
            ).fetchall()
        ][::-1]
        if not dates:
            print("no month end with enough future in this warehouse")
            return 1
        con.execute("CREATE TEMP TABLE bt (as_of DATE, enterprise_id VARCHAR, listed BOOLEAN)")
        started = time.perf_counter()
        for as_of in dates:
            run_early_warning(con, catalog, as_of)
            pop = monitored_enterprises_sql(con, catalog, as_of)
            con.execute(
                f"INSERT INTO bt SELECT DATE '{as_of}', p.enterprise_id, w.enterprise_id IS NOT "
                f"NULL FROM ({pop}) AS p LEFT JOIN marts.watchlist AS w USING (enterprise_id)"
            )
        seconds = time.perf_counter() - started
        recall = con.execute(
            f"""SELECT count(*), avg(listed::INT) FROM bt JOIN truth USING (enterprise_id)
                WHERE first_default_date > as_of
                  AND first_default_date <= as_of + INTERVAL {args.horizon} MONTH"""
        ).fetchone()
        false_alarm = con.execute(
            """SELECT count(*), avg(listed::INT) FROM bt JOIN truth USING (enterprise_id)
               WHERE NOT is_distressed AND NOT is_diverter AND NOT liquidity_stress"""
        ).fetchone()
        columns = {r[0] for r in con.execute("DESCRIBE truth").fetchall()}
        calm = "NOT is_distressed AND NOT is_diverter AND NOT liquidity_stress"
        by_noise = []
        kinds = sorted(c for c in columns if c.startswith("noise_"))
        if kinds:
            by_noise.append(("(none)", *con.execute(
                f"""SELECT count(*), avg(listed::INT) FROM bt JOIN truth USING (enterprise_id)
                    WHERE {calm} AND noise = ''"""
            ).fetchone()))  # fmt: skip
        for col in kinds:
            by_noise.append((col.removeprefix("noise_"), *con.execute(
                f"""SELECT count(*), avg(listed::INT) FROM bt JOIN truth USING (enterprise_id)
                    WHERE {calm} AND {col}"""
            ).fetchone()))  # fmt: skip
        by_speed = []
        if "distress_speed" in columns:
            by_speed = con.execute(
                f"""SELECT coalesce(distress_speed, '(not distressed)'), count(*),
                           avg(listed::INT)
                    FROM bt JOIN truth USING (enterprise_id)
                    WHERE first_default_date > as_of
                      AND first_default_date <= as_of + INTERVAL {args.horizon} MONTH
                    GROUP BY 1 ORDER BY 1"""
            ).fetchall()
        diverters = con.execute(
            """SELECT count(*), avg(caught::INT) FROM (
                 SELECT enterprise_id, bool_or(listed) AS caught FROM bt
                 JOIN truth USING (enterprise_id) WHERE is_diverter GROUP BY enterprise_id)"""
        ).fetchone()
        con.close()

    def pct(x: float | None) -> str:
        return "n/a" if x is None else f"{100 * x:.1f}%"

    print(f"catalog {catalog.version}; {len(dates)} as-of dates {dates[0]} .. {dates[-1]} "
          f"({seconds:.1f}s)")
    print(f"defaults within {args.horizon} months listed beforehand: {pct(recall[1])} "
          f"of {recall[0]} firm-dates")
    print(f"never-distressed firms listed (false alarms): {pct(false_alarm[1])} "
          f"of {false_alarm[0]} firm-dates")
    print(f"fund diverters caught: {pct(diverters[1])} of {diverters[0]} monitored diverters")
    if by_noise:
        print("false alarms among never-distressed firms, by benign noise kind:")
        for kind, n, rate in by_noise:
            print(f"  {kind:<22} {pct(rate):>6} of {n} firm-dates")
    if by_speed:
        print(f"defaults within {args.horizon} months listed beforehand, by distress speed:")
        for speed, n, rate in by_speed:
            print(f"  {speed:<22} {pct(rate):>6} of {n} firm-dates")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
