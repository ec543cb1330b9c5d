"""Shared pieces of the synthetic generator: the industry table, small vectorised helpers
(random integers, grouped positions, typed polars columns, USCC and resident-id check
characters), the latent state of a chunk's firms (`Firms`) and the `Chunk` every table
module reads from and writes to.

The table modules (`firms`, `loans`, `tax`, `utility`, `events`, `fund_flows`,
`applications`, `truth`) each add one concern to a `Chunk`; `generator.build_chunk` calls
them in a fixed order because they share the chunk's random stream: the order of the draws
is part of the output, so reordering calls changes the data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from assets.contract import INDUSTRY_SECTIONS, USCC_ALPHABET, USCC_WEIGHTS
from synthetic.calendar import Calendar
from synthetic.noise import FirmNoise, NoiseConfig

if TYPE_CHECKING:
    from synthetic.network import NetworkConfig


def _default_network() -> NetworkConfig:
    from synthetic.network import NetworkConfig

    return NetworkConfig()


BIG = 10**6  # "never" as a local month index (day numbers use BIG * 100)
#: GB/T 4754-2017 section F is wholesale and retail trade; it gets the downturn.
DOWNTURN_INDUSTRY = "F"
DOWNTURN_MONTHS_BEFORE_END = 18

# Industry mix (GB/T 4754-2017 sections): weight, nominal VAT rate, electricity kWh per
# yuan of revenue, probability of a water bill, probability of a gas bill.
_INDUSTRY = {
    "A": (0.02, 0.09, 0.030, 0.8, 0.05),
    "B": (0.005, 0.13, 0.120, 0.6, 0.20),
    "C": (0.28, 0.13, 0.080, 0.7, 0.40),
    "D": (0.005, 0.13, 0.050, 0.6, 0.30),
    "E": (0.09, 0.09, 0.015, 0.5, 0.05),
    "F": (0.22, 0.13, 0.008, 0.3, 0.05),
    "G": (0.06, 0.09, 0.012, 0.3, 0.10),
    "H": (0.07, 0.06, 0.040, 0.9, 0.70),
    "I": (0.06, 0.06, 0.010, 0.3, 0.02),
    "J": (0.0, 0.06, 0.005, 0.3, 0.02),
    "K": (0.02, 0.09, 0.008, 0.4, 0.05),
    "L": (0.07, 0.06, 0.006, 0.3, 0.02),
    "M": (0.04, 0.06, 0.010, 0.3, 0.02),
    "N": (0.01, 0.06, 0.020, 0.6, 0.05),
    "O": (0.03, 0.06, 0.020, 0.6, 0.20),
    "P": (0.01, 0.06, 0.015, 0.6, 0.10),
    "Q": (0.01, 0.06, 0.020, 0.7, 0.20),
    "R": (0.015, 0.06, 0.015, 0.5, 0.05),
    "S": (0.0, 0.06, 0.010, 0.3, 0.02),
    "T": (0.0, 0.06, 0.010, 0.3, 0.02),
}
assert tuple(_INDUSTRY) == INDUSTRY_SECTIONS
#: Rows: INDUSTRY_SECTIONS; columns: weight, VAT rate, kWh per yuan, P(water), P(gas).
IND = np.array(list(_INDUSTRY.values()))
IND_W = IND[:, 0] / IND[:, 0].sum()
DOWNTURN_IDX = INDUSTRY_SECTIONS.index(DOWNTURN_INDUSTRY)

SIZES = ("micro", "small", "medium")
STATUSES = ("active", "suspended", "revoked", "cancelled")


# --- small vectorised helpers -------------------------------------------------------------


def randint(rng: np.random.Generator, lo, hi, size=None) -> np.ndarray:
    """Uniform integers in [lo, hi] (inclusive), with array bounds allowed."""
    lo = np.asarray(lo, dtype=np.int64)
    hi = np.asarray(hi, dtype=np.int64)
    if size is None:
        size = np.broadcast(lo, hi).shape
    return lo + np.floor(rng.random(size) * (hi - lo + 1)).astype(np.int64)


def choice_rows(rng: np.random.Generator, probs: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """For each i, an index drawn from the distribution probs[rows[i]]."""
    cum = np.cumsum(probs, axis=1)
    cum[:, -1] = 1.0 + 1e-9
    u = rng.random(len(rows))[:, None]
    return (u >= cum[rows]).sum(axis=1)


def group_positions(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(owner index, position within owner) for counts[i] rows per owner i."""
    owner = np.repeat(np.arange(len(counts)), counts)
    starts = np.cumsum(counts) - counts
    pos = np.arange(len(owner)) - np.repeat(starts, counts)
    return owner, pos


def dates(days: np.ndarray, null: np.ndarray | None = None) -> pl.Series:
    arr = np.asarray(days, dtype=np.int64).astype("datetime64[D]")
    if null is not None:
        arr = arr.copy()
        arr[null] = np.datetime64("NaT")
    return pl.Series(arr)


def money(cents: np.ndarray, null: np.ndarray | None = None) -> pl.Series:
    """Integer fen -> yuan as the nearest double (prints with at most 2 decimals)."""
    values = np.asarray(cents, dtype=np.int64) / 100.0
    if null is not None:
        values = np.where(null, np.nan, values)
    return pl.Series(values, nan_to_null=True)


def ids(prefix: str, numbers: np.ndarray, width: int) -> pl.Series:
    s = pl.Series(np.asarray(numbers, dtype=np.int64)).cast(pl.String).str.zfill(width)
    return pl.select(pl.lit(prefix) + s).to_series()


def pick(options: tuple[str, ...] | list[str], idx: np.ndarray) -> pl.Series:
    return pl.Series(list(options), dtype=pl.String).gather(np.asarray(idx, dtype=np.int64))


def uscc_codes(first17: np.ndarray) -> np.ndarray:
    """USCCs from an (n, 17) array of alphabet indices: appends the check character."""
    total = (first17 * np.array(USCC_WEIGHTS)).sum(axis=1)
    check = (31 - total % 31) % 31
    digits = np.concatenate([first17, check[:, None]], axis=1)
    alphabet = np.frombuffer(USCC_ALPHABET.encode(), dtype=np.uint8)
    return alphabet[digits].astype(np.uint8).view("S18").ravel().astype("U18")


def id_check(first17: np.ndarray) -> np.ndarray:
    """Resident id check character (GB 11643) for (n, 17) digit arrays."""
    weights = np.array([7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2])
    table = np.frombuffer(b"10X98765432", dtype=np.uint8)
    return table[(first17 * weights).sum(axis=1) % 11]


# --- one chunk of enterprises --------------------------------------------------------------


@dataclass
class Firms:
    """Latent state of one chunk's enterprises (all arrays of length n)."""

    gidx: np.ndarray
    ids: pl.Series
    industry: np.ndarray
    region: np.ndarray
    size: np.ndarray
    base_rev: np.ndarray
    distressed: np.ndarray
    start: np.ndarray
    recovered: np.ndarray
    recover_at: np.ndarray
    partial_from: np.ndarray
    stop_from: np.ndarray
    active_until: np.ndarray
    status: np.ndarray
    borrower: np.ndarray
    diverter: np.ndarray
    diverter_defaults: np.ndarray
    liquidity: np.ndarray
    dishonest_m: np.ndarray
    #: Month distress shows outside the repayments (revenue, tax, utilities, ratings, events):
    #: the start, or a month after the first missed installment for sudden defaults; BIG if
    #: never distressed.
    visible: np.ndarray
    #: Speed of distress (1 normal; noise.PACE): scales decline and arrears odds.
    pace: np.ndarray
    noise: FirmNoise


class Chunk:
    """Enterprises [offset, offset + n) with their own random stream, seeded by
    (seed, chunk_no), and what the table modules have derived so far. `tables` holds the
    landing tables and `truth` the ground-truth frames, both keyed by name."""

    # Set by the modules, in build order (see generator.build_chunk).
    firms: Firms  # firms.build_enterprises
    region_code: np.ndarray
    loans: dict[str, np.ndarray | pl.Series]  # loans.build_loans
    liq_mat: np.ndarray  # local maturity month of a liquidity-stressed firm's bullet loan
    activity: np.ndarray  # firms.build_revenue: (n, M + 2) activity factor
    rev: np.ndarray  # (n, M + 2) monthly revenue in yuan, local months -2..M-1
    m_ext: np.ndarray
    tax_missing: np.ndarray  # tax.build: (n, M) VAT filing missing
    dishonest_day: np.ndarray  # events.build: day of the dishonest-debtor listing
    status_day: np.ndarray  # day of the status-change event
    loan_default_day: np.ndarray  # loans.build_repayments: per loan, BIG * 100 = none
    loan_recovery: tuple[np.ndarray, np.ndarray, np.ndarray]  # (day, type, amount)
    loan_first_short: np.ndarray

    def __init__(
        self, cal: Calendar, seed: int, chunk_no: int, offset: int, n: int,
        noise: NoiseConfig | None = None, network: NetworkConfig | None = None,
    ):  # fmt: skip
        self.cal = cal
        self.M = cal.months
        self.rng = np.random.default_rng([seed, chunk_no])
        #: The benign-noise stream: drawn with the same shapes whatever the settings.
        self.nrng = np.random.default_rng([seed, chunk_no, 1])
        #: Noise added after the first kinds (loss quarters): its own stream, so adding it
        #: changed no earlier draw.
        self.lrng = np.random.default_rng([seed, chunk_no, 2])
        self.noise = NoiseConfig() if noise is None else noise
        #: Guarantees, related parties and contagion (synthetic.network; own stream).
        self.network = network if network is not None else _default_network()
        self.seed = seed
        self.chunk_no = chunk_no
        self.offset = offset
        self.n = n
        self.snapshot_day = cal.end_day + 20  # the delivery: filings up to ~20 days after end
        self.tables: dict[str, pl.DataFrame] = {}
        self.truth: dict[str, pl.DataFrame] = {}

    def row_ids(self, prefix: str, count: int) -> pl.Series:
        """Row ids unique across chunks: prefix + chunk number * 1e8 + row, 12 digits."""
        return ids(prefix, self.chunk_no * 10**8 + np.arange(count), 12)

    def trouble(
        self, shape_m: np.ndarray, firm: np.ndarray, base: float, slope: float, cap: float,
        lag: int,
    ) -> np.ndarray:  # fmt: skip
        """Mask of distressed firm-months in trouble (arrears, missing filings), the odds
        rising with months since distress became visible (at the firm's pace); none before
        that + lag or after recovery."""
        f = self.firms
        since = shape_m - f.visible[firm]
        p = np.minimum(cap, base + slope * f.pace[firm] * since)
        live = (since >= lag) & (shape_m < f.recover_at[firm])
        return live & (self.rng.random(len(firm)) < p)

    def local_month(self, day: np.ndarray) -> np.ndarray:
        """Local month index of day numbers."""
        g = np.asarray(day, dtype=np.int64).astype("datetime64[D]").astype("datetime64[M]")
        return g.astype(np.int64) + 1970 * 12 - self.cal.g0
