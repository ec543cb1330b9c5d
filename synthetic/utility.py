"""Utility bills (`utility_bills`): consumption follows each firm's activity; distressed
firms pay short, late or not at all."""

from __future__ import annotations

import numpy as np
import polars as pl

from synthetic.common import IND, Chunk, dates, money, randint
from synthetic.noise import LATE_UTILITY_P


def build(ch: Chunk) -> None:
    """Landing `utility_bills`: electricity for every firm, water and gas for some."""
    rng, f, n, M, cal = ch.rng, ch.firms, ch.n, ch.M, ch.cal
    act = ch.rev[:, 2:]
    parts = []
    has = {
        "electricity": np.ones(n, dtype=bool),
        "water": rng.random(n) < IND[f.industry, 3],
        "gas": rng.random(n) < IND[f.industry, 4],
    }
    intensity = {
        "electricity": IND[f.industry, 2] * rng.uniform(0.6, 1.5, n),
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
        arrears = ch.trouble(m, firm, 0.10, 0.12, 0.9, 1)
        dead = (m >= f.stop_from[firm]) & (m < f.recover_at[firm]) & f.distressed[firm]
        paid = np.where(arrears, np.round(billed * rng.uniform(0, 0.5, k * M)), billed)
        paid = np.where(dead & (rng.random(k * M) < 0.8), 0, paid)
        late = (rng.random(k * M) < 0.03) | arrears
        day = cal.month_end(m) + np.where(
            late, randint(rng, 25, 80, k * M), randint(rng, 5, 20, k * M)
        )
        # Benign noise: firms that pay some bills weeks late (own stream).
        u = ch.nrng.random(k * M)  # below LATE_UTILITY_P: paid 25-60 days after the month
        noisy = f.noise.kinds["late_utility"][firm] & ~late & ~dead & (u < LATE_UTILITY_P)
        late_days = 25 + np.floor(u / LATE_UTILITY_P * 36).astype(np.int64)
        day = np.where(noisy, cal.month_end(m) + late_days, day)
        unpaid = (paid <= 0) | (day > ch.snapshot_day)
        paid = np.where(unpaid, 0, paid)
        keep = m <= f.active_until[firm]
        parts.append(
            pl.DataFrame(
                {
                    "enterprise_id": f.ids.gather(firm[keep]),
                    "period": labels.gather(m[keep]),
                    "utility": pl.Series([utility]).gather(np.zeros(keep.sum(), dtype=np.int64)),
                    "consumption": pl.Series(cons[keep]),
                    "amount_billed": money(billed[keep]),
                    "amount_paid": money(paid[keep]),
                    "paid_date": dates(day[keep], null=unpaid[keep]),
                }
            )
        )
    ch.tables["utility_bills"] = pl.concat(parts)
