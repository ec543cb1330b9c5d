"""Ground truth of a chunk. `generate` writes it beside the landing directory, in
`<out>_truth/` (never read by the pipeline; back-tests and tests read it):

`enterprises.parquet`, one row per enterprise:
  enterprise_id, industry_code, size_class, status (at the snapshot);
  is_distressed, distress_start_month (the onset, YYYY-MM; null if never distressed),
  distress_visible_month (from when distress shows outside the repayments: revenue, tax,
  utilities, ratings, events; the onset, or a month after the first missed installment for a
  sudden default), distress_speed (sudden / fast / normal / slow, null if not distressed),
  sudden_default, recovered, recovery_month, repayment_partial_from_month,
  repayment_stop_month, dishonest_debtor_month;
  is_diverter, diverter_defaults, liquidity_stress, industry_downturn_affected, is_borrower;
  first_default_date (first default day of any of its loans, data-contract section 3),
  expected_default (distressed and not recovered, a defaulting diverter or liquidity stress;
  slow distress may default only after the window);
  noise (the benign noise kinds it got, comma-separated, '' for none) and one boolean
  noise_<kind> per kind (synthetic.noise.FIRM_KINDS: late_installments, late_utility,
  late_tax, rating_drift, shrinking, seasonal, revenue_dip, related_party_flows,
  loss_quarters), so a
  back-test can tell benign noise from distress.

`loans.parquet`, one row per loan: loan_id, enterprise_id, scenario (performing,
  distress_default, distress_unaffected, distress_recovered, diverter_other_loan,
  diversion_default, diversion_performing, bullet_principal_default), funds_diverted,
  bullet_principal_default, benign_related_flows (the loan got benign related-party / cash /
  own-account flows), first_short_payment_month, expected_shortfall, default_date,
  recovery_date, recovery_type (collateral_sale / guarantee_claim / partial_unsecured),
  recovery_amount.

`applications.parquet` (built by `synthetic.applications`, documented there) and
`meta.json` (built by `synthetic.generator.generate`: seed, window, CNY months, downturn
industry and start, diverting counterparties, snapshot date, rows, the noise settings).
"""

from __future__ import annotations

import numpy as np
import polars as pl

from assets.contract import INDUSTRY_SECTIONS
from synthetic.common import BIG, DOWNTURN_IDX, SIZES, STATUSES, Chunk, dates, money, pick
from synthetic.loans import RECOVERY_TYPES
from synthetic.noise import FIRM_KINDS, SPEEDS, SUDDEN


def build(ch: Chunk) -> None:
    """Truth `enterprises` and `loans` frames of the chunk."""
    f, cal, lo = ch.firms, ch.cal, ch.loans

    def month_label(m: np.ndarray) -> pl.Series:
        labels = pl.Series([cal.label(i) for i in range(-72, ch.M + 72)] + [None])
        return labels.gather(np.where(m >= BIG, len(labels) - 1, m + 72))

    speed = f.noise.speed
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
            "distress_visible_month": month_label(f.visible),
            "distress_speed": pl.Series([*SPEEDS, None], dtype=pl.String).gather(
                np.where(speed >= 0, speed, len(SPEEDS))
            ),
            "sudden_default": speed == SUDDEN,
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
            "noise": f.noise.labels(),
            **{f"noise_{kind}": f.noise.kinds[kind] for kind in FIRM_KINDS},
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
            "benign_related_flows": lo["benign_flows"],
            "first_short_payment_month": month_label(ch.loan_first_short),
            "expected_shortfall": ch.loan_first_short < BIG,
            "default_date": dates(ch.loan_default_day, null=no_default),
            "recovery_date": dates(r_day, null=r_type == 0),
            "recovery_type": pl.Series([None, *RECOVERY_TYPES[1:]], dtype=pl.String).gather(r_type),
            "recovery_amount": money(r_amt, null=r_type == 0),
        }
    )
