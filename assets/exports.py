"""Exports for credit officers (issue 4): watchlist CSV/Parquet and the HTML report. Being built."""

export_assets: list = []
