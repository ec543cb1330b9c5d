"""Back-test pre-lending screening against the synthetic generator's ground truth.

    python benchmarks/backtest_screening.py --warehouse W.duckdb --truth <landing>_truth

Prints the decision mix, and for applications with 12 months of future inside the generated
window, the share of applicants (by decision) whose firm defaulted with the bank within 12
months of applying (truth `applications.parquet`), plus how decisions line up with the
generator's `should_decline` label (clearly declinable on what was known then). The
warehouse is opened read-only.
"""

import argparse
import json
from pathlib import Path

import duckdb


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--warehouse", type=Path, required=True)
    ap.add_argument("--truth", type=Path, required=True)
    args = ap.parse_args(argv)
    meta = json.loads((args.truth / "meta.json").read_text())
    with duckdb.connect(str(args.warehouse), read_only=True) as con:
        # Truth per application: default of any of the firm's loans in the 12 months after
        # applying, and whether those 12 months lie inside the generated window.
        con.execute(
            f"""CREATE TEMP VIEW s AS
                SELECT a.application_id, a.decision, t.should_decline, t.origin,
                       t.defaulted_within_12m, t.outcome_complete_12m, t.defaulted_before
                FROM marts.application_screening a
                JOIN read_parquet('{args.truth / "applications.parquet"}') t
                  USING (application_id)"""
        )
        mix = con.execute(
            "SELECT decision, count(*), round(100.0 * count(*) / sum(count(*)) OVER (), 1) "
            "FROM s GROUP BY 1 ORDER BY 1"
        ).fetchall()
        rates = con.execute(
            """SELECT decision, count(*), count(*) FILTER (WHERE defaulted_within_12m),
                      round(100.0 * count(*) FILTER (WHERE defaulted_within_12m) / count(*), 1)
               FROM s WHERE outcome_complete_12m AND NOT defaulted_before
               GROUP BY 1 ORDER BY 1"""
        ).fetchall()
        labels = con.execute(
            "SELECT decision, should_decline, count(*) FROM s GROUP BY ALL ORDER BY ALL"
        ).fetchall()
    print("decision mix (all applications):")
    for decision, n, pct in mix:
        print(f"  {decision:<8} {n:>7,}  {pct:5.1f}%")
    print(
        f"default within 12 months of applying (12 months observed before "
        f"{meta['end_month']}, firm not in default when applying):"
    )
    for decision, n, d, pct in rates:
        print(f"  {decision:<8} {d:>6,} of {n:>7,}  {pct:5.1f}%")
    print("decision x generator's should_decline label:")
    for decision, label, n in labels:
        print(f"  {decision:<8} should_decline={label!s:<5} {n:>7,}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
