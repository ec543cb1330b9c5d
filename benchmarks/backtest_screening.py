"""Back-test pre-lending screening against the synthetic generator's ground truth.

    python benchmarks/backtest_screening.py --warehouse W.duckdb --truth <landing>_truth \
        [--horizon-months 12]

Prints the decision mix, and for applications old enough to have `--horizon-months` of
future in the data, the share of applicants (by decision) whose firm defaulted with the bank
within that horizon after applying (truth `first_default_date`), plus how decisions line up
with the generator's `should_decline` label. The warehouse is opened read-only.
"""

import argparse
import json
from pathlib import Path

import duckdb


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--warehouse", type=Path, required=True)
    ap.add_argument("--truth", type=Path, required=True)
    ap.add_argument("--horizon-months", type=int, default=12)
    args = ap.parse_args(argv)
    meta = json.loads((args.truth / "meta.json").read_text())
    end = meta["end_month"] + "-01"
    with duckdb.connect(str(args.warehouse), read_only=True) as con:
        con.execute(
            f"""CREATE TEMP VIEW s AS
                SELECT a.application_id, a.decision, a.application_date,
                       t.first_default_date, ap.should_decline,
                       t.first_default_date > a.application_date
                         AND t.first_default_date <= a.application_date
                             + INTERVAL {args.horizon_months} MONTH AS defaulted_in_horizon,
                       t.first_default_date <= a.application_date AS defaulted_before
                FROM (SELECT s.*, l.application_date FROM marts.application_screening s
                      JOIN staging.stg_core_banking__loan_applications l USING (application_id)) a
                JOIN read_parquet('{args.truth / "enterprises.parquet"}') t USING (enterprise_id)
                LEFT JOIN read_parquet('{args.truth / "applications.parquet"}') ap
                  USING (application_id)"""
        )
        mix = con.execute(
            "SELECT decision, count(*), round(100.0 * count(*) / sum(count(*)) OVER (), 1) "
            "FROM s GROUP BY 1 ORDER BY 1"
        ).fetchall()
        rates = con.execute(
            f"""SELECT decision, count(*), count(*) FILTER (WHERE defaulted_in_horizon),
                       round(100.0 * count(*) FILTER (WHERE defaulted_in_horizon) / count(*), 1)
                FROM s WHERE application_date <= DATE '{end}' - INTERVAL
                    {args.horizon_months} MONTH AND NOT coalesce(defaulted_before, false)
                GROUP BY 1 ORDER BY 1"""
        ).fetchall()
        labels = con.execute(
            "SELECT decision, should_decline, count(*) FROM s GROUP BY ALL ORDER BY ALL"
        ).fetchall()
    print("decision mix (all applications):")
    for decision, n, pct in mix:
        print(f"  {decision:<8} {n:>7,}  {pct:5.1f}%")
    print(f"default within {args.horizon_months} months of applying (applications dated at "
          f"least {args.horizon_months} months before {meta['end_month']}, firm not already "
          "in default):")
    for decision, n, d, pct in rates:
        print(f"  {decision:<8} {d:>6,} of {n:>7,}  {pct:5.1f}%")
    print("decision x generator's should_decline label:")
    for decision, label, n in labels:
        print(f"  {decision:<8} should_decline={label!s:<5} {n:>7,}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
