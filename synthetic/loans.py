"""Loans and their repayments: contract terms (`loans`), the installment plan
(`repayment_schedule`), what the borrower paid (`repayments`), each loan's default day
(data-contract section 3) and the bank's recoveries on defaulted loans.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from assets.contract import PRODUCTS, PURPOSES
from synthetic import names
from synthetic.common import (
    BIG,
    Chunk,
    choice_rows,
    dates,
    group_positions,
    ids,
    money,
    pick,
    randint,
)
from synthetic.noise import LATE_INSTALLMENT_P, MONTH_LATE_P

# Product terms (months), bullet probability, principal as a share of annual revenue.
TERMS = {
    "tax_credit_loan": (6, 12, 12),
    "guarantee_fund_loan": (12, 24, 36),
    "mortgage_loan": (12, 24, 36),
    "working_capital_loan": (6, 12, 12, 24),
    "equipment_loan": (24, 36, 36),
}
_BULLET_P = np.array([0.4, 0.3, 0.4, 0.5, 0.0])
_SPREAD = np.array([[0.005, 0.015], [0.0, 0.010], [0.003, 0.012], [0.010, 0.030], [0.010, 0.025]])
PRODUCT_P = np.array([0.25, 0.15, 0.20, 0.30, 0.10])
# Purpose mix per product (rows: PRODUCTS; columns: PURPOSES).
PURPOSE_P = np.array(
    [
        [0.7, 0.0, 0.3, 0.0, 0.0, 0.0],
        [0.5, 0.0, 0.2, 0.3, 0.0, 0.0],
        [0.4, 0.0, 0.0, 0.3, 0.2, 0.1],
        [0.5, 0.0, 0.3, 0.0, 0.15, 0.05],
        [0.0, 1.0, 0.0, 0.0, 0.0, 0.0],
    ]
)
assert PURPOSE_P.shape == (len(PRODUCTS), len(PURPOSES))
#: Truth `recovery_type` of a defaulted loan: the collateral was sold, the guarantor (fund or
#: company) paid, or an unsecured loan got a partial recovery; index 0 = no recovery (null).
RECOVERY_TYPES = ("none", "collateral_sale", "guarantee_claim", "partial_unsecured")


def build_loans(ch: Chunk) -> None:
    """Landing `loans` and the loan-level latent arrays (`ch.loans`, `ch.liq_mat`)."""
    rng, f, M = ch.rng, ch.firms, ch.M
    n_loans = np.where(f.borrower, 1 + (rng.random(ch.n) < 0.35) + (rng.random(ch.n) < 0.10), 0)
    firm, k = group_positions(n_loans)
    L = len(firm)
    first = k == 0
    product = rng.choice(len(PRODUCTS), size=L, p=PRODUCT_P)
    lq = first & f.liquidity[firm]
    product[lq] = np.where(rng.random(lq.sum()) < 0.5, 2, 3)  # mortgage / working capital
    term = np.empty(L, dtype=np.int64)
    for p, name in enumerate(PRODUCTS):
        sel = product == p
        term[sel] = rng.choice(np.array(TERMS[name]), size=sel.sum())
    dist_first = first & f.distressed[firm]
    term[dist_first] = np.maximum(term[dist_first], 12)
    term[lq] = rng.choice(np.array([12, 24]), size=lq.sum())
    bullet = rng.random(L) < _BULLET_P[product]
    bullet[lq] = True

    disb_m = randint(rng, -12, M - 1, L)
    dist = f.distressed[firm]
    s = f.start[firm]
    disb_m[dist] = randint(rng, s[dist] - 24, s[dist] - 1)
    disb_m[dist_first] = randint(rng, s[dist_first] - 12, s[dist_first] - 1)
    div = first & f.diverter[firm]
    disb_m[div] = randint(rng, 0, M - 8, div.sum())
    mat_target = randint(rng, 6, M - 1, lq.sum())
    disb_m[lq] = mat_target - term[lq]
    dom = randint(rng, 1, 28, L)
    disb_day = ch.cal.month_start(disb_m) + dom - 1
    contract_day = disb_day - randint(rng, 0, 10, L)
    mat_m = disb_m + term
    mat_day = ch.cal.month_start(mat_m) + dom - 1

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

    purpose = choice_rows(rng, PURPOSE_P, product)
    loan_no = ch.chunk_no * 10**7 + np.arange(L)
    loan_ids = ids("LN", loan_no, 11)
    city4 = np.array([c[0] for c in names.CITIES])[f.region[firm]]
    branch = ids("BR", city4 * 100 + rng.integers(1, 5, L), 6)

    # Who is expected to do what (ground truth).
    bullet_default = lq  # the liquidity-stressed borrower's bullet loan
    ch.loans = dict(
        firm=firm, k=k, product=product, term=term, bullet=bullet, disb_m=disb_m,
        dom=dom, disb_day=disb_day, mat_m=mat_m, mat_day=mat_day, principal_c=principal_c,
        rate=rate, bullet_default=bullet_default, ids=loan_ids, diverted=div,
        coll=coll, guar=guar, contract_day=contract_day, purpose=purpose,
    )  # fmt: skip
    # Diverters that default stop paying a few installments after the diverted loan.
    stop_div = np.full(ch.n, BIG)
    stop_div[firm[div]] = disb_m[div] + randint(rng, 3, 7, div.sum())
    dd = f.diverter_defaults
    f.partial_from = np.where(dd, stop_div - 1, f.partial_from)
    f.stop_from = np.where(dd, stop_div, f.stop_from)
    # The liquidity-stressed borrower weakens in the six months before maturity.
    ch.liq_mat = np.full(ch.n, BIG)
    ch.liq_mat[firm[lq]] = mat_m[lq]

    ch.tables["loans"] = pl.DataFrame(
        {
            "loan_id": loan_ids,
            "enterprise_id": f.ids.gather(firm),
            "branch_id": branch,
            "product": pick(PRODUCTS, product),
            "purpose": pick(PURPOSES, purpose),
            "contract_date": dates(contract_day),
            "disbursement_date": dates(disb_day),
            "maturity_date": dates(mat_day),
            "principal": money(principal_c),
            "annual_rate": pl.Series(rate),
            "repayment_method": pick(
                ("equal_installment", "interest_only_bullet"), bullet.astype(np.int64)
            ),
            "collateral_type": pick(
                ("none", "real_estate", "equipment", "receivables", "deposit"), coll
            ),
            "collateral_value": money(coll_value.astype(np.int64), null=coll == 0),
            "guarantee_type": pick(
                ("none", "government_fund", "third_party_company", "personal"), guar
            ),
            "guarantee_ratio": pl.Series(gratio),
        }
    )


def build_repayments(ch: Chunk) -> None:
    """Landing `repayment_schedule` and `repayments` (with the bank's recoveries)."""
    rng, f, cal, lo = ch.rng, ch.firms, ch.cal, ch.loans
    term = lo["term"]
    loan, pos = group_positions(term)
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
    ch.tables["repayment_schedule"] = pl.DataFrame(
        {
            "loan_id": lo["ids"].gather(loan),
            "installment_no": pl.Series(inst, dtype=pl.Int32),
            "due_date": dates(due_day),
            "principal_due": money(prin),
            "interest_due": money(interest),
        }
    )

    # What each installment receives.
    firm = lo["firm"][loan]
    total = prin + interest
    rec = due_m >= f.recover_at[firm]
    none = (due_m >= f.stop_from[firm]) & ~rec
    part = (due_m >= f.partial_from[firm]) & ~none & ~rec
    stressed = (due_m >= f.visible[firm]) & ~none & ~part & ~rec & (rng.random(nrow) < 0.4)
    u = rng.random(nrow)
    offset = np.where(
        u < 0.08, -randint(rng, 3, 20, nrow),
        np.where(u < 0.12, randint(rng, 1, 15, nrow),
                 np.where(u < 0.125, randint(rng, 20, 60, nrow), -randint(rng, 0, 2, nrow))),
    )  # fmt: skip
    # Benign noise: firms that pay now and then days or a month late (own stream).
    # One uniform per installment: below LATE_INSTALLMENT_P 1-20 days late, in the next
    # MONTH_LATE_P 28-45 days late (each spread evenly over its slice of the uniform).
    u = ch.nrng.random(nrow)
    calm = f.noise.kinds["late_installments"][firm] & (offset <= 0)
    p_days, p_month = LATE_INSTALLMENT_P, MONTH_LATE_P
    days_late = 1 + np.floor(u / p_days * 20).astype(np.int64)
    month_late = 28 + np.floor((u - p_days) / p_month * 18).astype(np.int64)
    offset = np.where(calm & (u >= p_days) & (u < p_days + p_month), month_late, offset)
    offset = np.where(calm & (u < p_days), days_late, offset)
    offset = np.where(stressed, randint(rng, 5, 45, nrow), offset)
    offset = np.where(part, randint(rng, 0, 20, nrow), offset)
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
    rec_day = cal.month_start(np.minimum(R, ch.M + 12)) + 5 + (firm % 20)
    short = np.where((R < BIG) & (due_day < rec_day), total - np.where(present, amount, 0), 0)
    catch = np.bincount(loan, weights=short, minlength=len(term))
    lf = lo["firm"]
    c_day = cal.month_start(np.minimum(f.recover_at[lf], ch.M + 12)) + 5 + (lf % 20)
    c_ok = (catch > 0) & (c_day <= cal.end_day)

    p_loan = np.concatenate([loan[present], np.nonzero(c_ok)[0]])
    p_day = np.concatenate([day[present], c_day[c_ok]])
    p_amt = np.concatenate([amount[present], catch[c_ok]])
    order = np.lexsort((p_day, p_loan))
    p_loan, p_day, p_amt = p_loan[order], p_day[order], p_amt[order]
    p_loan, p_day, p_amt = _recoveries(ch, loan, total, due_day, p_loan, p_day, p_amt)
    ch.tables["repayments"] = pl.DataFrame(
        {
            "payment_id": ch.row_ids("PM", len(p_loan)),
            "loan_id": lo["ids"].gather(p_loan),
            "payment_date": dates(p_day),
            "amount": money(p_amt),
        }
    )
    # Loan-level truth: first month the loan stops being paid in full (if any).
    short_m = np.where(part | none | bd, due_m, BIG)
    first_short = np.full(len(term), BIG)
    np.minimum.at(first_short, loan, short_m)
    ch.loan_first_short = first_short
    # ch.loan_default_day was set by _recoveries (they come after it, so it holds).


def _recoveries(ch: Chunk, loan, due, due_day, p_loan, p_day, p_amt):
    """Add the bank's recoveries on defaulted loans of firms that never got back on their
    feet: 4-12 months after the default day, a secured loan (collateral, or a government
    fund / third-party company guarantee) is settled in full by the collateral sale or the
    guarantee claim; an unsecured one gets a partial recovery (20-50% of what remains).
    Payments stay sorted by (loan, day); recoveries are dated <= the end month's last day."""
    rng, f, lo, cal = ch.rng, ch.firms, ch.loans, ch.cal
    n_loans = len(lo["firm"])
    dday = default_days(ch, loan, due, due_day, p_loan, p_amt, p_day)
    # Recoveries come >= 122 days after the default day and only drop payments dated
    # after themselves, so no loan's default day moves: it is the truth's default_date.
    ch.loan_default_day = dday
    secured = (lo["coll"] > 0) | (lo["guar"] == 1) | (lo["guar"] == 2)
    r_day = dday + randint(rng, 122, 365, n_loans)
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
    ch.loan_recovery = (np.where(ok, r_day, BIG * 100), np.where(ok, rtype, 0),
                          np.where(ok, r_amt, 0))  # fmt: skip
    r_idx = np.nonzero(ok)[0]
    p_loan = np.concatenate([p_loan, r_idx])
    p_day = np.concatenate([p_day, r_day[r_idx]])
    p_amt = np.concatenate([p_amt, r_amt[r_idx]])
    order = np.lexsort((p_day, p_loan))
    return p_loan[order], p_day[order], p_amt[order]


def default_days(ch: Chunk, loan, due, due_day, p_loan, p_amt, p_day) -> np.ndarray:
    """Default day of each loan by the end of the window (data-contract section 3: the
    first due + 91 of an installment not settled by then), or BIG when none; installments
    are settled when cumulative payments cover their cumulative due."""
    n_loans = len(ch.loans["firm"])
    key = np.int64(10**12)  # > any loan's cumulative fen; keeps loans apart when sorted
    cum_due = np.cumsum(due) - np.repeat(
        (np.cumsum(due) - due)[np.cumsum(ch.loans["term"]) - ch.loans["term"]],
        ch.loans["term"],
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
    defaulted = (settled > dday) & (dday <= ch.cal.end_day)
    out = np.full(n_loans, BIG * 100, dtype=np.int64)
    np.minimum.at(out, loan[defaulted], dday[defaulted])
    return out
