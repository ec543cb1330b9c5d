"""Ground truth of a chunk: `enterprises.parquet` (each firm's story) and `loans.parquet`
(each loan's scenario, default and recovery). `applications.parquet` is built by
`synthetic.applications`; `meta.json` by `synthetic.generator.generate`."""

from __future__ import annotations

import numpy as np
import polars as pl

from assets.contract import INDUSTRY_SECTIONS
from synthetic.common import BIG, DOWNTURN_IDX, SIZES, STATUSES, Chunk, dates, money, pick
from synthetic.loans import RECOVERY_TYPES


def build(ch: Chunk) -> None:
    """Truth `enterprises` and `loans` frames of the chunk."""
    f, cal, lo = ch.firms, ch.cal, ch.loans

    def month_label(m: np.ndarray) -> pl.Series:
        labels = pl.Series([cal.label(i) for i in range(-72, ch.M + 72)] + [None])
        return labels.gather(np.where(m >= BIG, len(labels) - 1, m + 72))

    first_default = np.full(ch.n, BIG * 100, dtype=np.int64)
    np.minimum.at(first_default, lo["firm"], ch.loan_default_day)
    ch.truth["enterprises"] = pl.DataFrame(
        {
            "enterprise_id": f.ids,
            "industry_code": pick(INDUSTRY_SECTIONS, f.industry),
            "size_class": pick(SIZES, f.size),
            "status": pick(STATUSES, f.status),
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
            "industry_downturn_affected": f.industry == DOWNTURN_IDX,
            "is_borrower": f.borrower,
            "first_default_date": dates(first_default, null=first_default >= BIG * 100),
            "expected_default": (f.distressed & ~f.recovered) | f.diverter_defaults | f.liquidity,
        }
    )
    firm = lo["firm"]
    no_default = ch.loan_default_day >= BIG * 100
    r_day, r_type, r_amt = ch.loan_recovery
    scenario = np.full(len(firm), "performing", dtype=object)
    scenario[f.distressed[firm]] = "distress_default"
    scenario[f.distressed[firm] & (ch.loan_first_short >= BIG)] = "distress_unaffected"
    scenario[f.distressed[firm] & f.recovered[firm]] = "distress_recovered"
    scenario[f.diverter[firm]] = "diverter_other_loan"
    scenario[lo["diverted"] & f.diverter_defaults[firm]] = "diversion_default"
    scenario[lo["diverted"] & ~f.diverter_defaults[firm]] = "diversion_performing"
    scenario[lo["bullet_default"]] = "bullet_principal_default"
    ch.truth["loans"] = pl.DataFrame(
        {
            "loan_id": lo["ids"],
            "enterprise_id": f.ids.gather(firm),
            "scenario": pl.Series(scenario.astype(str)),
            "funds_diverted": lo["diverted"],
            "bullet_principal_default": lo["bullet_default"],
            "first_short_payment_month": month_label(ch.loan_first_short),
            "expected_shortfall": ch.loan_first_short < BIG,
            "default_date": dates(ch.loan_default_day, null=no_default),
            "recovery_date": dates(r_day, null=r_type == 0),
            "recovery_type": pl.Series([None, *RECOVERY_TYPES[1:]], dtype=pl.String).gather(r_type),
            "recovery_amount": money(r_amt, null=r_type == 0),
        }
    )
