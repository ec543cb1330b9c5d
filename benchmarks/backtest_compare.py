"""Back-test the PD-scorecard engine against the expert signal catalog on the same warehouse,
on observed outcomes only, and print the figures beside the issue's goals.

python benchmarks/backtest_compare.py --warehouse W.duckdb [--truth LANDING_truth]

Works on a copy of the warehouse (the original is untouched). Needs a champion scorecard
(`risk backtest` fits one). The two engines are judged on the champion's out-of-time window.
With --truth (the generator's ground truth, a developer tool), it also prints the share of
loans with fund diversion that were listed within the window.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import tempfile
import time
from pathlib import Path

import duckdb

from assets.backtest_assets import backtest
from assets.signals.catalog import load_catalog
from assets.signals.decisions import Engine, current_engine

GOALS = {
    "auc_6m": (">=", 0.95),
    "performing_listed_share": ("<=", 0.03),
    "listed_while_current_share": (">=", 0.50),
    "lead_time_median": (">=", 7),
    "precision_red_6m": (">=", 0.30),
}
SHOWN = [
    "auc_6m", "auc_6m_list_order", "ks_6m", "auc_12m", "recall_6m",
    "recall_firm", "precision_red_6m",
    "precision_amber_6m", "performing_listed_share", "watchlist_book_share",
    "listed_while_current_share", "lead_time_median", "lead_time_share_ge_7m",
    "defaulting_firms", "population_firm_months",
]


def _diversion_listed(con: duckdb.DuckDBPyConnection, truth: Path, start, end) -> str:
    loans = truth / "loans.parquet"
    cols = {r[0] for r in con.execute(f"DESCRIBE SELECT * FROM '{loans}'").fetchall()}
    flag = next((c for c in ("funds_diverted", "diverted", "fund_diversion") if c in cols), None)
    if flag is None:
        return f"n/a (no diversion flag among {sorted(cols)[:12]}...)"
    n, listed = con.execute(
        f"""
        WITH d AS (SELECT loan_id FROM '{loans}' WHERE {flag}),
        l AS (SELECT loan_id, enterprise_id, disbursement_date FROM raw.loans
              WHERE loan_id IN (SELECT loan_id FROM d)
                AND disbursement_date BETWEEN DATE '{start}' AND DATE '{end}')
        SELECT count(*), count(*) FILTER (WHERE EXISTS (
            SELECT 1 FROM _hist_decisions AS h WHERE h.enterprise_id = l.enterprise_id
              AND h.listed AND h.month_end >= l.disbursement_date))
        FROM l"""
    ).fetchone()
    return f"{listed}/{n} = {listed / n:.1%}" if n else "no diverted loan in the window"


def _older_catalog(ref: str):
    """A catalog from a file or a git revision, with the fields added since filled in as
    neutral (no hard triggers: the old tier rules decide alone)."""
    import subprocess

    import yaml

    from assets.signals.catalog import parse_catalog

    path = Path(ref)
    if path.exists():
        text = path.read_text()
    else:
        text = subprocess.run(
            ["git", "show", f"{ref}:assets/signals/catalog.yml"],
            check=True, capture_output=True, text=True,
        ).stdout
    data = yaml.safe_load(text)
    data.setdefault("pd_tiers", {"amber": 0.1, "red": 0.3})
    data.setdefault("hard_triggers", {})
    if "exit_after_clear_refreshes" in data:
        data["exit_after_clear_month_ends"] = data.pop("exit_after_clear_refreshes")
    return parse_catalog(data, source=f"catalog.yml at {ref}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warehouse", type=Path, required=True)
    parser.add_argument("--truth", type=Path)
    parser.add_argument(
        "--expert-catalog",
        default=None,
        help="judge the expert engine with another catalog: a YAML path or a git revision "
        "(e.g. 263e011, the catalog before the PD scorecard); default the current catalog",
    )
    args = parser.parse_args(argv)
    catalog = load_catalog()
    expert_catalog = _older_catalog(args.expert_catalog) if args.expert_catalog else catalog
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "w.duckdb"
        shutil.copy(args.warehouse, copy)
        con = duckdb.connect(str(copy))
        model = current_engine(con)
        if not model.model_version:
            print("no champion scorecard in this warehouse: run `risk backtest` first")
            return 2
        oot = con.execute(
            "select oot_start, oot_end from marts.pd_scorecard_models where model_version = ?",
            [model.model_version],
        ).fetchone()
        results = {}
        for name, engine in (("pd_scorecard", model), ("expert_catalog", Engine(note="bench"))):
            t = time.perf_counter()
            cat = catalog if name == "pd_scorecard" else expert_catalog
            # both engines' early-warning figures ignore the champion's training months; the
            # expert engine has no OOT window of its own: judge it on the model's (also when
            # month ends after it have become observed since the fit)
            runs = backtest(con, cat, engine=engine, window_months=24,
                            fitted_on=model.model_version, oot_of=model.model_version)
            took = time.perf_counter() - t
            run = next(r for r in runs if r["label"] == "oot")
            assert (run["window_start"], run["window_end"]) == tuple(oot), (run, oot)
            results[name] = (run, took)
            if args.truth and name == "pd_scorecard":
                print(f"diverted loans listed (truth, {oot[0]}..{oot[1]}): "
                      f"{_diversion_listed(con, args.truth, oot[0], oot[1])}")
        con.close()
    print(f"\n{'figure':<28} {'goal':>9} {'pd_scorecard':>14} {'expert':>10}")
    for k in SHOWN:
        goal = " ".join(map(str, GOALS[k])) if k in GOALS else ""
        vals = [results[n][0].get(k) for n in ("pd_scorecard", "expert_catalog")]
        cells = [f"{v:>14.3f}" if isinstance(v, float) else f"{v!s:>14}" for v in vals]
        print(f"{k:<28} {goal:>9} {cells[0]} {cells[1]:>10}")
    w = results["pd_scorecard"][0]
    print(f"\nwindow {w['window_start']}..{w['window_end']}; back-test seconds: "
          + ", ".join(f"{n} {t:.1f}" for n, (_, t) in results.items())
          + f"; peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
