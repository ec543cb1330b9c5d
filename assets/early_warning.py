"""Early-warning engine (issue 4): signal checks, risk profile, watchlist. Being built."""

early_warning_assets: list = []
early_warning_checks: list = []
