"""Benign noise: what makes healthy firms look less clean and distress less obvious, so a
back-test on generated data does not flatter the early-warning engine.

`NoiseConfig` holds one share per kind of noise (a probability per eligible firm, loan or
distressed firm). Every kind is on by default; set a share to 0 to switch that kind off,
`NoiseConfig.off()` switches all off and `NoiseConfig().scaled(k)` multiplies every share by
k (capped at 1). The ground truth names the noise each firm got (truth `enterprises.parquet`:
one boolean `noise_<kind>` column per firm-level kind, `noise` listing them, `distress_speed`
and `sudden_default`; truth `loans.parquet`: `benign_related_flows`) and `meta.json` records
the settings used.

Noise is drawn from its own random stream per chunk (seeded by (seed, chunk, 1)), always with
the same shapes whatever the settings. Switching one of the firm-level kinds (FIRM_KINDS)
off changes only the rows of the firms it flagged (row ids aside), in the tables it touches:
the firms, their stories, every other table and every other kind stay the same (the tests
check this). The distress kinds (sudden, fast, slow, recovery) change the distress stories,
so the draws that follow them (events, repayments, applications) differ beyond the firms
concerned. With every share 0 (`NoiseConfig.off()` plus `recovery=0.48`) the landing tables
are the pre-noise generator's, byte for byte, except `tax_ratings`: a firm now keeps its
usual rating from year to year (the old generator drew every year anew), and the CIT rows of
`tax_filings` after a recovery: a recovered firm owes CIT again (before 2026-11-30 it never
did).

The kinds, their defaults and what they do (intensities are the module constants below):

- `late_installments` 0.25 of firms: in months they are not in distress, each loan
  installment is paid 1-20 days late with probability 0.12, and 28-45 days late (a month
  behind, caught up with the next) with probability 0.02. Never 91 days: no default.
- `late_utility` 0.20 of firms: each utility bill outside distress is paid 25-60 days after
  its month (normally 5-20) with probability 0.12.
- `late_tax` 0.15 of firms: each monthly VAT filing outside distress is filed 16-45 days after
  its month (normally 7-15) with probability 0.10, and paid short (50-90% of what is payable,
  the rest paid with the next month's filing) with probability 0.04.
- `rating_drift` 0.20 of firms: firms keep their usual tax rating year to year; these get one
  year one notch off it (down 70% of the time, up 30%; A only goes down, C only up) and are
  back the year after. Years in distress still get C or D.
- `shrinking` 0.04 of firms never distressed, diverting or liquidity stressed: revenue (and so
  electricity and VAT) declines 10-30% a year over the whole window; they keep paying.
- `seasonal` 0.50 of firms in the seasonal industries (A agriculture, E construction,
  H accommodation and catering, R culture, sports and tourism) and `seasonal_other` 0.03 of
  the rest: a peaked yearly cycle of activity (the peak month set by industry, shifted up to
  about a month from year to year), the busiest month 1.3-1.8 times the average and the
  quietest 0.5-0.8 of it.
- `revenue_dip` 0.08 of firms: one bad quarter (three months 25-50% down), then back.
- `loss_quarters` 0.30 of firms: each quarter outside distress reports a loss (no corporate
  income tax payable on its quarterly CIT filing) with probability 0.30, as many small firms
  do in a slow quarter (a distressed firm reports losses from its onset until it recovers).
  Drawn from a stream of its own (seeded by (seed, chunk, 2)): adding it changed no other draw.
- `related_party_flows` 0.15 of the loans of borrowers that do not divert funds: 1-2 modest
  flows after disbursement (3-20% of the principal in all, within 90 days) to related_party
  (50%), cash (30%) or own_account (20%), so fund diversion is not "any related-party flow".
- `sudden_default` 0.15 of distressed firms: nothing shows before the missed payments (revenue,
  tax, utilities, ratings and registry events only turn a month after the first missed
  installment); they stop paying outright 0-2 months after the onset (no partial phase).
- `fast_distress` 0.15 and `slow_distress` 0.30 of the other distressed firms: fast ones
  miss installments within 0-1 months of the onset and stop a month later, their decline and
  arrears 2.5 times as quick; slow ones pay in full for 9-18 months, pay short for 2-6 more,
  their decline and arrears about a third as quick (court events later accordingly), so many
  default only after the window. The rest (`normal`) keep the original 3-6 months to short
  payments and 1-3 more to stopping. The mix keeps the share of distressed firms that default
  in the window (about a quarter) and the NPL ratio where they were without it.
- `recovery` 0.48 of distressed firms recover 5-12 months after the onset if that lies inside
  the window: revenue climbs back, arrears and events stop, missed installments are caught up
  (for fast and sudden distress often after a default: a cure).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import polars as pl

#: Firm-level kinds recorded as truth columns `noise_<kind>` (in this order in `noise`).
FIRM_KINDS = (
    "late_installments",
    "late_utility",
    "late_tax",
    "rating_drift",
    "shrinking",
    "seasonal",
    "revenue_dip",
    "related_party_flows",
    "loss_quarters",
)
#: Truth `distress_speed` of a distressed firm (null for the others).
SPEEDS = ("sudden", "fast", "normal", "slow")
SUDDEN, FAST, NORMAL, SLOW = range(4)
#: How fast distress unfolds (revenue decline, arrears odds, court events), by speed.
PACE = np.array([1.0, 2.5, 1.0, 0.35])

# Intensities (per installment, bill, filing) of the payment noise.
LATE_INSTALLMENT_P = 0.12  # 1-20 days late
MONTH_LATE_P = 0.02  # 28-45 days late
LATE_UTILITY_P = 0.12  # paid 25-60 days after the month
LATE_TAX_P = 0.10  # filed 16-45 days after the month
SHORT_TAX_P = 0.04  # paid 50-90%, the rest with the next filing
LOSS_QUARTER_P = 0.30  # a quarter reported at a loss (no CIT payable)
#: Seasonal industries (GB/T 4754-2017 sections) and the month of their peak.
SEASON_PEAK = {"A": 9.0, "E": 10.0, "H": 7.5, "R": 7.5}


@dataclass(frozen=True)
class NoiseConfig:
    """Shares of benign noise (see the module docstring); 0 switches a kind off."""

    late_installments: float = 0.25
    late_utility: float = 0.20
    late_tax: float = 0.15
    rating_drift: float = 0.20
    shrinking: float = 0.04
    seasonal: float = 0.50
    seasonal_other: float = 0.03
    revenue_dip: float = 0.08
    related_party_flows: float = 0.15
    loss_quarters: float = 0.30
    sudden_default: float = 0.15
    fast_distress: float = 0.15
    slow_distress: float = 0.30
    recovery: float = 0.48

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"NoiseConfig.{f.name} must be a share in [0, 1], got {value}")
        if self.fast_distress + self.slow_distress > 1.0:
            raise ValueError("fast_distress + slow_distress must not exceed 1")

    @classmethod
    def off(cls) -> NoiseConfig:
        """No benign noise at all: every share 0 (no distressed firm recovers either)."""
        return cls(**dict.fromkeys((f.name for f in dataclasses.fields(cls)), 0.0))

    def scaled(self, factor: float) -> NoiseConfig:
        """Every share multiplied by `factor` (capped at 1; fast + slow kept <= 1)."""
        if factor < 0:
            raise ValueError("factor must be >= 0")
        names = [f.name for f in dataclasses.fields(self)]
        values = {name: min(1.0, getattr(self, name) * factor) for name in names}
        both = values["fast_distress"] + values["slow_distress"]
        if both > 1.0:
            values["fast_distress"] /= both
            values["slow_distress"] /= both
        return NoiseConfig(**values)

    def as_dict(self) -> dict[str, float]:
        return dataclasses.asdict(self)


@dataclass
class FirmNoise:
    """Which firm got which noise (bool arrays of length n) and each firm's distress speed."""

    kinds: dict[str, np.ndarray]
    speed: np.ndarray  # index into SPEEDS; -1 when not distressed
    shrink_growth: np.ndarray  # yearly growth of shrinking firms (-0.30..-0.10)

    def labels(self) -> pl.Series:
        """Per firm, the kinds it got joined by ',' ('' for none)."""
        code = np.zeros(len(self.speed), dtype=np.int64)
        for bit, kind in enumerate(FIRM_KINDS):
            code |= self.kinds[kind].astype(np.int64) << bit
        uniq, inverse = np.unique(code, return_inverse=True)
        text = [",".join(k for b, k in enumerate(FIRM_KINDS) if c >> b & 1) for c in uniq]
        return pl.Series("noise", text, dtype=pl.String).gather(inverse.ravel())


def assign_firms(
    nrng: np.random.Generator,
    cfg: NoiseConfig,
    industry_codes: np.ndarray,
    distressed: np.ndarray,
    healthy: np.ndarray,
    lrng: np.random.Generator,
) -> FirmNoise:
    """Draw the firm-level noise of a chunk: `industry_codes` are section letters,
    `healthy` the firms that are never distressed, diverting or liquidity stressed.
    `related_party_flows` is filled in later from the loans (fund_flows). `lrng` draws the
    kinds added later (`loss_quarters`), so that they leave the older draws unchanged."""
    n = len(distressed)
    u = nrng.random((n, 8))
    seasonal_ind = np.isin(industry_codes, list(SEASON_PEAK))
    kinds = {
        "late_installments": u[:, 0] < cfg.late_installments,
        "late_utility": u[:, 1] < cfg.late_utility,
        "late_tax": u[:, 2] < cfg.late_tax,
        "rating_drift": u[:, 3] < cfg.rating_drift,
        "shrinking": healthy & (u[:, 4] < cfg.shrinking),
        "seasonal": u[:, 5] < np.where(seasonal_ind, cfg.seasonal, cfg.seasonal_other),
        "revenue_dip": u[:, 6] < cfg.revenue_dip,
        "related_party_flows": np.zeros(n, dtype=bool),
        "loss_quarters": lrng.random(n) < cfg.loss_quarters,
    }
    v = u[:, 7]
    sudden = v < cfg.sudden_default
    w = (v - cfg.sudden_default) / max(1.0 - cfg.sudden_default, 1e-12)  # uniform on the rest
    speed = np.where(
        sudden, SUDDEN,
        np.where(w < cfg.fast_distress, FAST,
                 np.where(w < cfg.fast_distress + cfg.slow_distress, SLOW, NORMAL)),
    )  # fmt: skip
    speed = np.where(distressed, speed, -1)
    shrink_growth = -nrng.uniform(0.10, 0.30, n)
    return FirmNoise(kinds=kinds, speed=speed, shrink_growth=shrink_growth)
