"""Enterprises and their latent story, and the monthly revenue path every other table
follows (tax, utilities, loan sizes).

Each firm gets an industry, region, size, base monthly revenue, registration data (USCC,
legal representative) and a story: distress (more likely and later in the downturn
industry) at one of four speeds (synthetic.noise: sudden, fast, normal, slow), recovery,
repayment trouble, failure (suspended / revoked), loan-fund diversion, a liquidity-stressed
bullet loan, and its benign noise (synthetic.noise.assign_firms). `build_revenue` turns it
into a monthly revenue path with growth, seasonality (Chinese New Year dip; strongly seasonal
businesses), month-to-month noise, one-off dips, years of shrinking, the distress decline
(from when distress shows, at the firm's pace) and the downturn.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from assets.contract import INDUSTRY_SECTIONS
from synthetic import names, noise
from synthetic.common import (
    BIG,
    DOWNTURN_IDX,
    DOWNTURN_MONTHS_BEFORE_END,
    IND_W,
    SIZES,
    STATUSES,
    Chunk,
    Firms,
    dates,
    id_check,
    money,
    pick,
    randint,
    uscc_codes,
)
from synthetic.noise import SEASON_PEAK

#: Probability that a firm falls into distress in the window, plus the downturn industry's
#: extra (a real SME book: a few percent of firms, the downturn industry clearly worse).
BASE_DISTRESS_P = 0.035
DOWNTURN_DISTRESS_P = 0.05


def build_enterprises(ch: Chunk) -> None:
    """Landing `enterprises` and each firm's latent story (`ch.firms`)."""
    rng, n, M = ch.rng, ch.n, ch.M
    gidx = ch.offset + np.arange(n, dtype=np.int64)
    industry = rng.choice(len(INDUSTRY_SECTIONS), size=n, p=IND_W)
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
    employees = randint(rng, emp_lo, emp_hi)
    cap = base_rev * 12 * rng.uniform(0.05, 0.6, n)
    cap = np.maximum(np.round(cap / 1e4) * 1e4, 1e4)
    established = ch.cal.start_day - randint(rng, 2 * 365, 20 * 365, n)  # before any loan

    # USCC: '9' (market regulator) '1' (company), region, 9-char code from a bijection
    # of the global index (so codes are unique for any chunking), then the check char.
    space = 31**9
    v = (gidx * 12_345_678_911 + (ch.seed * 2_654_435_761) % space) % space  # < 7e8 firms
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
    in_down = industry == DOWNTURN_IDX
    d0 = M - DOWNTURN_MONTHS_BEFORE_END
    distressed = u < BASE_DISTRESS_P + DOWNTURN_DISTRESS_P * in_down
    start = np.where(u < BASE_DISTRESS_P, randint(rng, 3, M - 3, n), randint(rng, d0, M - 3, n))
    start = np.where(distressed, start, BIG)
    rec_lag = randint(rng, 5, 12, n)
    recovered = distressed & (rng.random(n) < ch.noise.recovery) & (start + rec_lag <= M - 2)
    recover_at = np.where(recovered, start + rec_lag, BIG)
    partial_from = np.where(distressed, start + randint(rng, 3, 6, n), BIG)
    stop_from = np.where(distressed, partial_from + randint(rng, 1, 3, n), BIG)

    borrower = rng.random(n) < np.where(distressed, 0.5, 0.4)
    diverter = borrower & ~distressed & (rng.random(n) < 0.011)
    diverter_defaults = diverter & (rng.random(n) < 0.8)
    liquidity = borrower & ~distressed & ~diverter & (rng.random(n) < 0.012)

    # Benign noise and the speed of distress (own stream; see synthetic.noise).
    nrng = ch.nrng
    fn = noise.assign_firms(
        nrng, ch.noise, np.array(INDUSTRY_SECTIONS)[industry], distressed,
        ~distressed & ~diverter & ~liquidity, ch.lrng,
    )  # fmt: skip
    sudden_lag = randint(nrng, 0, 2, n)
    fast_lag = randint(nrng, 0, 1, n)
    slow_lag = randint(nrng, 9, 18, n)
    slow_stop = randint(nrng, 2, 6, n)
    sp = fn.speed
    # Sudden: full payments, then none 0-2 months after the onset; nothing shows before.
    # Like the others, some recover (5-12 months after the onset: a default, then a cure).
    sudden = sp == noise.SUDDEN
    partial_from = np.where(sudden, start + sudden_lag, partial_from)
    stop_from = np.where(sudden, partial_from, stop_from)
    fast, slow = sp == noise.FAST, sp == noise.SLOW
    partial_from = np.where(fast, start + fast_lag, np.where(slow, start + slow_lag, partial_from))
    stop_from = np.where(slow, partial_from + slow_stop, stop_from)
    stop_from = np.where(fast, partial_from + 1, stop_from)
    visible = np.where(sudden, stop_from + 1, start)
    pace = np.where(distressed, noise.PACE[np.maximum(sp, 0)], 1.0)

    # Status at the snapshot: some failed firms are suspended or revoked (their data
    # stops), a few healthy non-borrowers are cancelled.
    status = np.zeros(n, dtype=np.int64)
    active_until = np.full(n, BIG)
    fail_m = stop_from + randint(rng, 2, 8, n)
    fails = distressed & ~recovered & (rng.random(n) < 0.35) & (fail_m <= M - 1)
    status[fails] = np.where(rng.random(fails.sum()) < 0.4, 2, 1)
    active_until[fails] = fail_m[fails]
    cancel = ~distressed & ~borrower & (rng.random(n) < 0.004)
    status[cancel] = 3
    active_until[cancel] = randint(rng, 6, M - 1, cancel.sum())

    emp_null = rng.random(n) < 0.02
    city_names = [c[1] for c in names.CITIES]
    ind_words = [names.INDUSTRY_WORDS[s] for s in INDUSTRY_SECTIONS]
    brand = rng.integers(0, len(names.BRANDS), size=n)
    name = pl.select(
        pl.concat_str(
            [
                pick(city_names, region),
                pick(names.BRANDS, brand),
                pick(ind_words, industry),
                pl.lit("有限公司"),
            ]
        )
    ).to_series()
    rep = pl.select(
        pl.concat_str(
            [
                pick(names.SURNAMES, rng.integers(0, len(names.SURNAMES), n)),
                pick(names.GIVEN, rng.integers(0, len(names.GIVEN), n)),
            ]
        )
    ).to_series()
    birth = (np.datetime64("1960-01-01") + randint(rng, 0, 35 * 365, n)).astype("O")
    ymd = np.array([b.year * 10000 + b.month * 100 + b.day for b in birth], dtype=np.int64)
    id17 = np.empty((n, 17), dtype=np.int64)
    for j in range(6):
        id17[:, j] = (region_code // 10 ** (5 - j)) % 10
    for j in range(8):
        id17[:, 6 + j] = (ymd // 10 ** (7 - j)) % 10
    seq = rng.integers(0, 1000, n)
    for j in range(3):
        id17[:, 14 + j] = (seq // 10 ** (2 - j)) % 10
    id_bytes = np.concatenate([(id17 + ord("0")).astype(np.uint8), id_check(id17)[:, None]], axis=1)
    id_number = id_bytes.view("S18").ravel().astype("U18")

    ch.tables["enterprises"] = pl.DataFrame(
        {
            "enterprise_id": ids,
            "name": name,
            "industry_code": pick(INDUSTRY_SECTIONS, industry),
            "region_code": pl.Series(region_code).cast(pl.String),
            "established_date": dates(established),
            "registered_capital": money(np.round(cap * 100)),
            "employees": pl.Series(np.where(emp_null, -1, employees), dtype=pl.Int32),
            "size_class": pick(SIZES, size),
            "status": pick(STATUSES, status),
            "legal_rep_name": rep,
            "legal_rep_id_number": pl.Series(id_number),
        }
    ).with_columns(
        pl.when(pl.col("employees") < 0)
        .then(None)
        .otherwise(pl.col("employees"))
        .alias("employees")
    )
    ch.region_code = region_code
    ch.firms = Firms(
        gidx=gidx, ids=ids, industry=industry, region=region, size=size,
        base_rev=base_rev, distressed=distressed, start=start, recovered=recovered,
        recover_at=recover_at, partial_from=partial_from, stop_from=stop_from,
        active_until=active_until, status=status, borrower=borrower, diverter=diverter,
        diverter_defaults=diverter_defaults, liquidity=liquidity,
        dishonest_m=np.full(n, BIG), visible=visible, pace=pace, noise=fn,
    )  # fmt: skip


def build_revenue(ch: Chunk) -> None:
    """Monthly revenue (yuan) for local months -2..M-1 (two extra for the first CIT
    quarter) and an activity factor that drives utility consumption."""
    rng, f, n, M = ch.rng, ch.firms, ch.n, ch.M
    m = np.arange(-2, M)
    T = len(m)
    moy = ch.cal.month_of_year(m)
    cny = ch.cal.cny_month_mask(m)
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

    # Distress: exponential decline to a floor (from when it shows, at the firm's pace);
    # recovered firms climb back.
    s = f.visible[:, None]
    rate = rng.uniform(0.10, 0.25, (n, 1)) * f.pace[:, None]
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
    down = np.where((f.industry == DOWNTURN_IDX)[:, None], down, 1.0)

    lm = ch.liq_mat[:, None]
    liq = 1 - rng.uniform(0.15, 0.3, (n, 1)) * np.clip((m[None, :] - (lm - 6)) / 6, 0, 1)

    # Benign noise (own stream, same draws whatever the settings): strongly seasonal
    # businesses, one bad quarter, firms shrinking for years. Computed for flagged rows only.
    nrng, kinds = ch.nrng, f.noise.kinds
    peak = np.array([SEASON_PEAK.get(x, np.nan) for x in INDUSTRY_SECTIONS])[f.industry]
    peak = np.where(np.isnan(peak), nrng.uniform(0, 12, n), peak)[:, None]
    amp = nrng.uniform(0.2, 0.5, (n, 1))
    year = (ch.cal.g0 + m) // 12
    shift = nrng.normal(0.0, 0.5, (n, int(year.max() - year.min()) + 1))
    q0 = randint(nrng, 0, M - 3, n)[:, None]
    dip_depth = nrng.uniform(0.25, 0.5, (n, 1))
    activity = season * dfac * down * liq * oneoff
    sel = np.nonzero(kinds["seasonal"])[0]
    if len(sel):
        offset = moy[None, :] - peak[sel] - shift[sel][:, year - year.min()]
        cycle = ((1 + np.cos(2 * np.pi * offset / 12)) / 2) ** 2
        activity[sel] *= 1 + amp[sel] * (cycle / 0.375 - 1)  # mean of cycle over a year: 0.375
    sel = np.nonzero(kinds["revenue_dip"])[0]
    if len(sel):
        quarter = (m[None, :] >= q0[sel]) & (m[None, :] < q0[sel] + 3)
        activity[sel] *= 1 - dip_depth[sel] * quarter
    sel = np.nonzero(kinds["shrinking"])[0]
    if len(sel):
        trend = np.broadcast_to(trend, (n, T)).copy()
        trend[sel] = (1 + f.noise.shrink_growth[sel, None]) ** (m[None, :] / 12)
    ch.activity = activity
    ch.rev = f.base_rev[:, None] * trend * ch.activity * noise
    ch.m_ext = m
