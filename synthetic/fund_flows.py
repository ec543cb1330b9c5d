"""Fund flows (`fund_flows`): where each loan's money went after disbursement; diverted
loans send most of it to disallowed counterparties."""

from __future__ import annotations

import numpy as np
import polars as pl

from assets.contract import COUNTERPARTY_TYPES
from synthetic.common import Chunk, dates, group_positions, ids, money, pick, randint

NORMAL_COUNTERPARTIES = ("supplier", "payroll", "tax", "utility", "own_account")
DIVERTING_COUNTERPARTIES = (
    "securities",
    "real_estate",
    "related_party",
    "other_loan_repayment",
    "cash",
)
assert set(NORMAL_COUNTERPARTIES + DIVERTING_COUNTERPARTIES) <= set(COUNTERPARTY_TYPES)


def build(ch: Chunk) -> None:
    """Landing `fund_flows`: where each loan's money went in the weeks after disbursement."""
    rng, lo, cal = ch.rng, ch.loans, ch.cal
    L = len(lo["firm"])
    n_norm = randint(rng, 2, 5, L)
    n_div = np.where(lo["diverted"], randint(rng, 1, 3, L), 0)
    cnt = n_norm + n_div
    loan, pos = group_positions(cnt)
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
    lag = np.where(is_div, randint(rng, 1, 10, k), randint(rng, 0, 60, k))
    day = lo["disb_day"][loan] + lag
    keep = day <= cal.end_day
    loan, day, amt, cp = loan[keep], day[keep], amt[keep], cp[keep]
    no_cp = np.isin(cp, [all_cp.index(c) for c in ("tax", "cash", "payroll")])
    cp_id = ids("CP", rng.integers(0, 10**8, len(loan)), 8)
    cp_id = pl.select(pl.when(pl.Series(no_cp)).then(None).otherwise(cp_id)).to_series()
    ch.tables["fund_flows"] = pl.DataFrame(
        {
            "flow_id": ch.row_ids("FF", len(loan)),
            "loan_id": lo["ids"].gather(loan),
            "txn_date": dates(day),
            "amount": money(amt),
            "counterparty_type": pick(all_cp, cp),
            "counterparty_id": cp_id,
        }
    )
