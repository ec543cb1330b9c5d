"""Pre-lending screening (issue 5): access rules, product matching, limits. Being built."""

screening_assets: list = []
screening_checks: list = []
