"""Loan applications (`loan_applications`) and their truth (`applications.parquet`)."""

from __future__ import annotations

import numpy as np
import polars as pl

from assets.contract import PRODUCTS, PURPOSES
from synthetic import network
from synthetic.common import BIG, Chunk, choice_rows, dates, group_positions, money, pick, randint
from synthetic.loans import PRODUCT_P, PURPOSE_P


def build(ch: Chunk) -> None:
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
    (`should_decline`: distress visible for at least a month, a dishonest-debtor listing or a
    suspension / revocation already in the registry data) and adds what a back-test
    needs: the firm's distress start and the months from the application to it, whether
    the firm had a loan in default before applying, its first loan default after the
    application and `defaulted_within_12m`, with `outcome_complete_12m` when the 12 months
    lie inside the window. Cancelled firms never apply (they no longer exist at the end).
    """
    rng, f, n, cal, M, lo = ch.rng, ch.firms, ch.n, ch.cal, ch.M, ch.loans
    alive = f.status != 3

    # Applications that became loans.
    L = len(lo["firm"])
    l_day = lo["contract_day"] - randint(rng, 3, 35, L)
    linked = np.nonzero((rng.random(L) < 0.4) & (l_day >= cal.start_day))[0]
    req = np.round(lo["principal_c"][linked] / 100 * rng.uniform(1.0, 1.3, len(linked)) / 1e4)
    l_amount = np.maximum(req * 1e4, lo["principal_c"][linked] / 100)

    # Historic applications that did not become loans.
    hist_end = cal.end_day - 90
    base = np.where(alive, rng.poisson(0.002 * M, n), 0)
    h_firm, _ = group_positions(base)
    h_day = randint(rng, cal.start_day, hist_end, len(h_firm))
    d = np.nonzero(f.distressed & alive)[0]
    dur_end = np.minimum(f.recover_at[d], M) - 1
    during = rng.random(len(d)) < 0.5
    d_m = randint(rng, f.start[d], np.maximum(dur_end, f.start[d]))
    before = rng.random(len(d)) < 0.3
    b_m = f.start[d] - randint(rng, 3, 12, len(d))
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
    p_day = cal.end_day - randint(rng, 0, 89, n)
    known = declinable(ch, np.arange(n), p_day)
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
        [lo["product"][linked], rng.choice(len(PRODUCTS), size=nh + npd, p=PRODUCT_P)]
    )
    purpose = np.concatenate(
        [lo["purpose"][linked], choice_rows(rng, PURPOSE_P, product[len(linked) :])]
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
    ids = ch.row_ids("AP", k)
    ch.tables["loan_applications"] = pl.DataFrame(
        {
            "application_id": ids,
            "enterprise_id": f.ids.gather(firm),
            "application_date": dates(day),
            "requested_amount": money(np.round(amount * 100)),
            "requested_term_months": pl.Series(term, dtype=pl.Int32),
            "requested_product": pick(PRODUCTS, product),
            "purpose": pick(PURPOSES, purpose),
        }
    ).with_columns(
        pl.when(pl.Series(no_product))
        .then(None)
        .otherwise(pl.col("requested_product"))
        .alias("requested_product")
    )

    if ch.network.enabled:  # an enterprise offered as guarantor (issue 13)
        ch.tables["loan_applications"] = ch.tables["loan_applications"].with_columns(
            network.offered_guarantors(ch, firm)
        )

    app_m = ch.local_month(day)
    ongoing, dishonest, bad_status = declinable(ch, firm, day, parts=True)
    # Loan defaults around the application: (firm, default day) sorted, then per
    # application the first default after its date and whether one came before.
    key = np.int64(10**7)
    dd = ch.loan_default_day
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
    ch.truth["applications"] = pl.DataFrame(
        {
            "application_id": ids,
            "enterprise_id": f.ids.gather(firm),
            "application_date": dates(day),
            "application_month": labels.gather(app_m + 72),
            "origin": pick(("loan", "historic", "pending"), origin),
            "loan_id": lo["ids"].gather(np.maximum(loan, 0)).scatter(np.nonzero(loan < 0)[0], None),
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
            "first_default_after": dates(after, null=no_after),
            "defaulted_within_12m": ~no_after & (after <= day + 365),
            "outcome_complete_12m": day + 365 <= cal.end_day,
        }
    )


def declinable(ch: Chunk, firm: np.ndarray, day: np.ndarray, parts: bool = False):
    """Clearly declinable at `day` on what was known then: distress visible (truth
    `distress_visible_month`: the onset, or after the missed payments of a sudden default)
    for at least one full month and not yet recovered, a dishonest-debtor listing or a suspension /
    revocation already in the registry data (by its event date)."""
    f = ch.firms
    m = ch.local_month(day)
    ongoing = f.distressed[firm] & (f.visible[firm] < m) & (f.recover_at[firm] > m)
    dishonest = ch.dishonest_day[firm] <= day
    bad_status = np.isin(f.status[firm], (1, 2)) & (ch.status_day[firm] <= day)
    if parts:
        return ongoing, dishonest, bad_status
    return ongoing | dishonest | bad_status
