"""The one Definitions object, assembled from the per-domain modules."""

from dagster import Definitions

from assets.backtest_assets import backtest_assets
from assets.core.resources import default_resources
from assets.dbt_assets import dbt_model_assets
from assets.early_warning import early_warning_assets, early_warning_checks
from assets.exports import export_assets
from assets.ingestion_assets import ingestion_assets
from assets.publish_assets import publish_assets
from assets.scorecard_assets import pd_scorecard_assets
from assets.screening import screening_assets, screening_checks
from orchestration.jobs import model_backtest, nightly_refresh
from orchestration.schedules import model_backtest_schedule, nightly_refresh_schedule
from orchestration.sensors import landing_files_sensor, run_failure_alert_sensor

defs = Definitions(
    assets=[
        *ingestion_assets,
        *dbt_model_assets,
        *early_warning_assets,
        *export_assets,
        *screening_assets,
        *pd_scorecard_assets,
        *backtest_assets,
        *publish_assets,
    ],
    asset_checks=[*early_warning_checks, *screening_checks],
    jobs=[nightly_refresh, model_backtest],
    schedules=[nightly_refresh_schedule, model_backtest_schedule],
    sensors=[landing_files_sensor, run_failure_alert_sensor],
    resources=default_resources(),
)
