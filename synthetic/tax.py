"""Tax: monthly VAT and quarterly CIT filings (`tax_filings`) and annual ratings
(`tax_ratings`), following each firm's revenue; distressed firms pay short, file late or
not at all and get bad ratings."""

from __future__ import annotations

import numpy as np
import polars as pl

from synthetic import noise
from synthetic.common import IND, Chunk, dates, money, pick, randint


def build(ch: Chunk) -> None:
    """Landing `tax_filings` (monthly VAT, quarterly CIT) and `tax_ratings` (annual)."""
    rng, f, n, M, cal = ch.rng, ch.firms, ch.n, ch.M, ch.cal
    firm = np.repeat(np.arange(n), M)
    m = np.tile(np.arange(M), n)
    rev_c = np.round(ch.rev[:, 2:].ravel() * 100)
    nominal = IND[f.industry, 1]
    eff = np.where(f.size == 0, 0.03, np.maximum(0.03, nominal * rng.uniform(0.55, 1.0, n)))
    payable = np.round(rev_c * eff[firm] * rng.uniform(0.92, 1.08, n * M))
    payable = np.clip(payable, 0, None)
    arrears = ch.trouble(m, firm, 0.15, 0.12, 0.9, 1)
    missing = ch.trouble(m, firm, 0.0, 0.07, 0.65, 2)
    paid = np.where(arrears, np.round(payable * rng.uniform(0, 0.6, n * M)), payable)
    late = (rng.random(n * M) < 0.02) | (arrears & (rng.random(n * M) < 0.5))
    filed = cal.month_end(m) + np.where(
        late, randint(rng, 16, 75, n * M), randint(rng, 7, 15, n * M)
    )
    # Benign noise: firms that file late or pay a month short now and then (own stream).
    # One uniform per filing: below LATE_TAX_P filed 16-45 days late, in the next
    # SHORT_TAX_P paid 50-90% (each spread evenly over its slice of the uniform).
    u = ch.nrng.random(n * M)
    calm = f.noise.kinds["late_tax"][firm] & ~arrears & ~missing
    p_late, p_short = noise.LATE_TAX_P, noise.SHORT_TAX_P
    noisy_late = calm & ~late & (u < p_late)
    late_days = 16 + np.floor(u / p_late * 30).astype(np.int64)
    filed = np.where(noisy_late, cal.month_end(m) + late_days, filed)
    short = calm & (u >= p_late) & (u < p_late + p_short) & (m < M - 1)
    if short.any():
        share = 0.5 + 0.4 * (u - p_late) / p_short
        owed = np.where(short, paid - np.round(paid * share), 0)
        paid = paid - owed + np.concatenate([[0], owed[:-1]])  # the rest with the next month
    keep = ~missing & (m <= f.active_until[firm]) & (filed <= ch.snapshot_day)
    ch.tax_missing = missing.reshape(n, M)
    labels = pl.Series(cal.labels)

    # Quarterly CIT for quarters ending in the window (period = the quarter's last month).
    qm = np.arange(M)[cal.month_of_year(np.arange(M)) % 3 == 0]
    Q = len(qm)
    qfirm = np.repeat(np.arange(n), Q)
    qmm = np.tile(qm, n)
    qrev = ch.rev[:, qm + 2] + ch.rev[:, qm + 1] + ch.rev[:, qm]
    qrev_c = np.round(qrev.ravel() * 100)
    margin = rng.uniform(0.02, 0.12, n)[qfirm] * rng.uniform(0.7, 1.3, n * Q)
    # In distress a firm makes losses (no CIT payable) until it recovers.
    in_distress = (qmm >= f.visible[qfirm]) & (qmm < f.recover_at[qfirm])
    margin = np.where(in_distress, -0.05, margin)
    # Benign noise: loss quarters outside distress (own stream; one draw per quarter).
    loss = (
        f.noise.kinds["loss_quarters"][qfirm]
        & ~in_distress
        & (ch.lrng.random(n * Q) < noise.LOSS_QUARTER_P)
    )
    margin = np.where(loss, -0.05, margin)
    cit_rate = np.where(f.size == 2, 0.25, 0.05)[qfirm]
    q_pay = np.round(np.maximum(0.0, qrev_c * margin * cit_rate))
    q_arrears = arrears.reshape(n, M)[:, qm].ravel()
    q_paid = np.where(q_arrears, np.round(q_pay * rng.uniform(0, 0.6, n * Q)), q_pay)
    q_filed = cal.month_end(qmm) + randint(rng, 7, 15, n * Q) + 40 * q_arrears
    q_keep = (
        ~ch.tax_missing[:, qm].ravel()
        & (qmm <= f.active_until[qfirm])
        & (q_filed <= ch.snapshot_day)
    )

    vat = pl.DataFrame(
        {
            "enterprise_id": f.ids.gather(firm[keep]),
            "period": labels.gather(m[keep]),
            "tax_type": pl.Series(["vat"]).gather(np.zeros(keep.sum(), dtype=np.int64)),
            "taxable_revenue": money(rev_c[keep]),
            "tax_payable": money(payable[keep]),
            "tax_paid": money(paid[keep]),
            "filed_date": dates(filed[keep]),
        }
    )
    cit = pl.DataFrame(
        {
            "enterprise_id": f.ids.gather(qfirm[q_keep]),
            "period": labels.gather(qmm[q_keep]),
            "tax_type": pl.Series(["cit"]).gather(np.zeros(q_keep.sum(), dtype=np.int64)),
            "taxable_revenue": money(qrev_c[q_keep]),
            "tax_payable": money(q_pay[q_keep]),
            "tax_paid": money(q_paid[q_keep]),
            "filed_date": dates(q_filed[q_keep]),
        }
    )
    ch.tables["tax_filings"] = pl.concat([vat, cit])

    # Annual ratings for years whose rating is published (April next year) by the end.
    years = [
        y for y in range(int(cal.year(0)), int(cal.year(M - 1)))
        if (y + 1) * 12 + 3 <= cal.g0 + M - 1
    ]  # fmt: skip
    Y = len(years)
    yfirm = np.repeat(np.arange(n), Y)
    yy = np.tile(np.array(years, dtype=np.int64), n)
    dec = (yy * 12 + 11) - cal.g0  # local month of December of that year
    troubled = (f.visible[yfirm] <= dec) & (f.recover_at[yfirm] > dec)
    # A firm keeps its usual rating (A 30%, B 47%, M 17%, C 6%) from year to year.
    u = rng.random(n * Y)
    u = u.reshape(n, Y)[:, 0] if Y else np.zeros(n)
    usual = np.minimum(np.searchsorted(np.cumsum([0.30, 0.47, 0.17, 0.06]), u, side="right"), 3)
    bad_rating = np.where(rng.random(n * Y) < 0.5, 3, 4)
    # Benign drift: one year one notch off (down 70%), back the year after (own stream).
    drift_year = ch.nrng.integers(0, max(Y, 1), n)
    down = ch.nrng.random(n) < 0.7
    step = np.where((down & (usual < 3)) | (usual == 0), 1, -1)
    drifted = f.noise.kinds["rating_drift"] & (Y > 0)
    healthy_rating = usual[yfirm] + np.where(
        drifted[yfirm] & (np.tile(np.arange(Y), n) == drift_year[yfirm]), step[yfirm], 0
    )
    rating = np.where(troubled, bad_rating, healthy_rating)
    ch.tables["tax_ratings"] = pl.DataFrame(
        {
            "enterprise_id": f.ids.gather(yfirm),
            "year": pl.Series(yy, dtype=pl.Int32),
            "rating": pick(("A", "B", "M", "C", "D"), rating),
        }
    )
