"""Synthetic landing-zone generator (`risk generate`).

Writes a landing directory that follows docs/data-contract.md section 1 exactly, with
ground truth beside it (`<out>_truth/`) so back-tests know what the models should find:
distressed firms (decline, arrears, missing filings, court events, stopped repayments, some
recover), loan-fund diverters, an industry downturn and bullet loans whose weakened
borrowers cannot repay principal at maturity, on top of benign seasonality (Chinese New
Year dip) and noise. The book is calibrated like a real SME portfolio: ~4-6% of firms fall
into distress (the downturn industry clearly more), ~4-8% of loans ever default and the NPL
ratio stays in the low single digits, because the bank recovers defaulted loans: collateral
sales and guarantee claims settle secured loans 4-12 months after the default, unsecured ones
get partial recoveries (truth `loans.parquet`: recovery_date, recovery_type,
recovery_amount). Loan applications span the whole window so pre-lending screening can be
back-tested: ~40% of the loans contracted in the window have their application a few days
to weeks earlier, other firms apply and get no loan (more of them in or just before
distress), and pending applications fill the last 90 days; truth `applications.parquet`
labels each on what was known at its date and adds the later default outcome.

Everything is vectorised with numpy and generated in chunks of enterprises: each chunk is
written as its own file per table, so memory stays bounded at any scale. Money is computed
in integer fen and written as cents-exact numbers. Same arguments -> same files.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from assets.contract import (
    COUNTERPARTY_TYPES,
    EVENT_TYPES,
    INDUSTRY_SECTIONS,
    PRODUCTS,
    PURPOSES,
    TABLES,
    USCC_ALPHABET,
    USCC_WEIGHTS,
)
from synthetic import names
from synthetic.calendar import Calendar

CHUNK_SIZE = 50_000
BIG = 10**6  # "never" as a local month index
#: GB/T 4754-2017 section F is wholesale and retail trade; it gets the downturn.
DOWNTURN_INDUSTRY = "F"
DOWNTURN_MONTHS_BEFORE_END = 18
#: Probability that a firm falls into distress in the window, plus the downturn industry's
#: extra (a real SME book: a few percent of firms, the downturn industry clearly worse).
BASE_DISTRESS_P = 0.035
DOWNTURN_DISTRESS_P = 0.05
NORMAL_COUNTERPARTIES = ("supplier", "payroll", "tax", "utility", "own_account")
DIVERTING_COUNTERPARTIES = (
    "securities",
    "real_estate",
    "related_party",
    "other_loan_repayment",
    "cash",
)
assert set(NORMAL_COUNTERPARTIES + DIVERTING_COUNTERPARTIES) <= set(COUNTERPARTY_TYPES)

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
_IND = np.array(list(_INDUSTRY.values()))
_IND_W = _IND[:, 0] / _IND[:, 0].sum()
_DOWNTURN_IDX = INDUSTRY_SECTIONS.index(DOWNTURN_INDUSTRY)

SIZES = ("micro", "small", "medium")
STATUSES = ("active", "suspended", "revoked", "cancelled")

# Product terms (months), bullet probability, principal as a share of annual revenue.
_TERMS = {
    "tax_credit_loan": (6, 12, 12),
    "guarantee_fund_loan": (12, 24, 36),
    "mortgage_loan": (12, 24, 36),
    "working_capital_loan": (6, 12, 12, 24),
    "equipment_loan": (24, 36, 36),
}
_BULLET_P = np.array([0.4, 0.3, 0.4, 0.5, 0.0])
_SPREAD = np.array([[0.005, 0.015], [0.0, 0.010], [0.003, 0.012], [0.010, 0.030], [0.010, 0.025]])
_PRODUCT_P = np.array([0.25, 0.15, 0.20, 0.30, 0.10])
# Purpose mix per product (rows: PRODUCTS; columns: PURPOSES).
_PURPOSE_P = np.array(
    [
        [0.7, 0.0, 0.3, 0.0, 0.0, 0.0],
        [0.5, 0.0, 0.2, 0.3, 0.0, 0.0],
        [0.4, 0.0, 0.0, 0.3, 0.2, 0.1],
        [0.5, 0.0, 0.3, 0.0, 0.15, 0.05],
        [0.0, 1.0, 0.0, 0.0, 0.0, 0.0],
    ]
)
assert _PURPOSE_P.shape == (len(PRODUCTS), len(PURPOSES))

# Benign registry events and their weights.
_BENIGN_EVENTS = (
    ("address_change", 0.30),
    ("registered_capital_change", 0.20),
    ("shareholder_change", 0.20),
    ("legal_rep_change", 0.12),
    ("equity_pledge", 0.08),
    ("admin_penalty", 0.10),
)
_EV = {e: i for i, e in enumerate(EVENT_TYPES)}
#: Truth `recovery_type` of a defaulted loan: the collateral was sold, the guarantor (fund or
#: company) paid, or an unsecured loan got a partial recovery; index 0 = no recovery (null).
RECOVERY_TYPES = ("none", "collateral_sale", "guarantee_claim", "partial_unsecured")


@dataclass
class GenerationSummary:
    """What `generate` wrote: rows per table, wall seconds, the landing and truth paths."""

    out_dir: Path
    truth_dir: Path
    rows: dict[str, int]
    seconds: float
    files: dict[str, list[Path]] = field(default_factory=dict)

    @property
    def total_rows(self) -> int:
        return sum(self.rows.values())

    def __str__(self) -> str:
        """Compact report for the CLI (the repr lists every file)."""
        lines = [f"wrote {self.out_dir} in {self.seconds:.1f}s (ground truth: {self.truth_dir})"]
        lines += [f"  {t:<20} {n:>13,}" for t, n in self.rows.items()]
        lines.append(f"  {'total':<20} {self.total_rows:>13,}")
        return "\n".join(lines)


# --- small vectorised helpers -------------------------------------------------------------


def _randint(rng: np.random.Generator, lo, hi, size=None) -> np.ndarray:
    """Uniform integers in [lo, hi] (inclusive), with array bounds allowed."""
    lo = np.asarray(lo, dtype=np.int64)
    hi = np.asarray(hi, dtype=np.int64)
    if size is None:
        size = np.broadcast(lo, hi).shape
    return lo + np.floor(rng.random(size) * (hi - lo + 1)).astype(np.int64)


def _choice_rows(rng: np.random.Generator, probs: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """For each i, an index drawn from the distribution probs[rows[i]]."""
    cum = np.cumsum(probs, axis=1)
    cum[:, -1] = 1.0 + 1e-9
    u = rng.random(len(rows))[:, None]
    return (u >= cum[rows]).sum(axis=1)


def _group_positions(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(owner index, position within owner) for counts[i] rows per owner i."""
    owner = np.repeat(np.arange(len(counts)), counts)
    starts = np.cumsum(counts) - counts
    pos = np.arange(len(owner)) - np.repeat(starts, counts)
    return owner, pos


def _dates(days: np.ndarray, null: np.ndarray | None = None) -> pl.Series:
    arr = np.asarray(days, dtype=np.int64).astype("datetime64[D]")
    if null is not None:
        arr = arr.copy()
        arr[null] = np.datetime64("NaT")
    return pl.Series(arr)


def _money(cents: np.ndarray, null: np.ndarray | None = None) -> pl.Series:
    """Integer fen -> yuan as the nearest double (prints with at most 2 decimals)."""
    values = np.asarray(cents, dtype=np.int64) / 100.0
    if null is not None:
        values = np.where(null, np.nan, values)
    return pl.Series(values, nan_to_null=True)


def _ids(prefix: str, numbers: np.ndarray, width: int) -> pl.Series:
    s = pl.Series(np.asarray(numbers, dtype=np.int64)).cast(pl.String).str.zfill(width)
    return pl.select(pl.lit(prefix) + s).to_series()


def _pick(options: tuple[str, ...] | list[str], idx: np.ndarray) -> pl.Series:
    return pl.Series(list(options), dtype=pl.String).gather(np.asarray(idx, dtype=np.int64))


def uscc_codes(first17: np.ndarray) -> np.ndarray:
    """USCCs from an (n, 17) array of alphabet indices: appends the check character."""
    total = (first17 * np.array(USCC_WEIGHTS)).sum(axis=1)
    check = (31 - total % 31) % 31
    digits = np.concatenate([first17, check[:, None]], axis=1)
    alphabet = np.frombuffer(USCC_ALPHABET.encode(), dtype=np.uint8)
    return alphabet[digits].astype(np.uint8).view("S18").ravel().astype("U18")


def _id_check(first17: np.ndarray) -> np.ndarray:
    """Resident id check character (GB 11643) for (n, 17) digit arrays."""
    weights = np.array([7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2])
    table = np.frombuffer(b"10X98765432", dtype=np.uint8)
    return table[(first17 * weights).sum(axis=1) % 11]


# --- one chunk of enterprises --------------------------------------------------------------


@dataclass
class _Firms:
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


class _Chunk:
    """Generates every table for enterprises [offset, offset + n) with its own rng stream."""

    def __init__(self, cal: Calendar, seed: int, chunk_no: int, offset: int, n: int):
        self.cal = cal
        self.M = cal.months
        self.rng = np.random.default_rng([seed, chunk_no])
        self.seed = seed
        self.chunk_no = chunk_no
        self.offset = offset
        self.n = n
        self.snapshot_day = cal.end_day + 20  # the delivery: filings up to ~20 days after end
        self.tables: dict[str, pl.DataFrame] = {}
        self.truth: dict[str, pl.DataFrame] = {}

    def _row_ids(self, prefix: str, count: int) -> pl.Series:
        return _ids(prefix, self.chunk_no * 10**8 + np.arange(count), 12)

    # -- enterprises and their latent story ------------------------------------------------
    def build(self) -> None:
        self._enterprises()
        self._loans()
        self._revenue()
        self._tax()
        self._utilities()
        self._events()
        self._repayments()
        self._fund_flows()
        self._applications()
        self._truth_enterprises()

    def _enterprises(self) -> None:
        rng, n, M = self.rng, self.n, self.M
        gidx = self.offset + np.arange(n, dtype=np.int64)
        industry = rng.choice(len(INDUSTRY_SECTIONS), size=n, p=_IND_W)
        region = rng.integers(0, len(names.CITIES), size=n)
        district = rng.integers(2, 10, size=n)
        region_code = np.array([c[0] for c in names.CITIES])[region] * 100 + district
        size = rng.choice(3, size=n, p=[0.70, 0.25, 0.05])
        mu = np.log(np.array([150e3, 2.0e6, 12e6]))[size]
        sd = np.array([0.7, 0.5, 0.5])[size]
        lo = np.array([20e3, 500e3, 3e6])[size]
        hi = np.array([1.5e6, 15e6, 80e6])[size]
        base_rev = np.clip(np.exp(mu + sd * rng.standard_normal(n)), lo, hi)
        emp_lo = np.array([1, 20, 100])[size]
        emp_hi = np.array([19, 99, 299])[size]
        employees = _randint(rng, emp_lo, emp_hi)
        cap = base_rev * 12 * rng.uniform(0.05, 0.6, n)
        cap = np.maximum(np.round(cap / 1e4) * 1e4, 1e4)
        established = self.cal.start_day - _randint(rng, 2 * 365, 20 * 365, n)  # before any loan

        # USCC: '9' (market regulator) '1' (company), region, 9-char code from a bijection
        # of the global index (so codes are unique for any chunking), then the check char.
        space = 31**9
        v = (gidx * 12_345_678_911 + (self.seed * 2_654_435_761) % space) % space  # < 7e8 firms
        v = (v * 340_007) % space  # second bijective step: neighbours' codes look unrelated
        first17 = np.empty((n, 17), dtype=np.int64)
        first17[:, 0] = 9
        first17[:, 1] = 1
        for j in range(6):
            first17[:, 2 + j] = (region_code // 10 ** (5 - j)) % 10
        for j in range(16, 7, -1):
            first17[:, j] = v % 31
            v //= 31
        ids = pl.Series(uscc_codes(first17))

        # The story: distress (more likely and later in the downturn industry), recovery.
        u = rng.random(n)
        in_down = industry == _DOWNTURN_IDX
        d0 = M - DOWNTURN_MONTHS_BEFORE_END
        distressed = u < BASE_DISTRESS_P + DOWNTURN_DISTRESS_P * in_down
        start = np.where(
            u < BASE_DISTRESS_P, _randint(rng, 3, M - 3, n), _randint(rng, d0, M - 3, n)
        )
        start = np.where(distressed, start, BIG)
        rec_lag = _randint(rng, 5, 12, n)
        recovered = distressed & (rng.random(n) < 0.48) & (start + rec_lag <= M - 2)
        recover_at = np.where(recovered, start + rec_lag, BIG)
        partial_from = np.where(distressed, start + _randint(rng, 3, 6, n), BIG)
        stop_from = np.where(distressed, partial_from + _randint(rng, 1, 3, n), BIG)

        borrower = rng.random(n) < np.where(distressed, 0.5, 0.4)
        diverter = borrower & ~distressed & (rng.random(n) < 0.011)
        diverter_defaults = diverter & (rng.random(n) < 0.8)
        liquidity = borrower & ~distressed & ~diverter & (rng.random(n) < 0.012)

        # Status at the snapshot: some failed firms are suspended or revoked (their data
        # stops), a few healthy non-borrowers are cancelled.
        status = np.zeros(n, dtype=np.int64)
        active_until = np.full(n, BIG)
        fail_m = stop_from + _randint(rng, 2, 8, n)
        fails = distressed & ~recovered & (rng.random(n) < 0.35) & (fail_m <= M - 1)
        status[fails] = np.where(rng.random(fails.sum()) < 0.4, 2, 1)
        active_until[fails] = fail_m[fails]
        cancel = ~distressed & ~borrower & (rng.random(n) < 0.004)
        status[cancel] = 3
        active_until[cancel] = _randint(rng, 6, M - 1, cancel.sum())

        emp_null = rng.random(n) < 0.02
        city_names = [c[1] for c in names.CITIES]
        ind_words = [names.INDUSTRY_WORDS[s] for s in INDUSTRY_SECTIONS]
        brand = rng.integers(0, len(names.BRANDS), size=n)
        name = pl.select(
            pl.concat_str(
                [
                    _pick(city_names, region),
                    _pick(names.BRANDS, brand),
                    _pick(ind_words, industry),
                    pl.lit("有限公司"),
                ]
            )
        ).to_series()
        rep = pl.select(
            pl.concat_str(
                [
                    _pick(names.SURNAMES, rng.integers(0, len(names.SURNAMES), n)),
                    _pick(names.GIVEN, rng.integers(0, len(names.GIVEN), n)),
                ]
            )
        ).to_series()
        birth = (np.datetime64("1960-01-01") + _randint(rng, 0, 35 * 365, n)).astype("O")
        ymd = np.array([b.year * 10000 + b.month * 100 + b.day for b in birth], dtype=np.int64)
        id17 = np.empty((n, 17), dtype=np.int64)
        for j in range(6):
            id17[:, j] = (region_code // 10 ** (5 - j)) % 10
        for j in range(8):
            id17[:, 6 + j] = (ymd // 10 ** (7 - j)) % 10
        seq = rng.integers(0, 1000, n)
        for j in range(3):
            id17[:, 14 + j] = (seq // 10 ** (2 - j)) % 10
        id_bytes = np.concatenate(
            [(id17 + ord("0")).astype(np.uint8), _id_check(id17)[:, None]], axis=1
        )
        id_number = id_bytes.view("S18").ravel().astype("U18")

        self.tables["enterprises"] = pl.DataFrame(
            {
                "enterprise_id": ids,
                "name": name,
                "industry_code": _pick(INDUSTRY_SECTIONS, industry),
                "region_code": pl.Series(region_code).cast(pl.String),
                "established_date": _dates(established),
                "registered_capital": _money(np.round(cap * 100)),
                "employees": pl.Series(np.where(emp_null, -1, employees), dtype=pl.Int32),
                "size_class": _pick(SIZES, size),
                "status": _pick(STATUSES, status),
                "legal_rep_name": rep,
                "legal_rep_id_number": pl.Series(id_number),
            }
        ).with_columns(
            pl.when(pl.col("employees") < 0)
            .then(None)
            .otherwise(pl.col("employees"))
            .alias("employees")
        )
        self.region_code = region_code
        self.firms = _Firms(
            gidx=gidx, ids=ids, industry=industry, region=region, size=size,
            base_rev=base_rev, distressed=distressed, start=start, recovered=recovered,
            recover_at=recover_at, partial_from=partial_from, stop_from=stop_from,
            active_until=active_until, status=status, borrower=borrower, diverter=diverter,
            diverter_defaults=diverter_defaults, liquidity=liquidity,
            dishonest_m=np.full(n, BIG),
        )  # fmt: skip

    # -- loans --------------------------------------------------------------------------------
    def _loans(self) -> None:
        rng, f, M = self.rng, self.firms, self.M
        n_loans = np.where(
            f.borrower, 1 + (rng.random(self.n) < 0.35) + (rng.random(self.n) < 0.10), 0
        )
        firm, k = _group_positions(n_loans)
        L = len(firm)
        first = k == 0
        product = rng.choice(len(PRODUCTS), size=L, p=_PRODUCT_P)
        lq = first & f.liquidity[firm]
        product[lq] = np.where(rng.random(lq.sum()) < 0.5, 2, 3)  # mortgage / working capital
        term = np.empty(L, dtype=np.int64)
        for p, name in enumerate(PRODUCTS):
            sel = product == p
            term[sel] = rng.choice(np.array(_TERMS[name]), size=sel.sum())
        dist_first = first & f.distressed[firm]
        term[dist_first] = np.maximum(term[dist_first], 12)
        term[lq] = rng.choice(np.array([12, 24]), size=lq.sum())
        bullet = rng.random(L) < _BULLET_P[product]
        bullet[lq] = True

        disb_m = _randint(rng, -12, M - 1, L)
        dist = f.distressed[firm]
        s = f.start[firm]
        disb_m[dist] = _randint(rng, s[dist] - 24, s[dist] - 1)
        disb_m[dist_first] = _randint(rng, s[dist_first] - 12, s[dist_first] - 1)
        div = first & f.diverter[firm]
        disb_m[div] = _randint(rng, 0, M - 8, div.sum())
        mat_target = _randint(rng, 6, M - 1, lq.sum())
        disb_m[lq] = mat_target - term[lq]
        dom = _randint(rng, 1, 28, L)
        disb_day = self.cal.month_start(disb_m) + dom - 1
        contract_day = disb_day - _randint(rng, 0, 10, L)
        mat_m = disb_m + term
        mat_day = self.cal.month_start(mat_m) + dom - 1

        annual_rev = f.base_rev[firm] * 12
        share = rng.uniform(0.05, 0.30, L)
        principal = np.clip(np.round(annual_rev * share / 1e4) * 1e4, 5e4, 1e7)
        principal = np.where(product == 0, np.minimum(principal, 3e6), principal)
        principal_c = (principal * 100).astype(np.int64)
        spread = rng.uniform(_SPREAD[product, 0], _SPREAD[product, 1])
        rate = 0.0345 + spread + 0.005 * (f.size[firm] == 0) + 0.003 * dist
        rate = np.round(rate, 4)

        # Collateral and guarantee consistent with the product.
        coll = np.zeros(L, dtype=np.int64)  # none, real_estate, equipment, receivables, deposit
        coll_ratio = np.zeros(L)
        guar = np.zeros(L, dtype=np.int64)  # none, government_fund, third_party, personal
        gratio = np.zeros(L)
        u = rng.random(L)
        u2 = rng.random(L)
        m = product == 1
        guar[m], gratio[m] = 1, np.round(rng.uniform(0.5, 0.8, m.sum()), 2)
        m = product == 2
        coll[m], coll_ratio[m] = 1, rng.uniform(1.4, 2.5, m.sum())
        m2 = m & (u < 0.3)
        guar[m2], gratio[m2] = 3, 1.0
        m = product == 3
        coll[m & (u < 0.4)] = 3
        coll[m & (u >= 0.4) & (u < 0.55)] = 4
        coll_ratio[m & (coll > 0)] = rng.uniform(1.0, 1.3, (m & (coll > 0)).sum())
        guar[m & (u2 < 0.4)] = 2
        guar[m & (u2 >= 0.4) & (u2 < 0.7)] = 3
        gratio[m & (guar > 0)] = 1.0
        m = product == 4
        coll[m], coll_ratio[m] = 2, rng.uniform(1.1, 1.5, m.sum())
        m2 = m & (u2 < 0.4)
        guar[m2], gratio[m2] = 3, 1.0
        coll_value = np.round(principal * coll_ratio / 100) * 100 * 100  # fen, whole 100 yuan

        purpose = _choice_rows(rng, _PURPOSE_P, product)
        loan_no = self.chunk_no * 10**7 + np.arange(L)
        loan_ids = _ids("LN", loan_no, 11)
        city4 = np.array([c[0] for c in names.CITIES])[f.region[firm]]
        branch = _ids("BR", city4 * 100 + rng.integers(1, 5, L), 6)

        # Who is expected to do what (ground truth).
        bullet_default = lq  # the liquidity-stressed borrower's bullet loan
        self.loans = dict(
            firm=firm, k=k, product=product, term=term, bullet=bullet, disb_m=disb_m,
            dom=dom, disb_day=disb_day, mat_m=mat_m, mat_day=mat_day, principal_c=principal_c,
            rate=rate, bullet_default=bullet_default, ids=loan_ids, diverted=div,
            coll=coll, guar=guar, contract_day=contract_day, purpose=purpose,
        )  # fmt: skip
        # Diverters that default stop paying a few installments after the diverted loan.
        stop_div = np.full(self.n, BIG)
        stop_div[firm[div]] = disb_m[div] + _randint(rng, 3, 7, div.sum())
        dd = f.diverter_defaults
        f.partial_from = np.where(dd, stop_div - 1, f.partial_from)
        f.stop_from = np.where(dd, stop_div, f.stop_from)
        # The liquidity-stressed borrower weakens in the six months before maturity.
        self.liq_mat = np.full(self.n, BIG)
        self.liq_mat[firm[lq]] = mat_m[lq]

        self.tables["loans"] = pl.DataFrame(
            {
                "loan_id": loan_ids,
                "enterprise_id": f.ids.gather(firm),
                "branch_id": branch,
                "product": _pick(PRODUCTS, product),
                "purpose": _pick(PURPOSES, purpose),
                "contract_date": _dates(contract_day),
                "disbursement_date": _dates(disb_day),
                "maturity_date": _dates(mat_day),
                "principal": _money(principal_c),
                "annual_rate": pl.Series(rate),
                "repayment_method": _pick(
                    ("equal_installment", "interest_only_bullet"), bullet.astype(np.int64)
                ),
                "collateral_type": _pick(
                    ("none", "real_estate", "equipment", "receivables", "deposit"), coll
                ),
                "collateral_value": _money(coll_value.astype(np.int64), null=coll == 0),
                "guarantee_type": _pick(
                    ("none", "government_fund", "third_party_company", "personal"), guar
                ),
                "guarantee_ratio": pl.Series(gratio),
            }
        )

    # -- monthly activity -------------------------------------------------------------------
    def _revenue(self) -> None:
        """Monthly revenue (yuan) for local months -2..M-1 (two extra for the first CIT
        quarter) and an activity factor that drives utility consumption."""
        rng, f, n, M = self.rng, self.firms, self.n, self.M
        m = np.arange(-2, M)
        T = len(m)
        moy = self.cal.month_of_year(m)
        cny = self.cal.cny_month_mask(m)
        after_cny = np.concatenate([[False], cny[:-1]])
        depth = rng.uniform(0.2, 0.4, (n, 1)) + rng.uniform(-0.03, 0.03, (n, T))
        season = np.ones((n, T))
        season = season * np.where(cny[None, :], 1 - depth, 1.0)
        season = season * np.where(after_cny[None, :], 1 - 0.3 * depth, 1.0)
        amp = rng.uniform(0.0, 0.08, (n, 1))
        phase = rng.uniform(0, 12, (n, 1))
        season *= 1 + amp * np.sin(2 * np.pi * (moy[None, :] - phase) / 12)
        growth = rng.normal(0.05, 0.06, (n, 1))
        trend = (1 + growth) ** (m[None, :] / 12)
        noise = np.exp(rng.uniform(0.04, 0.10, (n, 1)) * rng.standard_normal((n, T)))
        oneoff = np.where(rng.random((n, T)) < 0.015, rng.uniform(0.5, 0.8, (n, T)), 1.0)

        # Distress: exponential decline to a floor; recovered firms climb back.
        s = f.start[:, None]
        rate = rng.uniform(0.10, 0.25, (n, 1))
        floor = rng.uniform(0.05, 0.25, (n, 1))
        since = np.maximum(m[None, :] - s + 1, 0)
        dfac = np.maximum(floor, np.exp(-rate * since))
        R = f.recover_at[:, None]
        at_r = np.maximum(floor, np.exp(-rate * np.maximum(R - s, 0)))
        target = rng.uniform(0.75, 1.0, (n, 1))
        climb = target - (target - at_r) * np.exp(-np.maximum(m[None, :] - R + 1, 0) / 2.0)
        dfac = np.where(m[None, :] >= R, climb, dfac)

        d0 = M - DOWNTURN_MONTHS_BEFORE_END
        ddepth = rng.uniform(0.15, 0.35, (n, 1))
        down = 1 - ddepth * np.clip((m[None, :] - d0 + 1) / 12, 0, 1)
        down = np.where((f.industry == _DOWNTURN_IDX)[:, None], down, 1.0)

        lm = self.liq_mat[:, None]
        liq = 1 - rng.uniform(0.15, 0.3, (n, 1)) * np.clip((m[None, :] - (lm - 6)) / 6, 0, 1)

        self.activity = season * dfac * down * liq * oneoff
        self.rev = f.base_rev[:, None] * trend * self.activity * noise
        self.m_ext = m

    def _trouble(
        self, shape_m: np.ndarray, firm: np.ndarray, base: float, slope: float, cap: float, lag: int
    ) -> np.ndarray:
        """Mask of distressed firm-months in trouble (arrears, missing filings), the odds
        rising with months since distress start; none before start + lag or after recovery."""
        f = self.firms
        since = shape_m - f.start[firm]
        p = np.minimum(cap, base + slope * since)
        live = (since >= lag) & (shape_m < f.recover_at[firm])
        return live & (self.rng.random(len(firm)) < p)

    def _tax(self) -> None:
        rng, f, n, M, cal = self.rng, self.firms, self.n, self.M, self.cal
        firm = np.repeat(np.arange(n), M)
        m = np.tile(np.arange(M), n)
        rev_c = np.round(self.rev[:, 2:].ravel() * 100)
        nominal = _IND[f.industry, 1]
        eff = np.where(f.size == 0, 0.03, np.maximum(0.03, nominal * rng.uniform(0.55, 1.0, n)))
        payable = np.round(rev_c * eff[firm] * rng.uniform(0.92, 1.08, n * M))
        payable = np.clip(payable, 0, None)
        arrears = self._trouble(m, firm, 0.15, 0.12, 0.9, 1)
        missing = self._trouble(m, firm, 0.0, 0.07, 0.65, 2)
        paid = np.where(arrears, np.round(payable * rng.uniform(0, 0.6, n * M)), payable)
        late = (rng.random(n * M) < 0.02) | (arrears & (rng.random(n * M) < 0.5))
        filed = cal.month_end(m) + np.where(
            late, _randint(rng, 16, 75, n * M), _randint(rng, 7, 15, n * M)
        )
        keep = ~missing & (m <= f.active_until[firm]) & (filed <= self.snapshot_day)
        self.tax_missing = missing.reshape(n, M)
        labels = pl.Series(cal.labels)

        # Quarterly CIT for quarters ending in the window (period = the quarter's last month).
        qm = np.arange(M)[cal.month_of_year(np.arange(M)) % 3 == 0]
        Q = len(qm)
        qfirm = np.repeat(np.arange(n), Q)
        qmm = np.tile(qm, n)
        qrev = self.rev[:, qm + 2] + self.rev[:, qm + 1] + self.rev[:, qm]
        qrev_c = np.round(qrev.ravel() * 100)
        margin = rng.uniform(0.02, 0.12, n)[qfirm] * rng.uniform(0.7, 1.3, n * Q)
        margin = np.where(qmm >= f.start[qfirm], -0.05, margin)
        cit_rate = np.where(f.size == 2, 0.25, 0.05)[qfirm]
        q_pay = np.round(np.maximum(0.0, qrev_c * margin * cit_rate))
        q_arrears = arrears.reshape(n, M)[:, qm].ravel()
        q_paid = np.where(q_arrears, np.round(q_pay * rng.uniform(0, 0.6, n * Q)), q_pay)
        q_filed = cal.month_end(qmm) + _randint(rng, 7, 15, n * Q) + 40 * q_arrears
        q_keep = (
            ~self.tax_missing[:, qm].ravel()
            & (qmm <= f.active_until[qfirm])
            & (q_filed <= self.snapshot_day)
        )

        vat = pl.DataFrame(
            {
                "enterprise_id": f.ids.gather(firm[keep]),
                "period": labels.gather(m[keep]),
                "tax_type": pl.Series(["vat"]).gather(np.zeros(keep.sum(), dtype=np.int64)),
                "taxable_revenue": _money(rev_c[keep]),
                "tax_payable": _money(payable[keep]),
                "tax_paid": _money(paid[keep]),
                "filed_date": _dates(filed[keep]),
            }
        )
        cit = pl.DataFrame(
            {
                "enterprise_id": f.ids.gather(qfirm[q_keep]),
                "period": labels.gather(qmm[q_keep]),
                "tax_type": pl.Series(["cit"]).gather(np.zeros(q_keep.sum(), dtype=np.int64)),
                "taxable_revenue": _money(qrev_c[q_keep]),
                "tax_payable": _money(q_pay[q_keep]),
                "tax_paid": _money(q_paid[q_keep]),
                "filed_date": _dates(q_filed[q_keep]),
            }
        )
        self.tables["tax_filings"] = pl.concat([vat, cit])

        # Annual ratings for years whose rating is published (April next year) by the end.
        years = [
            y for y in range(int(cal.year(0)), int(cal.year(M - 1)))
            if (y + 1) * 12 + 3 <= cal.g0 + M - 1
        ]  # fmt: skip
        Y = len(years)
        yfirm = np.repeat(np.arange(n), Y)
        yy = np.tile(np.array(years, dtype=np.int64), n)
        dec = (yy * 12 + 11) - cal.g0  # local month of December of that year
        troubled = (f.start[yfirm] <= dec) & (f.recover_at[yfirm] > dec)
        u = rng.random(n * Y)
        healthy_rating = np.searchsorted(np.cumsum([0.30, 0.47, 0.17, 0.06]), u, side="right")
        bad_rating = np.where(rng.random(n * Y) < 0.5, 3, 4)
        rating = np.where(troubled, bad_rating, np.minimum(healthy_rating, 3))
        self.tables["tax_ratings"] = pl.DataFrame(
            {
                "enterprise_id": f.ids.gather(yfirm),
                "year": pl.Series(yy, dtype=pl.Int32),
                "rating": _pick(("A", "B", "M", "C", "D"), rating),
            }
        )

    def _utilities(self) -> None:
        rng, f, n, M, cal = self.rng, self.firms, self.n, self.M, self.cal
        act = self.rev[:, 2:]
        parts = []
        has = {
            "electricity": np.ones(n, dtype=bool),
            "water": rng.random(n) < _IND[f.industry, 3],
            "gas": rng.random(n) < _IND[f.industry, 4],
        }
        intensity = {
            "electricity": _IND[f.industry, 2] * rng.uniform(0.6, 1.5, n),
            "water": 0.002 * rng.uniform(0.3, 2.0, n),
            "gas": 0.001 * rng.uniform(0.3, 2.0, n),
        }
        price = {
            "electricity": rng.uniform(0.60, 0.90, n),
            "water": rng.uniform(3.5, 6.5, n),
            "gas": rng.uniform(3.0, 4.5, n),
        }
        labels = pl.Series(cal.labels)
        for utility, mask in has.items():
            firms = np.nonzero(mask)[0]
            k = len(firms)
            firm = np.repeat(firms, M)
            m = np.tile(np.arange(M), k)
            cons = act[firms].ravel() * intensity[utility][firm]
            cons = np.round(cons * np.exp(0.05 * rng.standard_normal(k * M)), 2)
            billed = np.round(cons * price[utility][firm] * 100)
            arrears = self._trouble(m, firm, 0.10, 0.12, 0.9, 1)
            dead = (m >= f.stop_from[firm]) & (m < f.recover_at[firm]) & f.distressed[firm]
            paid = np.where(arrears, np.round(billed * rng.uniform(0, 0.5, k * M)), billed)
            paid = np.where(dead & (rng.random(k * M) < 0.8), 0, paid)
            late = (rng.random(k * M) < 0.03) | arrears
            day = cal.month_end(m) + np.where(
                late, _randint(rng, 25, 80, k * M), _randint(rng, 5, 20, k * M)
            )
            unpaid = (paid <= 0) | (day > self.snapshot_day)
            paid = np.where(unpaid, 0, paid)
            keep = m <= f.active_until[firm]
            parts.append(
                pl.DataFrame(
                    {
                        "enterprise_id": f.ids.gather(firm[keep]),
                        "period": labels.gather(m[keep]),
                        "utility": pl.Series([utility]).gather(
                            np.zeros(keep.sum(), dtype=np.int64)
                        ),
                        "consumption": pl.Series(cons[keep]),
                        "amount_billed": _money(billed[keep]),
                        "amount_paid": _money(paid[keep]),
                        "paid_date": _dates(day[keep], null=unpaid[keep]),
                    }
                )
            )
        self.tables["utility_bills"] = pl.concat(parts)

    # -- registry events ----------------------------------------------------------------------
    def _events(self) -> None:
        rng, f, n, M, cal = self.rng, self.firms, self.n, self.M, self.cal
        firms_l, month_l, type_l, amount_l = [], [], [], []

        def add(firm: np.ndarray, month: np.ndarray, etype: np.ndarray, amount: np.ndarray):
            firms_l.append(firm)
            month_l.append(month)
            type_l.append(np.broadcast_to(etype, firm.shape).astype(np.int64))
            amount_l.append(np.broadcast_to(amount, firm.shape).astype(np.float64))

        # Benign background events.
        count = np.minimum(rng.poisson(0.5, n), 4)
        firm, _ = _group_positions(count)
        k = len(firm)
        names_, w = zip(*_BENIGN_EVENTS, strict=True)
        et = np.array([_EV[e] for e in names_])[rng.choice(len(w), size=k, p=np.array(w))]
        cap = self.tables["enterprises"]["registered_capital"].to_numpy()[firm]
        amt = np.full(k, np.nan)
        sel = et == _EV["registered_capital_change"]
        amt[sel] = np.round(cap[sel] * rng.uniform(1.2, 3.0, sel.sum()) / 1e4) * 1e4
        sel = et == _EV["equity_pledge"]
        amt[sel] = np.round(cap[sel] * rng.uniform(0.2, 0.8, sel.sum()) / 100) * 100
        sel = et == _EV["admin_penalty"]
        amt[sel] = np.round(rng.uniform(1e3, 5e4, sel.sum()) / 100) * 100
        add(firm, _randint(rng, 0, M - 1, k), et, amt)

        # Distress chain: court judgment, enforcement, dishonest-debtor listing, abnormal
        # operation; recovered firms keep only what came before recovery.
        d = np.nonzero(f.distressed)[0]
        s, R = f.start[d], f.recover_at[d]
        rev = f.base_rev[d]
        court = s + _randint(rng, 2, 5, len(d))
        has_court = rng.random(len(d)) < 0.85
        enf = court + _randint(rng, 1, 3, len(d))
        has_enf = has_court & (rng.random(len(d)) < 0.7)
        dis = enf + _randint(rng, 1, 3, len(d))
        has_dis = has_enf & (rng.random(len(d)) < 0.6)
        abn = s + _randint(rng, 3, 8, len(d))
        has_abn = rng.random(len(d)) < 0.5
        claim = np.round(rev * rng.uniform(0.5, 3.0, len(d)) / 100) * 100
        for has, month, etype in (
            (has_court, court, "court_judgment_defendant"),
            (has_enf, enf, "enforcement_listed"),
            (has_dis, dis, "dishonest_debtor_listed"),
        ):
            sel = has & (month < R)
            add(d[sel], month[sel], _EV[etype], claim[sel])
        sel = has_abn & (abn < R)
        add(d[sel], abn[sel], _EV["abnormal_operation_listed"], np.nan)
        sel = sel & (R < BIG)
        add(d[sel], np.maximum(R[sel], abn[sel]) + _randint(rng, 1, 2, sel.sum()),
            _EV["abnormal_operation_removed"], np.nan)  # fmt: skip
        dis_m = np.where(has_dis & (dis < R), dis, BIG)
        f.dishonest_m[d] = dis_m

        # Diverters that default get sued; failed firms get a status change.
        dd = np.nonzero(f.diverter_defaults & (rng.random(n) < 0.5))[0]
        add(dd, f.stop_from[dd] + _randint(rng, 4, 8, len(dd)),
            _EV["court_judgment_defendant"],
            np.round(f.base_rev[dd] * rng.uniform(1, 4, len(dd)) / 100) * 100)  # fmt: skip
        st = np.nonzero((f.status > 0) & (f.active_until < BIG))[0]
        add(st, f.active_until[st], _EV["status_change"], np.nan)

        firm = np.concatenate(firms_l)
        month = np.concatenate(month_l)
        etype = np.concatenate(type_l)
        amount = np.concatenate(amount_l)
        day = cal.month_start(np.minimum(month, M + 12)) + _randint(rng, 0, 27, len(firm))
        keep = (day <= cal.end_day) & (month >= 0)
        firm, etype, amount, day = firm[keep], etype[keep], amount[keep], day[keep]
        order = np.lexsort((day, firm))
        firm, etype, amount, day = firm[order], etype[order], amount[order], day[order]
        # Exact days the listing / status change reached the data (applications screen on them).
        self.dishonest_day = np.full(n, BIG * 100, dtype=np.int64)
        sel = etype == _EV["dishonest_debtor_listed"]
        np.minimum.at(self.dishonest_day, firm[sel], day[sel])
        self.status_day = np.full(n, BIG * 100, dtype=np.int64)
        sel = etype == _EV["status_change"]
        np.minimum.at(self.status_day, firm[sel], day[sel])
        desc = pl.Series(names.EVENT_TEXT).gather(etype)
        sc = np.nonzero(etype == _EV["status_change"])[0]
        if len(sc):
            desc = desc.scatter(sc, pl.Series(names.STATUS_TEXT).gather(f.status[firm[sc]]))
        self.tables["registry_events"] = pl.DataFrame(
            {
                "event_id": self._row_ids("EV", len(firm)),
                "enterprise_id": f.ids.gather(firm),
                "event_date": _dates(day),
                "event_type": _pick(EVENT_TYPES, etype),
                "amount": _money(np.nan_to_num(np.round(amount * 100)), null=np.isnan(amount)),
                "description": desc,
            }
        )

    # -- schedule and repayments --------------------------------------------------------------
    def _repayments(self) -> None:
        rng, f, cal, lo = self.rng, self.firms, self.cal, self.loans
        term = lo["term"]
        loan, pos = _group_positions(term)
        inst = pos + 1
        nrow = len(loan)
        P = lo["principal_c"][loan].astype(np.float64)
        mr = lo["rate"][loan] / 12
        n_l = term[loan]
        bullet = lo["bullet"][loan]
        # Annuity principal parts, rounded to fen; the last installment takes the remainder.
        annuity = P * mr / (1 - (1 + mr) ** (-n_l))
        prin = np.round((annuity - P * mr) * (1 + mr) ** (inst - 1))
        prin = np.where(bullet, np.where(inst == n_l, P, 0.0), prin)
        last = inst == n_l
        total_before_last = np.bincount(loan, weights=np.where(last, 0, prin), minlength=len(term))
        prin = np.where(last, lo["principal_c"][loan] - total_before_last[loan], prin)
        cum = np.cumsum(prin)
        starts = np.cumsum(term) - term
        paid_before = cum - prin - (cum - prin)[starts][loan]
        interest = np.round((P - paid_before) * mr)
        due_m = lo["disb_m"][loan] + inst
        due_day = cal.month_start(due_m) + lo["dom"][loan] - 1
        self.tables["repayment_schedule"] = pl.DataFrame(
            {
                "loan_id": lo["ids"].gather(loan),
                "installment_no": pl.Series(inst, dtype=pl.Int32),
                "due_date": _dates(due_day),
                "principal_due": _money(prin),
                "interest_due": _money(interest),
            }
        )

        # What each installment receives.
        firm = lo["firm"][loan]
        total = prin + interest
        rec = due_m >= f.recover_at[firm]
        none = (due_m >= f.stop_from[firm]) & ~rec
        part = (due_m >= f.partial_from[firm]) & ~none & ~rec
        stressed = (due_m >= f.start[firm]) & ~none & ~part & ~rec & (rng.random(nrow) < 0.4)
        u = rng.random(nrow)
        offset = np.where(
            u < 0.08, -_randint(rng, 3, 20, nrow),
            np.where(u < 0.12, _randint(rng, 1, 15, nrow),
                     np.where(u < 0.125, _randint(rng, 20, 60, nrow), -_randint(rng, 0, 2, nrow))),
        )  # fmt: skip
        offset = np.where(stressed, _randint(rng, 5, 45, nrow), offset)
        offset = np.where(part, _randint(rng, 0, 20, nrow), offset)
        amount = np.where(part, np.round(total * rng.uniform(0.2, 0.7, nrow)), total)
        amount = np.where(none, 0, amount)
        bd = lo["bullet_default"][loan] & last
        frac = np.where(rng.random(nrow) < 0.5, 0.0, rng.uniform(0.05, 0.3, nrow))
        amount = np.where(bd, interest + np.round(prin * frac), amount)
        day = due_day + offset
        day = np.maximum(day, lo["disb_day"][loan] + 1)
        present = (amount > 0) & (day <= cal.end_day)

        # Recovered firms catch up their arrears once, shortly after recovery.
        R = f.recover_at[firm]
        rec_day = cal.month_start(np.minimum(R, self.M + 12)) + 5 + (firm % 20)
        short = np.where((R < BIG) & (due_day < rec_day), total - np.where(present, amount, 0), 0)
        catch = np.bincount(loan, weights=short, minlength=len(term))
        lf = lo["firm"]
        c_day = cal.month_start(np.minimum(f.recover_at[lf], self.M + 12)) + 5 + (lf % 20)
        c_ok = (catch > 0) & (c_day <= cal.end_day)

        p_loan = np.concatenate([loan[present], np.nonzero(c_ok)[0]])
        p_day = np.concatenate([day[present], c_day[c_ok]])
        p_amt = np.concatenate([amount[present], catch[c_ok]])
        order = np.lexsort((p_day, p_loan))
        p_loan, p_day, p_amt = p_loan[order], p_day[order], p_amt[order]
        p_loan, p_day, p_amt = self._recoveries(loan, total, due_day, p_loan, p_day, p_amt)
        self.tables["repayments"] = pl.DataFrame(
            {
                "payment_id": self._row_ids("PM", len(p_loan)),
                "loan_id": lo["ids"].gather(p_loan),
                "payment_date": _dates(p_day),
                "amount": _money(p_amt),
            }
        )
        # Loan-level truth: first month the loan stops being paid in full (if any).
        short_m = np.where(part | none | bd, due_m, BIG)
        first_short = np.full(len(term), BIG)
        np.minimum.at(first_short, loan, short_m)
        self.loan_first_short = first_short
        # self.loan_default_day was set by _recoveries (they come after it, so it holds).

    def _recoveries(self, loan, due, due_day, p_loan, p_day, p_amt):
        """Add the bank's recoveries on defaulted loans of firms that never got back on their
        feet: 4-12 months after the default day, a secured loan (collateral, or a government
        fund / third-party company guarantee) is settled in full by the collateral sale or the
        guarantee claim; an unsecured one gets a partial recovery (20-50% of what remains).
        Payments stay sorted by (loan, day); recoveries are dated <= the end month's last day."""
        rng, f, lo, cal = self.rng, self.firms, self.loans, self.cal
        n_loans = len(lo["firm"])
        dday = self._default_days(loan, due, due_day, p_loan, p_amt, p_day)
        # Recoveries come >= 122 days after the default day and only drop payments dated
        # after themselves, so no loan's default day moves: it is the truth's default_date.
        self.loan_default_day = dday
        secured = (lo["coll"] > 0) | (lo["guar"] == 1) | (lo["guar"] == 2)
        r_day = dday + _randint(rng, 122, 365, n_loans)
        ok = (dday < BIG * 100) & (f.recover_at[lo["firm"]] >= BIG) & (r_day <= cal.end_day)
        # Regular payments after the recovery (none are expected) would double-count: drop.
        keep = ~(ok[p_loan] & (p_day > r_day[p_loan]))
        p_loan, p_day, p_amt = p_loan[keep], p_day[keep], p_amt[keep]
        remaining = np.bincount(loan, weights=due, minlength=n_loans) - np.bincount(
            p_loan, weights=p_amt, minlength=n_loans
        )
        frac = np.where(secured, 1.0, rng.uniform(0.2, 0.5, n_loans))
        r_amt = np.where(secured, remaining, np.round(remaining * frac))
        ok &= r_amt > 0
        rtype = np.where(secured, np.where(lo["coll"] > 0, 1, 2), 3)
        self.loan_recovery = (np.where(ok, r_day, BIG * 100), np.where(ok, rtype, 0),
                              np.where(ok, r_amt, 0))  # fmt: skip
        r_idx = np.nonzero(ok)[0]
        p_loan = np.concatenate([p_loan, r_idx])
        p_day = np.concatenate([p_day, r_day[r_idx]])
        p_amt = np.concatenate([p_amt, r_amt[r_idx]])
        order = np.lexsort((p_day, p_loan))
        return p_loan[order], p_day[order], p_amt[order]

    def _default_days(self, loan, due, due_day, p_loan, p_amt, p_day) -> np.ndarray:
        """Default day of each loan by the end of the window (data-contract section 3: the
        first due + 91 of an installment not settled by then), or BIG when none; installments
        are settled when cumulative payments cover their cumulative due."""
        n_loans = len(self.loans["firm"])
        key = np.int64(10**12)  # > any loan's cumulative fen; keeps loans apart when sorted
        cum_due = np.cumsum(due) - np.repeat(
            (np.cumsum(due) - due)[np.cumsum(self.loans["term"]) - self.loans["term"]],
            self.loans["term"],
        )
        counts = np.bincount(p_loan, minlength=n_loans)
        starts = np.cumsum(counts) - counts
        before = np.append(np.cumsum(p_amt) - p_amt, 0)  # padded: loans without payments
        cum_paid = np.cumsum(p_amt) - np.repeat(before[starts], counts)
        k_paid = p_loan.astype(np.int64) * key + cum_paid.astype(np.int64)
        k_due = loan.astype(np.int64) * key + cum_due.astype(np.int64)
        idx = np.searchsorted(k_paid, k_due, side="left")
        ok = idx < len(k_paid)
        ok[ok] = p_loan[idx[ok]] == loan[ok]
        safe = np.append(p_day, BIG * 100)  # sentinel so an empty payment list indexes
        settled = np.where(ok, safe[np.minimum(idx, len(p_day))], BIG * 100)
        dday = due_day + 91
        defaulted = (settled > dday) & (dday <= self.cal.end_day)
        out = np.full(n_loans, BIG * 100, dtype=np.int64)
        np.minimum.at(out, loan[defaulted], dday[defaulted])
        return out

    def _fund_flows(self) -> None:
        rng, lo, cal = self.rng, self.loans, self.cal
        L = len(lo["firm"])
        n_norm = _randint(rng, 2, 5, L)
        n_div = np.where(lo["diverted"], _randint(rng, 1, 3, L), 0)
        cnt = n_norm + n_div
        loan, pos = _group_positions(cnt)
        k = len(loan)
        is_div = pos < n_div[loan]
        w = rng.uniform(0.2, 1.0, k)
        wsum_div = np.bincount(loan, weights=np.where(is_div, w, 0), minlength=L)
        wsum_norm = np.bincount(loan, weights=np.where(is_div, 0, w), minlength=L)
        P = lo["principal_c"].astype(np.float64)
        div_total = np.where(lo["diverted"], P * rng.uniform(0.5, 0.85, L), 0)
        norm_total = (P - div_total) * rng.uniform(0.6, 0.95, L)
        amt = np.where(
            is_div,
            div_total[loan] * w / np.maximum(wsum_div[loan], 1e-9),
            norm_total[loan] * w / np.maximum(wsum_norm[loan], 1e-9),
        )
        amt = np.maximum(np.round(amt), 1)
        cp_norm = rng.choice(len(NORMAL_COUNTERPARTIES), size=k, p=[0.5, 0.15, 0.05, 0.05, 0.25])
        cp_div = rng.choice(len(DIVERTING_COUNTERPARTIES), size=k, p=[0.25, 0.25, 0.2, 0.2, 0.1])
        all_cp = NORMAL_COUNTERPARTIES + DIVERTING_COUNTERPARTIES
        cp = np.where(is_div, len(NORMAL_COUNTERPARTIES) + cp_div, cp_norm)
        lag = np.where(is_div, _randint(rng, 1, 10, k), _randint(rng, 0, 60, k))
        day = lo["disb_day"][loan] + lag
        keep = day <= cal.end_day
        loan, day, amt, cp = loan[keep], day[keep], amt[keep], cp[keep]
        no_cp = np.isin(cp, [all_cp.index(c) for c in ("tax", "cash", "payroll")])
        cp_id = _ids("CP", rng.integers(0, 10**8, len(loan)), 8)
        cp_id = pl.select(pl.when(pl.Series(no_cp)).then(None).otherwise(cp_id)).to_series()
        self.tables["fund_flows"] = pl.DataFrame(
            {
                "flow_id": self._row_ids("FF", len(loan)),
                "loan_id": lo["ids"].gather(loan),
                "txn_date": _dates(day),
                "amount": _money(amt),
                "counterparty_type": _pick(all_cp, cp),
                "counterparty_id": cp_id,
            }
        )

    def _applications(self) -> None:
        """Loan applications over the whole window, a bank's normal flow:

        - `loan`: about 40% of the loans contracted in the window came through the
          application system (the rest are renewals and branch deals it does not record); the
          application is dated 3-35 days before the contract date, for the loan's product,
          purpose and term and a little more than the granted principal. Distressed firms'
          loans predate their distress (1-24 months), so some approved applicants default later.
        - `historic`: applications that never became a loan (declined, withdrawn), dated up to
          90 days before the end: every firm a small monthly rate, firms in distress
          (searching for credit) and firms 3-12 months before their distress more.
        - `pending`: applications in the last 90 days, the early-warning engine's trigger.

        Truth `applications.parquet` labels each on what was known at its date
        (`should_decline`: distress at least a month old, a dishonest-debtor listing or a
        suspension / revocation already in the registry data) and adds what a back-test
        needs: the firm's distress start and the months from the application to it, whether
        the firm had a loan in default before applying, its first loan default after the
        application and `defaulted_within_12m`, with `outcome_complete_12m` when the 12 months
        lie inside the window. Cancelled firms never apply (they no longer exist at the end).
        """
        rng, f, n, cal, M, lo = self.rng, self.firms, self.n, self.cal, self.M, self.loans
        alive = f.status != 3

        # Applications that became loans.
        L = len(lo["firm"])
        l_day = lo["contract_day"] - _randint(rng, 3, 35, L)
        linked = np.nonzero((rng.random(L) < 0.4) & (l_day >= cal.start_day))[0]
        req = np.round(lo["principal_c"][linked] / 100 * rng.uniform(1.0, 1.3, len(linked)) / 1e4)
        l_amount = np.maximum(req * 1e4, lo["principal_c"][linked] / 100)

        # Historic applications that did not become loans.
        hist_end = cal.end_day - 90
        base = np.where(alive, rng.poisson(0.002 * M, n), 0)
        h_firm, _ = _group_positions(base)
        h_day = _randint(rng, cal.start_day, hist_end, len(h_firm))
        d = np.nonzero(f.distressed & alive)[0]
        dur_end = np.minimum(f.recover_at[d], M) - 1
        during = rng.random(len(d)) < 0.5
        d_m = _randint(rng, f.start[d], np.maximum(dur_end, f.start[d]))
        before = rng.random(len(d)) < 0.3
        b_m = f.start[d] - _randint(rng, 3, 12, len(d))
        extra_firm = np.concatenate([d[during], d[before]])
        extra_m = np.concatenate([d_m[during], b_m[before]])
        ok = (extra_m >= 0) & (extra_m <= M - 1)
        extra_firm, extra_m = extra_firm[ok], extra_m[ok]
        ms, me = cal.month_start(extra_m), cal.month_end(extra_m)
        extra_day = ms + np.floor(rng.random(len(extra_m)) * (me - ms + 1)).astype(np.int64)
        keep = extra_day <= hist_end
        h_firm = np.concatenate([h_firm, extra_firm[keep]])
        h_day = np.concatenate([h_day, extra_day[keep]])

        # Pending applications in the last 90 days (troubled firms try harder).
        p_day = cal.end_day - _randint(rng, 0, 89, n)
        known = self._declinable(np.arange(n), p_day)
        p = np.where(known, 0.2, 0.015)
        p_firm = np.nonzero(alive & (rng.random(n) < p))[0]
        p_day = p_day[p_firm]

        nh, npd = len(h_firm), len(p_firm)
        firm = np.concatenate([lo["firm"][linked], h_firm, p_firm])
        day = np.concatenate([l_day[linked], h_day, p_day])
        origin = np.repeat(np.array([0, 1, 2]), [len(linked), nh, npd])
        loan = np.concatenate([linked, np.full(nh + npd, -1)])
        k = len(firm)
        product = np.concatenate(
            [lo["product"][linked], rng.choice(len(PRODUCTS), size=nh + npd, p=_PRODUCT_P)]
        )
        purpose = np.concatenate(
            [lo["purpose"][linked], _choice_rows(rng, _PURPOSE_P, product[len(linked) :])]
        )
        amount = np.concatenate([
            l_amount,
            np.clip(np.round(f.base_rev[firm[len(linked):]] * 12
                             * rng.uniform(0.05, 0.3, nh + npd) / 1e4) * 1e4, 5e4, 1e7),
        ])  # fmt: skip
        term = np.concatenate(
            [lo["term"][linked], rng.choice(np.array([6, 12, 12, 24, 36]), size=nh + npd)]
        )
        no_product = rng.random(k) < 0.1

        order = np.lexsort((firm, day))
        firm, day, origin, loan = firm[order], day[order], origin[order], loan[order]
        product, purpose, amount = product[order], purpose[order], amount[order]
        term, no_product = term[order], no_product[order]
        ids = self._row_ids("AP", k)
        self.tables["loan_applications"] = pl.DataFrame(
            {
                "application_id": ids,
                "enterprise_id": f.ids.gather(firm),
                "application_date": _dates(day),
                "requested_amount": _money(np.round(amount * 100)),
                "requested_term_months": pl.Series(term, dtype=pl.Int32),
                "requested_product": _pick(PRODUCTS, product),
                "purpose": _pick(PURPOSES, purpose),
            }
        ).with_columns(
            pl.when(pl.Series(no_product))
            .then(None)
            .otherwise(pl.col("requested_product"))
            .alias("requested_product")
        )

        app_m = self._local_month(day)
        ongoing, dishonest, bad_status = self._declinable(firm, day, parts=True)
        # Loan defaults around the application: (firm, default day) sorted, then per
        # application the first default after its date and whether one came before.
        key = np.int64(10**7)
        dd = self.loan_default_day
        hit = dd < BIG * 100
        keys = np.sort(lo["firm"][hit].astype(np.int64) * key + dd[hit])
        kd = np.append(keys, np.iinfo(np.int64).max)
        i = np.searchsorted(keys, firm * key + day, side="right")
        nxt = kd[i]
        after = np.where(nxt // key == firm, nxt - firm * key, BIG * 100)
        prev = kd[np.maximum(i - 1, 0)]
        before_default = (i > 0) & (prev // key == firm)
        no_after = after >= BIG * 100
        labels = pl.Series([cal.label(m) for m in range(-72, M + 72)] + [None])
        start = f.start[firm]
        distressed = start < BIG
        self.truth["applications"] = pl.DataFrame(
            {
                "application_id": ids,
                "enterprise_id": f.ids.gather(firm),
                "application_date": _dates(day),
                "application_month": labels.gather(app_m + 72),
                "origin": _pick(("loan", "historic", "pending"), origin),
                "loan_id": lo["ids"]
                .gather(np.maximum(loan, 0))
                .scatter(np.nonzero(loan < 0)[0], None),
                "distress_start_month": labels.gather(
                    np.where(distressed, start + 72, len(labels) - 1)
                ),
                "months_to_distress": pl.Series(
                    np.where(distressed, start - app_m, 0), dtype=pl.Int32
                ).scatter(np.nonzero(~distressed)[0], None),
                "distress_ongoing": ongoing,
                "dishonest_debtor_listed": dishonest,
                "bad_status": bad_status,
                "should_decline": ongoing | dishonest | bad_status,
                "defaulted_before": before_default,
                "first_default_after": _dates(after, null=no_after),
                "defaulted_within_12m": ~no_after & (after <= day + 365),
                "outcome_complete_12m": day + 365 <= cal.end_day,
            }
        )

    def _local_month(self, day: np.ndarray) -> np.ndarray:
        """Local month index of day numbers."""
        g = np.asarray(day, dtype=np.int64).astype("datetime64[D]").astype("datetime64[M]")
        return g.astype(np.int64) + 1970 * 12 - self.cal.g0

    def _declinable(self, firm: np.ndarray, day: np.ndarray, parts: bool = False):
        """Clearly declinable at `day` on what was known then: distress at least one full
        month old and not yet recovered, a dishonest-debtor listing or a suspension /
        revocation already in the registry data (by its event date)."""
        f = self.firms
        m = self._local_month(day)
        ongoing = f.distressed[firm] & (f.start[firm] < m) & (f.recover_at[firm] > m)
        dishonest = self.dishonest_day[firm] <= day
        bad_status = np.isin(f.status[firm], (1, 2)) & (self.status_day[firm] <= day)
        if parts:
            return ongoing, dishonest, bad_status
        return ongoing | dishonest | bad_status

    def _truth_enterprises(self) -> None:
        f, cal, lo = self.firms, self.cal, self.loans

        def month_label(m: np.ndarray) -> pl.Series:
            labels = pl.Series([cal.label(i) for i in range(-72, self.M + 72)] + [None])
            return labels.gather(np.where(m >= BIG, len(labels) - 1, m + 72))

        first_default = np.full(self.n, BIG * 100, dtype=np.int64)
        np.minimum.at(first_default, lo["firm"], self.loan_default_day)
        self.truth["enterprises"] = pl.DataFrame(
            {
                "enterprise_id": f.ids,
                "industry_code": _pick(INDUSTRY_SECTIONS, f.industry),
                "size_class": _pick(SIZES, f.size),
                "status": _pick(STATUSES, f.status),
                "is_distressed": f.distressed,
                "distress_start_month": month_label(f.start),
                "recovered": f.recovered,
                "recovery_month": month_label(f.recover_at),
                "repayment_partial_from_month": month_label(f.partial_from),
                "repayment_stop_month": month_label(f.stop_from),
                "dishonest_debtor_month": month_label(f.dishonest_m),
                "is_diverter": f.diverter,
                "diverter_defaults": f.diverter_defaults,
                "liquidity_stress": f.liquidity,
                "industry_downturn_affected": f.industry == _DOWNTURN_IDX,
                "is_borrower": f.borrower,
                "first_default_date": _dates(first_default, null=first_default >= BIG * 100),
                "expected_default": (f.distressed & ~f.recovered)
                | f.diverter_defaults
                | f.liquidity,
            }
        )
        firm = lo["firm"]
        no_default = self.loan_default_day >= BIG * 100
        r_day, r_type, r_amt = self.loan_recovery
        scenario = np.full(len(firm), "performing", dtype=object)
        scenario[f.distressed[firm]] = "distress_default"
        scenario[f.distressed[firm] & (self.loan_first_short >= BIG)] = "distress_unaffected"
        scenario[f.distressed[firm] & f.recovered[firm]] = "distress_recovered"
        scenario[f.diverter[firm]] = "diverter_other_loan"
        scenario[lo["diverted"] & f.diverter_defaults[firm]] = "diversion_default"
        scenario[lo["diverted"] & ~f.diverter_defaults[firm]] = "diversion_performing"
        scenario[lo["bullet_default"]] = "bullet_principal_default"
        self.truth["loans"] = pl.DataFrame(
            {
                "loan_id": lo["ids"],
                "enterprise_id": f.ids.gather(firm),
                "scenario": pl.Series(scenario.astype(str)),
                "funds_diverted": lo["diverted"],
                "bullet_principal_default": lo["bullet_default"],
                "first_short_payment_month": month_label(self.loan_first_short),
                "expected_shortfall": self.loan_first_short < BIG,
                "default_date": _dates(self.loan_default_day, null=no_default),
                "recovery_date": _dates(r_day, null=r_type == 0),
                "recovery_type": pl.Series([None, *RECOVERY_TYPES[1:]], dtype=pl.String).gather(
                    r_type
                ),
                "recovery_amount": _money(r_amt, null=r_type == 0),
            }
        )


# --- writing -----------------------------------------------------------------------------


def _write(df: pl.DataFrame, path: Path, fmt: str) -> None:
    table = TABLES[path.parent.name]
    df = df.select(table.column_names)
    if fmt == "csv":
        df.write_csv(path)
    else:
        df.write_parquet(path, compression="zstd", statistics=True)


def generate(
    out_dir: Path,
    n_enterprises: int,
    seed: int,
    fmt: str = "csv",
    end_month: str = "2026-10",
    months: int = 36,
    files_per_table: int | None = None,
) -> GenerationSummary:
    """Write a contract-conformant landing directory to `out_dir` and ground truth to
    `<out_dir>_truth/`; deterministic for the same arguments.

    Enterprises are generated in chunks (CHUNK_SIZE, or n / files_per_table when given), one
    file per table per chunk, each chunk with its own random stream seeded by (seed, chunk):
    the chunking is part of "the same arguments". Previous `part-*` files in the table
    folders are replaced. Tax filings and utility payments may be dated up to 20 days after
    the end month (the delivery date); loan payments, fund flows, events, applications and
    disbursements never after its last day. Truth files: enterprises, loans, applications
    (parquet) and meta.json (window, CNY months, downturn industry and start).
    """
    if fmt not in ("csv", "parquet"):
        raise ValueError(f"fmt must be 'csv' or 'parquet', got {fmt!r}")
    if n_enterprises < 1:
        raise ValueError("n_enterprises must be at least 1")
    t0 = time.perf_counter()
    out_dir = Path(out_dir)
    truth_dir = out_dir.parent / (out_dir.name + "_truth")
    cal = Calendar(end_month, months)
    chunk = CHUNK_SIZE if files_per_table is None else math.ceil(n_enterprises / files_per_table)
    n_chunks = math.ceil(n_enterprises / chunk)

    for name in TABLES:
        folder = out_dir / name
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.glob("part-*"):
            old.unlink()
    truth_dir.mkdir(parents=True, exist_ok=True)

    rows = dict.fromkeys(TABLES, 0)
    files: dict[str, list[Path]] = {name: [] for name in TABLES}
    truth: dict[str, list[pl.DataFrame]] = {}
    for c in range(n_chunks):
        offset = c * chunk
        ch = _Chunk(cal, seed, c, offset, min(chunk, n_enterprises - offset))
        ch.build()
        for name, df in ch.tables.items():
            path = out_dir / name / f"part-{c:05d}.{fmt}"
            _write(df, path, fmt)
            rows[name] += df.height
            files[name].append(path)
        for name, df in ch.truth.items():
            truth.setdefault(name, []).append(df)
        del ch

    for name, parts in truth.items():
        pl.concat(parts).write_parquet(truth_dir / f"{name}.parquet")
    meta = {
        "seed": seed,
        "n_enterprises": n_enterprises,
        "end_month": end_month,
        "months": months,
        "window": [cal.label(0), cal.label(months - 1)],
        "downturn_industry": DOWNTURN_INDUSTRY,
        "downturn_start_month": cal.label(months - DOWNTURN_MONTHS_BEFORE_END),
        "cny_months": [cal.label(int(m)) for m in np.nonzero(
            cal.cny_month_mask(np.arange(months)))[0]],
        "diverting_counterparties": list(DIVERTING_COUNTERPARTIES),
        "snapshot_date": str(np.datetime64(cal.end_day + 20, "D")),
        "rows": rows,
    }  # fmt: skip
    (truth_dir / "meta.json").write_text(json.dumps(meta, indent=2))
    return GenerationSummary(
        out_dir=out_dir,
        truth_dir=truth_dir,
        rows=rows,
        seconds=time.perf_counter() - t0,
        files=files,
    )
