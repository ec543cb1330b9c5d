"""Where the early warning loses, by the generator's ground truth (a developer tool).

python benchmarks/backtest_truth_ceiling.py --warehouse <build or published warehouse> \
    --truth <landing>_truth [--run-id ID]

Reads the latest `risk backtest` run (by default the out-of-time window: the run with the
latest window start) from `marts.backtest_scores` and joins the generator's truth
(`enterprises.parquet`) to say, per kind of defaulter (sudden, fast, normal or slow distress,
liquidity-stressed bullet loan, fund diverter):
- how many firm-months defaulted within 6 months and what share of the 6-month AUC they lose
  (AUC = 1 - sum over defaulting firm-months of the share of performing firm-months ranked
  above them / their count), and the AUC if that kind alone were ranked perfectly;
- per defaulting firm: listed at all, listed while all its loans were current, and the
  median lead time from first listing to default;
- the information horizon: months from `distress_visible_month` (the first month the
  generator lets distress show outside the repayments) to the first default. No model can
  list a firm before anything shows, so this bounds lead time and listed-while-current;
- the bounds themselves: the 6-month AUC, listed-while-current share and median lead time of
  a perfect lister that lists each firm from the month end its distress shows.
A bank has no such truth: `risk backtest` is its tool. This one explains the figures there.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import duckdb

from assets.scorecard.fit import training_months, warmup_end
from assets.scorecard.spec import load_spec

KIND = """case when t.liquidity_stress then 'liquidity' when t.is_diverter then 'diverter'
    when t.sudden_default then 'sudden' else coalesce(t.distress_speed, 'none') end"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warehouse", type=Path, required=True)
    parser.add_argument("--truth", type=Path, required=True, help="<landing>_truth directory")
    parser.add_argument("--run-id", help="a backtest_runs.run_id (default: the OOT run)")
    args = parser.parse_args(argv)

    con = duckdb.connect(str(args.warehouse), read_only=True)
    run = args.run_id or con.execute(
        "select run_id from marts.backtest_runs order by ran_at desc, window_start desc limit 1"
    ).fetchall()[0][0]
    window = con.execute(
        "select window_start, window_end, model_version, auc_6m from marts.backtest_runs "
        "where run_id = ?", [run]
    ).fetchall()[0]
    print(f"run {run}: {window[0]}..{window[1]}, model {window[2]}, AUC 6m {window[3]:.4f}")
    truth = (args.truth / "enterprises.parquet").as_posix()
    con.execute(f"create temp table truth as select * from read_parquet('{truth}')")
    con.execute("""
        create temp table s as
        select enterprise_id, month_end, pd, listed, default_within_6m as y,
               default_within_12m, all_loans_current
        from marts.backtest_scores where run_id = ?""", [run])
    con.execute("create temp table s_run as select ? as run_id", [run])
    # For each defaulting firm-month: the share of performing firm-months scored above it
    # (ties count half), from ranks: no pairwise join.
    con.execute("""
        create temp table loss as
        with ranked as (
            select *,
                count(*) filter (where not y) over (order by pd desc
                    range between unbounded preceding and current row) as neg_at_or_above,
                count(*) filter (where not y) over (partition by pd) as neg_tied
            from s
        )
        select r.enterprise_id, r.month_end,
               (neg_at_or_above - neg_tied / 2.0)
               / (select count(*) filter (where not y) from s) as above_share
        from ranked as r where y""")
    total = con.execute("select count(*), sum(above_share) from loss").fetchall()[0]
    n_pos, lost_all = total[0], total[1] or 0.0
    print(f"6-month defaulting firm-months {n_pos}, AUC 6m recomputed {1 - lost_all / n_pos:.4f}")
    print("\nkind        firm-months  AUC lost  AUC if this kind ranked first")
    for kind, n, lost in con.execute(f"""
            select {KIND} as kind, count(*), sum(above_share)
            from loss join truth as t using (enterprise_id)
            group by 1 order by 3 desc""").fetchall():
        print(f"{kind:<11} {n:>11}  {lost / n_pos:8.4f}  {1 - (lost_all - lost) / n_pos:.4f}")

    # backtest_scores holds the window's month ends only: these per-kind figures miss the
    # listings after the window that the back-test's own firm-level figures count.
    print("\nper defaulting firm (default within 12 months of a window month end; listings at "
          "the window's month ends only, so below the back-test's own figures)")
    print("kind        firms  listed  listed while current  median lead  visible lead (truth)")
    for row in con.execute(f"""
            with d as (
                select s.enterprise_id, min(o.next_default_date) as default_date
                from s join marts.fct_enterprise_outcomes as o using (enterprise_id, month_end)
                where s.default_within_12m group by 1
            ),
            f as (
                select d.enterprise_id, d.default_date,
                    min(s.month_end) filter (where s.listed) as first_listed,
                    coalesce(bool_or(s.listed and s.all_loans_current), false) as lwc
                from d join s using (enterprise_id) group by all
            )
            select {KIND} as kind, count(*), avg((first_listed is not null)::int),
                avg(lwc::int), median(date_diff('month', first_listed, default_date)),
                median(date_diff('month',
                    last_day(strptime(t.distress_visible_month, '%Y-%m')::date), default_date))
            from f join truth as t using (enterprise_id)
            group by rollup (1) order by 2 desc""").fetchall():
        kind = row[0] or "all"
        vis = "n/a" if row[5] is None else f"{row[5]:.1f}"
        lead = "n/a" if row[4] is None else f"{row[4]:.1f}"
        print(f"{kind:<11} {row[1]:>5}  {row[2]:6.1%}  {row[3]:20.1%}  {lead:>11}  {vis:>20}")
    _print_bounds(con, truth, (args.truth / "loans.parquet").as_posix())
    return 0


def _print_bounds(con: duckdb.DuckDBPyConnection, truth: str, truth_loans: str) -> None:
    """What a perfect lister could reach on this window: one that lists each firm from the
    month end its distress first shows, and never before. `visible` is the truth's
    `distress_visible_month` (distressed firms; for a sudden default the month after it stops
    paying), the month its diverted loan was disbursed (a diverter: the transfers follow
    within days), or five months before its bullet loan matures (a liquidity-stressed firm:
    its revenue starts to fall then). The AUC bound ranks every defaulting firm-month at or
    after `visible` above all performing ones and the rest like a performing one (AUC 0.5);
    it is an upper bound as long as distress before it shows is not predictable from the
    firm's profile."""
    con.execute(f"""
        create temp table visible as
        with liquidity as (
            select l.enterprise_id,
                   min(last_day(r.maturity_date - interval 5 month)) as visible_month_end
            from read_parquet('{truth_loans}') as l join raw.loans as r using (loan_id)
            where l.bullet_principal_default group by 1
        ),
        diversion as (
            select l.enterprise_id, min(last_day(r.disbursement_date)) as visible_month_end
            from read_parquet('{truth_loans}') as l join raw.loans as r using (loan_id)
            where l.funds_diverted group by 1
        )
        select t.enterprise_id, least(
                   last_day(strptime(t.distress_visible_month, '%Y-%m')::date),
                   lq.visible_month_end, dv.visible_month_end) as visible_month_end
        from truth as t
        left join liquidity as lq using (enterprise_id)
        left join diversion as dv using (enterprise_id)""")
    n_pos, n_hidden = con.execute("""
        select count(*), count(*) filter (where v.visible_month_end is null
                                          or s.month_end < v.visible_month_end)
        from s left join visible as v using (enterprise_id) where s.y""").fetchall()[0]
    print(f"\nWhat a perfect lister could reach (lists each firm from the month end its "
          f"distress shows):\n  6-month defaulting firm-months before anything showed: "
          f"{n_hidden} of {n_pos} ({n_hidden / n_pos:.1%}); AUC 6m bound "
          f"{1 - 0.5 * n_hidden / n_pos:.4f}")
    # The back-test's own convention (assets/backtest/run.py): the firms whose default falls in
    # (window start, last window month end + 12 months], and their month ends (inside the
    # window or not) in the 12 months before the default, but none inside the history's
    # warm-up or the model's training window.
    (version,) = con.execute(
        "select model_version from marts.backtest_runs where run_id = (select run_id from s_run)"
    ).fetchone()
    month_ends = [r[0] for r in con.execute(
        "select distinct month_end from marts.fct_enterprise_outcomes").fetchall()]
    first = warmup_end(con, load_spec())
    ignored = {*training_months(con, version, month_ends),
               *(m for m in month_ends if first and m < first)}
    con.execute("create temp table ignored(month_end date)")
    con.executemany("insert into ignored values (?)", [[m] for m in sorted(ignored)])
    row = con.execute("""
        with w as (select min(month_end) as start, last_day(max(month_end) + interval 12 month)
                          as horizon from s),
        d as (
            select s.enterprise_id, min(o.next_default_date) as default_date
            from s join marts.fct_enterprise_outcomes as o using (enterprise_id, month_end), w
            where o.next_default_date > w.start and o.next_default_date <= w.horizon
            group by 1
        ),
        f as (
            select d.enterprise_id, d.default_date,
                   min(o.month_end) filter (where o.month_end >= v.visible_month_end)
                       as first_listable,
                   coalesce(bool_or(o.all_loans_current
                                    and o.month_end >= v.visible_month_end), false) as lwc
            from d
            join marts.fct_enterprise_outcomes as o
              on o.enterprise_id = d.enterprise_id and o.month_end < d.default_date
             and d.default_date <= last_day(o.month_end + interval 12 month)
             and o.month_end not in (select month_end from ignored)
            left join visible as v on v.enterprise_id = d.enterprise_id
            group by all
        )
        select count(*), avg((first_listable is not null)::int), avg(lwc::int),
               median(date_diff('month', first_listable, default_date)),
               avg((date_diff('month', first_listable, default_date) >= 7)::int)
                   filter (where first_listable is not null)
        from f""").fetchall()[0]
    got = con.execute("""
        select listed_while_current_share, lead_time_median, defaulting_firms
        from marts.backtest_runs where run_id = (select any_value(run_id) from s_run)""").fetchall()
    lwc, lead = got[0][0], got[0][1]
    print(f"  per defaulting firm ({row[0]}, the back-test's convention: the month ends in the "
          "12 months before default, outside the warm-up and the training window):")
    print(f"  listable {row[1]:.1%}; listed while all loans current at most {row[2]:.1%} (the "
          f"engine: {lwc:.1%}); median lead at most {row[3]:.1f} months (the engine: "
          f"{lead:.1f}); leads of 7 months or more possible for {row[4]:.1%} of the listable")


if __name__ == "__main__":
    raise SystemExit(main())
