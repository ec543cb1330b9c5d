"""Pre-lending screening (issue 5): access rules, product matching, limits, guarantees."""

from assets.screening.screening_assets import screening_assets, screening_checks

__all__ = ["screening_assets", "screening_checks"]
