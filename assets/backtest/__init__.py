"""Back-test of the early warning on the bank's own observed outcomes (Dagster-free)."""

from assets.backtest.run import (
    TABLES,
    backtest_summary,
    headline,
    observed_window,
    roc_points,
    run_backtest,
)

__all__ = [
    "TABLES",
    "backtest_summary",
    "headline",
    "observed_window",
    "roc_points",
    "run_backtest",
]
