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
#: Benign noise: where healthy borrowers also send a little of a loan (and how often).
BENIGN_COUNTERPARTIES = ("related_party", "cash", "own_account")
BENIGN_P = [0.5, 0.3, 0.2]


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
    # Benign noise (own stream, two candidate flows per loan drawn whatever the settings):
    # loans of borrowers that do not divert send a modest share to related parties, cash or
    # their own account; it comes out of the normal flows.
    nrng = ch.nrng
    benign = (nrng.random(L) < ch.noise.related_party_flows) & ~ch.firms.diverter[lo["firm"]]
    b_share = nrng.uniform(0.03, 0.20, L)
    b_two = nrng.random(L) < 0.4
    b_w = nrng.uniform(0.2, 1.0, (L, 2))
    b_cp = nrng.choice(len(BENIGN_COUNTERPARTIES), size=(L, 2), p=BENIGN_P)
    b_lag = randint(nrng, 0, 90, (L, 2))
    b_id = nrng.integers(0, 10**8, (L, 2))
    b_w[:, 1] = np.where(b_two, b_w[:, 1], 0.0)
    b_day = lo["disb_day"][:, None] + b_lag
    b_keep = benign[:, None] & (b_w > 0) & (b_day <= cal.end_day)
    benign_flows = b_keep.any(axis=1)  # the loan has a benign flow inside the window
    b_total = np.where(benign_flows, P * b_share, 0)
    norm_total = norm_total - b_total
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
    cp_num = rng.integers(0, 10**8, len(loan))

    b_amt = np.maximum(np.round(b_total[:, None] * b_w / b_w.sum(axis=1, keepdims=True)), 1)
    b_keep = b_keep.ravel()
    if b_keep.any():
        b_loan = np.repeat(np.arange(L), 2)[b_keep]
        b_cpi = np.array([all_cp.index(c) for c in BENIGN_COUNTERPARTIES])[b_cp.ravel()[b_keep]]
        order = np.argsort(np.concatenate([loan, b_loan]), kind="stable")
        loan = np.concatenate([loan, b_loan])[order]
        day = np.concatenate([day, b_day.ravel()[b_keep]])[order]
        amt = np.concatenate([amt, b_amt.ravel()[b_keep]])[order]
        cp = np.concatenate([cp, b_cpi])[order]
        cp_num = np.concatenate([cp_num, b_id.ravel()[b_keep]])[order]
    lo["benign_flows"] = benign_flows
    ch.firms.noise.kinds["related_party_flows"][lo["firm"][benign_flows]] = True
    no_cp = np.isin(cp, [all_cp.index(c) for c in ("tax", "cash", "payroll")])
    cp_id = ids("CP", cp_num, 8)
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
