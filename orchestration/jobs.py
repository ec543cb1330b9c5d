"""Jobs. `nightly_refresh` is the whole pipeline; the schedule and `risk refresh` both run it."""

from dagster import AssetSelection, define_asset_job, in_process_executor

# In-process: DuckDB has a single writer, and a step costs ~0.2 s in-process vs ~1.8 s
# in a subprocess here.
nightly_refresh = define_asset_job(
    "nightly_refresh",
    selection=AssetSelection.all(),
    executor_def=in_process_executor,
    description="Landing -> raw -> dbt marts -> early-warning checks, end to end.",
)
