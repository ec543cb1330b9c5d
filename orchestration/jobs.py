"""Jobs. `nightly_refresh` is the whole nightly pipeline (the schedule and `risk refresh` run
it); `model_backtest` refits the PD scorecard and back-tests the early warning (monthly, and
`risk backtest` on demand)."""

from dagster import AssetKey, AssetSelection, define_asset_job, in_process_executor

from assets.backtest_assets import BACKTEST_MARTS
from assets.scorecard_assets import PD_SCORECARD_KEY

BACKTEST = AssetSelection.assets(*(AssetKey(["marts", m]) for m in BACKTEST_MARTS))

# In-process: DuckDB has a single writer, and a step costs ~0.2 s in-process vs ~1.8 s
# in a subprocess here.
nightly_refresh = define_asset_job(
    "nightly_refresh",
    selection=AssetSelection.all() - BACKTEST,
    executor_def=in_process_executor,
    description="Landing -> raw -> dbt marts -> early warning -> watchlist -> exports, end to "
    "end (the PD scorecard refits on the first night of a month, before the early warning).",
)

model_backtest = define_asset_job(
    "model_backtest",
    selection=AssetSelection.assets(PD_SCORECARD_KEY) | BACKTEST,
    executor_def=in_process_executor,
    tags={"risk/scorecard_refit": "force"},
    description="Refit the PD scorecard (champion/challenger) and back-test the early warning "
    "on the warehouse's own outcomes (marts.backtest_*).",
)
