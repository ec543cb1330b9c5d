"""The synthetic generator writes contract-conformant, deterministic data with a true story."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from assets.contract import TABLES, is_valid_uscc, pandera_schema
from synthetic.generator import DIVERTING_COUNTERPARTIES, generate
from synthetic.network import NetworkConfig
from synthetic.noise import FIRM_KINDS, SPEEDS, NoiseConfig

N = 2500
SEED = 11
END = "2026-10"
END_DAY = np.datetime64("2026-10-31")


def _dtypes(table: str) -> dict[str, pl.DataType]:
    schema = pandera_schema(table)
    return {name: col.dtype.type for name, col in schema.columns.items()}


def read_table(root: Path, table: str) -> pl.DataFrame:
    """All files of one landing table, typed as the contract's pandera schema."""
    dtypes = _dtypes(table)
    frames = []
    for path in sorted((root / table).glob("*")):
        if path.suffix == ".csv":
            df = pl.read_csv(path, schema_overrides=dtypes)
        else:
            df = pl.read_parquet(path)
            df = df.with_columns([pl.col(c).cast(t) for c, t in dtypes.items() if c in df.columns])
        missing = [c for c in dtypes if c not in df.columns]  # absent nullable columns
        df = df.with_columns([pl.lit(None, dtype=dtypes[c]).alias(c) for c in missing])
        frames.append(df.select(list(dtypes)))
    return pl.concat(frames)


@pytest.fixture(scope="module")
def landing(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("gen") / "landing"
    summary = generate(out, N, SEED, "csv", end_month=END, files_per_table=2)
    assert summary.rows["enterprises"] == N
    assert all(len(v) == 2 for v in summary.files.values())
    return out


@pytest.fixture(scope="module")
def data(landing) -> dict[str, pl.DataFrame]:
    return {t: read_table(landing, t) for t in TABLES}


@pytest.fixture(scope="module")
def truth(landing) -> dict[str, pl.DataFrame]:
    root = landing.parent / "landing_truth"
    return {
        "enterprises": pl.read_parquet(root / "enterprises.parquet"),
        "loans": pl.read_parquet(root / "loans.parquet"),
        "applications": pl.read_parquet(root / "applications.parquet"),
        "meta": json.loads((root / "meta.json").read_text()),
        "root": root,
    }


def test_truth_is_beside_not_inside(landing):
    assert sorted(p.name for p in landing.iterdir()) == sorted(TABLES)
    assert (landing.parent / "landing_truth" / "enterprises.parquet").exists()


def test_deterministic_bytes(landing, tmp_path):
    again = tmp_path / "landing"
    generate(again, N, SEED, "csv", end_month=END, files_per_table=2)
    for table in TABLES:
        for a in sorted((landing / table).glob("*")):
            assert a.read_bytes() == (again / table / a.name).read_bytes(), a
    other = tmp_path / "other"
    generate(other, N, SEED + 1, "csv", end_month=END, files_per_table=2)
    a = (landing / "loans" / "part-00000.csv").read_bytes()
    assert a != (other / "loans" / "part-00000.csv").read_bytes()


@pytest.mark.parametrize("table", list(TABLES))
def test_rows_pass_contract_schema(data, table):
    df = data[table]
    assert df.height > 0
    pandera_schema(table).validate(df)


def test_csv_text_format(landing):
    """Money has at most 2 decimals; dates ISO; months YYYY-MM, read as raw text."""
    raw = pl.read_csv(landing / "loans" / "part-00000.csv", infer_schema=False)
    assert raw["principal"].str.contains(r"^\d+(\.\d{1,2})?$").all()
    assert raw["contract_date"].str.contains(r"^\d{4}-\d{2}-\d{2}$").all()
    raw = pl.read_csv(landing / "utility_bills" / "part-00001.csv", infer_schema=False)
    for col in ("amount_billed", "amount_paid", "consumption"):
        assert raw[col].str.contains(r"^\d+(\.\d{1,2})?$").all()
    assert raw["period"].str.contains(r"^\d{4}-(0[1-9]|1[0-2])$").all()


def test_uscc_valid_and_unique(data):
    ids = data["enterprises"]["enterprise_id"]
    assert ids.n_unique() == N
    assert all(is_valid_uscc(x) for x in ids.to_list())


def test_primary_and_foreign_keys(data):
    for name, table in TABLES.items():
        df = data[name]
        assert df.select(table.primary_key).is_duplicated().sum() == 0, name
        for col, parent in table.foreign_keys:
            parents = data[parent][col]
            assert df[col].is_in(parents.implode()).all(), (name, col)


def test_loan_rules_and_schedules(data):
    loans = data["loans"]
    assert (loans["contract_date"] <= loans["disbursement_date"]).all()
    assert (loans["disbursement_date"] <= loans["maturity_date"]).all()
    rate = loans["annual_rate"].cast(pl.Float64)
    assert ((rate > 0) & (rate < 0.36)).all()
    sched = data["repayment_schedule"]
    sums = sched.group_by("loan_id").agg(
        pl.col("principal_due").sum().alias("p"),
        pl.len().alias("n"),
        pl.col("due_date").max().alias("last_due"),
    )
    j = loans.join(sums, on="loan_id", how="left")
    assert j["p"].null_count() == 0
    assert (j["p"] == j["principal"]).all(), "principals must sum exactly to the principal"
    assert (j["last_due"] == j["maturity_date"]).all()
    bullet = sched.join(loans.select("loan_id", "repayment_method"), on="loan_id").filter(
        pl.col("repayment_method") == "interest_only_bullet"
    )
    not_last = bullet.join(sums, on="loan_id").filter(pl.col("installment_no") < pl.col("n"))
    assert (not_last["principal_due"].cast(pl.Float64) == 0).all()
    assert set(loans["product"]) == {
        "tax_credit_loan",
        "guarantee_fund_loan",
        "mortgage_loan",
        "working_capital_loan",
        "equipment_loan",
    }
    eq = loans.filter(pl.col("product") == "equipment_loan")
    assert (eq["purpose"] == "equipment_purchase").all()
    assert (eq["repayment_method"] == "equal_installment").all()
    borrowers = loans["enterprise_id"].n_unique() / N
    assert 0.33 <= borrowers <= 0.50


def test_nothing_dated_after_end(data):
    end = pl.lit(END_DAY).cast(pl.Date)
    assert data["repayments"].filter(pl.col("payment_date") > end).height == 0
    assert data["fund_flows"].filter(pl.col("txn_date") > end).height == 0
    assert data["registry_events"].filter(pl.col("event_date") > end).height == 0
    assert data["loans"].filter(pl.col("disbursement_date") > end).height == 0
    assert data["tax_filings"]["period"].max() == END


def _vat(data) -> pl.DataFrame:
    return (
        data["tax_filings"]
        .filter(pl.col("tax_type") == "vat")
        .with_columns(
            pl.col("taxable_revenue").cast(pl.Float64).alias("rev"),
            (
                pl.col("period").str.slice(0, 4).cast(pl.Int32) * 12
                + pl.col("period").str.slice(5, 2).cast(pl.Int32)
                - 1
            ).alias("g"),
        )
    )


def _g(month: str) -> int:
    return int(month[:4]) * 12 + int(month[5:]) - 1


def test_distressed_revenue_falls_healthy_does_not(data, truth):
    te = truth["enterprises"]
    share = te["is_distressed"].mean()
    assert 0.035 <= share <= 0.065  # a realistic SME book: a few percent of firms
    borrowers = te.filter(pl.col("is_borrower"))["is_distressed"].mean()
    assert borrowers <= 1.5 * share  # borrowers not much over-represented
    down = te.group_by("industry_downturn_affected").agg(pl.col("is_distressed").mean())
    rates = dict(down.iter_rows())
    assert rates[True] > 1.6 * rates[False]  # the downturn clearly raises distress
    assert 0.2 <= te.filter(pl.col("is_distressed"))["recovered"].mean() <= 0.4
    vat = _vat(data)
    firms = te.filter(pl.col("is_distressed") & pl.col("distress_start_month").is_not_null())
    firms = firms.with_columns(
        pl.col("distress_start_month").map_elements(_g, return_dtype=pl.Int64).alias("s")
    ).filter((pl.col("s") >= _g("2024-11")) & (pl.col("s") <= _g("2026-05")))
    assert firms.height >= 50
    j = vat.join(firms.select("enterprise_id", "s"), on="enterprise_id")
    after = j.filter((pl.col("g") >= pl.col("s") + 2) & (pl.col("g") <= pl.col("s") + 4))
    before = j.filter((pl.col("g") >= pl.col("s") - 10) & (pl.col("g") <= pl.col("s") - 8))
    ratio = (
        after.group_by("enterprise_id").agg(pl.col("rev").mean().alias("a"))
        .join(before.group_by("enterprise_id").agg(pl.col("rev").mean().alias("b")),
              on="enterprise_id")
        .select((pl.col("a") / pl.col("b")).alias("r"))["r"]
    )  # fmt: skip
    assert ratio.median() < 0.6
    healthy = te.filter(~pl.col("is_distressed") & ~pl.col("liquidity_stress")
                        & ~pl.col("industry_downturn_affected"))["enterprise_id"]  # fmt: skip
    h = vat.filter(pl.col("enterprise_id").is_in(healthy.implode()))
    a = h.filter(pl.col("period").is_in(["2026-05", "2026-06", "2026-07"]))
    b = h.filter(pl.col("period").is_in(["2025-05", "2025-06", "2025-07"]))
    hr = (
        a.group_by("enterprise_id").agg(pl.col("rev").mean().alias("a"))
        .join(b.group_by("enterprise_id").agg(pl.col("rev").mean().alias("b")),
              on="enterprise_id")
        .select((pl.col("a") / pl.col("b")).alias("r"))["r"]
    )  # fmt: skip
    assert 0.9 < hr.median() < 1.25


def test_distress_brings_arrears_events_and_missed_payments(data, truth):
    te = truth["enterprises"]
    dist = te.filter(pl.col("is_distressed"))["enterprise_id"].implode()
    window = te.filter(pl.col("is_distressed")).select(
        "enterprise_id",
        pl.col("distress_start_month").map_elements(_g, return_dtype=pl.Int64).alias("s"),
        pl.col("recovery_month").map_elements(_g, return_dtype=pl.Int64).fill_null(10**6)
        .alias("r"),
    )  # fmt: skip

    def short_rates(df: pl.DataFrame, paid: str, due: str) -> list[float]:
        """Share of rows paid short: [healthy firms, distressed firms 2+ months into it]."""
        df = df.with_columns(
            (pl.col(paid) < pl.col(due)).alias("short"),
            (pl.col("period").str.slice(0, 4).cast(pl.Int64) * 12
             + pl.col("period").str.slice(5, 2).cast(pl.Int64) - 1).alias("g"),
        ).join(window, on="enterprise_id", how="left")  # fmt: skip
        healthy = df.filter(pl.col("s").is_null())["short"].mean()
        sick = df.filter((pl.col("g") >= pl.col("s") + 2) & (pl.col("g") < pl.col("r")))
        return [healthy, sick["short"].mean()]

    tax_h, tax_d = short_rates(data["tax_filings"], "tax_paid", "tax_payable")
    assert tax_h < 0.01 and tax_d > 0.3
    bill_h, bill_d = short_rates(data["utility_bills"], "amount_paid", "amount_billed")
    assert bill_h < 0.02 and bill_d > 0.3
    ev = data["registry_events"]
    bad = ev.filter(pl.col("event_type").is_in(["court_judgment_defendant",
                                                "dishonest_debtor_listed"]))  # fmt: skip
    assert bad["enterprise_id"].is_in(dist).mean() > 0.8
    # Paid vs due (due up to 3 months before the end) per loan scenario.
    sched = data["repayment_schedule"].filter(pl.col("due_date") <= pl.date(2026, 7, 31))
    due = sched.group_by("loan_id").agg(
        (pl.col("principal_due") + pl.col("interest_due")).cast(pl.Float64).sum().alias("due")
    )
    # The borrower's own payments: the bank's recoveries after a default are left out.
    recoveries = truth["loans"].select("loan_id", pl.col("recovery_date").alias("payment_date"))
    paid = (
        data["repayments"]
        .join(recoveries, on=["loan_id", "payment_date"], how="anti")
        .group_by("loan_id")
        .agg(pl.col("amount").cast(pl.Float64).sum().alias("paid"))
    )
    cover = (
        due.join(paid, on="loan_id", how="left").fill_null(0)
        .join(truth["loans"], on="loan_id")
        .group_by("scenario").agg((pl.col("paid").sum() / pl.col("due").sum()).alias("c"))
    )  # fmt: skip
    c = dict(zip(cover["scenario"], cover["c"], strict=True))
    assert c["performing"] > 0.97
    assert c["distress_default"] < 0.85
    assert c["distress_recovered"] > c["distress_default"]


def _diverting_share(data) -> pl.DataFrame:
    """Per loan: the share of its principal sent to diverting counterparties within 90 days
    of disbursement (what the engine's fund_diversion signal measures), and the types."""
    loans = data["loans"].select("loan_id", "enterprise_id", "principal", "disbursement_date")
    flows = data["fund_flows"].join(loans, on="loan_id")
    div = flows.filter(
        pl.col("counterparty_type").is_in(DIVERTING_COUNTERPARTIES)
        & (pl.col("txn_date") <= pl.col("disbursement_date") + pl.duration(days=90))
    )
    return div.group_by("loan_id", "enterprise_id").agg(
        (
            pl.col("amount").cast(pl.Float64).sum() / pl.col("principal").cast(pl.Float64).first()
        ).alias("share"),
        pl.col("counterparty_type").unique().alias("types"),
    )


def test_diverters_have_disallowed_fund_flows(data, truth):
    """Diverters send most of a loan to diverting counterparties; healthy borrowers also send
    some related-party and cash flows (benign noise), but modest ones: "any related-party
    flow" does not single out the diverters, the share does."""
    te = truth["enterprises"]
    assert 0.003 < te.filter(pl.col("is_borrower"))["is_diverter"].mean() < 0.02
    share = _diverting_share(data)
    diverters = set(te.filter(pl.col("is_diverter"))["enterprise_id"])
    big = set(share.filter(pl.col("share") >= 0.30)["enterprise_id"])
    assert diverters and big == diverters
    assert te.filter(pl.col("is_diverter"))["diverter_defaults"].mean() > 0.5
    benign = share.filter(~pl.col("enterprise_id").is_in(list(diverters)))
    assert benign["enterprise_id"].n_unique() > 5 * len(diverters)  # many more benign firms
    assert benign["share"].max() < 0.25
    assert set(benign["types"].explode()) == {"related_party", "cash"}
    tl = truth["loans"].join(benign.select("loan_id"), on="loan_id")
    assert tl["benign_related_flows"].all() and not tl["funds_diverted"].any()
    flagged = te.filter(pl.col("noise_related_party_flows"))["enterprise_id"]
    assert set(flagged) >= set(benign["enterprise_id"])
    assert not (te["noise_related_party_flows"] & te["is_diverter"]).any()


def test_cny_dip_for_healthy_firms(data, truth):
    te = truth["enterprises"]
    healthy = te.filter(~pl.col("is_distressed") & ~pl.col("industry_downturn_affected"))
    ids = healthy["enterprise_id"].implode()
    vat = _vat(data).filter(pl.col("enterprise_id").is_in(ids))
    rev = dict(vat.group_by("period").agg(pl.col("rev").sum()).iter_rows())
    elec = data["utility_bills"].filter(
        (pl.col("utility") == "electricity") & pl.col("enterprise_id").is_in(ids)
    )
    kwh = dict(elec.group_by("period").agg(pl.col("consumption").cast(pl.Float64).sum())
               .iter_rows())  # fmt: skip
    assert "2024-02" in truth["meta"]["cny_months"] and "2025-01" in truth["meta"]["cny_months"]
    for series in (rev, kwh):
        base24 = (series["2023-12"] + series["2024-04"]) / 2
        base25 = (series["2024-12"] + series["2025-04"]) / 2
        assert series["2024-02"] < 0.8 * base24 and series["2024-01"] > 0.9 * base24
        assert series["2025-01"] < 0.8 * base25 and series["2025-02"] > series["2025-01"]


def test_downturn_and_liquidity_stress(data, truth):
    te = truth["enterprises"]
    assert truth["meta"]["downturn_industry"] == "F"
    vat = _vat(data).join(te.select("enterprise_id", "industry_code"), on="enterprise_id")
    last = vat.filter(pl.col("period").is_in(["2026-07", "2026-08", "2026-09"]))
    prior = vat.filter(pl.col("period").is_in(["2025-01", "2025-02", "2025-03"]))
    a = last.group_by(pl.col("industry_code") == "F").agg(pl.col("rev").sum()).sort("industry_code")
    b = (
        prior.group_by(pl.col("industry_code") == "F")
        .agg(pl.col("rev").sum())
        .sort("industry_code")
    )
    growth = (a["rev"] / b["rev"]).to_list()  # [others, F]
    assert growth[1] < growth[0] - 0.1
    loans = truth["loans"].filter(pl.col("bullet_principal_default"))
    assert loans.height > 0
    sched = data["repayment_schedule"].join(loans.select("loan_id"), on="loan_id")
    last_inst = sched.sort("installment_no").group_by("loan_id").last()
    assert (last_inst["due_date"] <= date(2026, 10, 31)).all()
    paid = data["repayments"].join(loans.select("loan_id"), on="loan_id")
    paid_total = paid["amount"].cast(pl.Float64).sum()
    due_total = (sched["principal_due"] + sched["interest_due"]).cast(pl.Float64).sum()
    assert paid_total < 0.85 * due_total


def test_applications_include_clear_declines(data, truth):
    apps = truth["applications"]
    assert apps.height == data["loan_applications"].height
    assert 10 <= apps["should_decline"].sum() < apps.height
    ent = data["enterprises"].join(apps.select("enterprise_id"), on="enterprise_id")
    assert ent["status"].is_in(["active", "suspended", "revoked"]).all()


def test_parquet_format_matches_csv(tmp_path, data):
    out = tmp_path / "pq"
    summary = generate(out, N, SEED, "parquet", end_month=END, files_per_table=2)
    assert all(p.suffix == ".parquet" for ps in summary.files.values() for p in ps)
    for table in ("loans", "repayments", "utility_bills"):
        df = read_table(out, table)
        pandera_schema(table).validate(df)
        assert df.equals(data[table]), table
    raw = pl.read_parquet(out / "loans" / "part-00000.parquet")
    assert raw.schema["disbursement_date"] == pl.Date


def test_project_ingestion_loads_every_row(tmp_path):
    """The project's own loader quarantines nothing the generator writes (both formats)."""
    from assets.ingestion import ingest_all

    for fmt in ("csv", "parquet"):
        out = tmp_path / f"landing_{fmt}"
        summary = generate(out, 400, SEED, fmt, end_month=END)
        results = ingest_all(tmp_path / f"{fmt}.duckdb", out)
        for table, res in results.items():
            assert not res.files_rejected, (fmt, table)
            assert res.rows_quarantined == 0, (fmt, table)
            assert res.rows_loaded == summary.rows[table], (fmt, table)
    assert "enterprises" in str(summary) and "total" in str(summary)


def test_truth_default_dates_follow_contract_semantics(data, truth):
    """Truth default_date = first due + 91 of an installment its cumulative payments had not
    covered by then (data-contract section 3), recomputed here independently with polars."""
    sched = (
        data["repayment_schedule"]
        .with_columns(
            ((pl.col("principal_due") + pl.col("interest_due")).cast(pl.Float64) * 100)
            .round().cast(pl.Int64).alias("due")
        )
        .sort("loan_id", "installment_no")
        .with_columns(pl.col("due").cum_sum().over("loan_id").alias("cum"))
    )  # fmt: skip
    pays = (
        data["repayments"]
        .with_columns((pl.col("amount").cast(pl.Float64) * 100).round().cast(pl.Int64).alias("a"))
        .sort("loan_id", "payment_date", "payment_id")
        .with_columns(pl.col("a").cum_sum().over("loan_id").alias("cum"))
    )
    settled = sched.sort("cum").join_asof(
        pays.sort("cum").select("loan_id", "cum", "payment_date"),
        on="cum",
        by="loan_id",
        strategy="forward",
        check_sortedness=False,
    )
    dday = pl.col("due_date") + pl.duration(days=91)
    computed = (
        settled.filter(
            (pl.col("payment_date").is_null() | (pl.col("payment_date") > dday))
            & (dday <= date(2026, 10, 31))
        )
        .group_by("loan_id")
        .agg(dday.min().alias("computed"))
    )
    j = truth["loans"].join(computed, on="loan_id", how="left")
    assert j.filter(pl.col("default_date").is_not_null()).height > 20
    assert (j["default_date"].fill_null(date(1900, 1, 1))
            == j["computed"].fill_null(date(1900, 1, 1))).all()  # fmt: skip
    perf = j.filter(pl.col("scenario").is_in(["performing", "diversion_performing"]))
    assert perf["default_date"].null_count() == perf.height
    bad = j.filter(pl.col("scenario").is_in(["diversion_default", "bullet_principal_default"]))
    assert bad["default_date"].is_not_null().mean() > 0.7


def _settled_flags(data) -> pl.DataFrame:
    """Per loan: total due, total paid and the last payment date (end of data)."""
    due = (
        data["repayment_schedule"]
        .group_by("loan_id")
        .agg((pl.col("principal_due") + pl.col("interest_due")).cast(pl.Float64).sum().alias("due"))
    )
    paid = (
        data["repayments"]
        .group_by("loan_id")
        .agg(
            pl.col("amount").cast(pl.Float64).sum().alias("paid"),
            pl.col("payment_date").max().alias("last_pay"),
        )
    )
    return due.join(paid, on="loan_id", how="left").fill_null(0)


def test_portfolio_is_realistic(data, truth):
    """A few percent of loans ever default; defaulted loans do not pile up as NPL forever."""
    tl = truth["loans"]
    ever = tl["default_date"].is_not_null().mean()
    assert 0.03 <= ever <= 0.09
    # Defaulted loans still owing at the end (unsettled) are a small share of all loans
    # still owing: a proxy for the NPL ratio by count.
    s = _settled_flags(data).join(tl.select("loan_id", "default_date"), on="loan_id")
    owing = s.filter(pl.col("paid") < pl.col("due") - 0.005)
    live = owing.join(data["loans"].select("loan_id", "disbursement_date"), on="loan_id")
    npl_count = live["default_date"].is_not_null().mean()
    assert 0.02 <= npl_count <= 0.12


def test_defaulted_loans_recover(data, truth):
    """Secured defaulted loans (collateral, fund or company guarantee) are settled by a
    recovery 4-12 months after the default; unsecured ones get a partial recovery; every
    recovery is a repayment dated on or before the end month's last day."""
    tl = truth["loans"]
    rec = tl.filter(pl.col("recovery_date").is_not_null())
    assert rec.height >= 15
    assert rec["default_date"].is_not_null().all()
    assert tl.filter(pl.col("default_date").is_null())["recovery_date"].null_count() == (
        tl.filter(pl.col("default_date").is_null()).height
    )
    assert set(rec["recovery_type"]) == {"collateral_sale", "guarantee_claim", "partial_unsecured"}
    assert tl.filter(pl.col("recovery_date").is_null())["recovery_type"].null_count() == (
        tl.filter(pl.col("recovery_date").is_null()).height
    )
    lag = (rec["recovery_date"] - rec["default_date"]).dt.total_days()
    assert (lag >= 120).all() and (lag <= 366).all()
    assert (rec["recovery_date"] <= date(2026, 10, 31)).all()
    # The recovery is a repayment of that amount on that date, the loan's last one.
    pays = data["repayments"].join(
        rec.select("loan_id", "recovery_date", "recovery_amount"), on="loan_id"
    )
    hit = pays.filter(
        (pl.col("payment_date") == pl.col("recovery_date"))
        & ((pl.col("amount").cast(pl.Float64) - pl.col("recovery_amount")).abs() < 0.005)
    )
    assert hit["loan_id"].n_unique() == rec.height
    assert (pays["payment_date"] <= pays["recovery_date"]).all()
    s = _settled_flags(data).join(
        rec.select("loan_id", "recovery_type", "recovery_amount"), on="loan_id"
    )
    secured = s.filter(pl.col("recovery_type") != "partial_unsecured")
    assert secured.height >= 10
    assert ((secured["paid"] - secured["due"]).abs() < 0.01).all(), "secured loans settle"
    loans = data["loans"].join(secured.select("loan_id"), on="loan_id")
    assert (
        (loans["collateral_type"] != "none")
        | loans["guarantee_type"].is_in(["government_fund", "third_party_company"])
    ).all()
    unsec = s.filter(pl.col("recovery_type") == "partial_unsecured")
    assert unsec.height > 0
    assert (unsec["paid"] < unsec["due"] - 0.01).all(), "unsecured loans stay short"
    before = unsec["due"] - (unsec["paid"] - unsec["recovery_amount"])
    share = unsec["recovery_amount"] / before
    assert ((share > 0.19) & (share < 0.51)).all()
    # Defaulted loans that got no recovery are not secured loans whose recovery was due.
    late = tl.filter(
        pl.col("default_date").is_not_null()
        & pl.col("recovery_date").is_null()
        & (pl.col("default_date") <= date(2025, 10, 31))
        & ~pl.col("scenario").is_in(["distress_recovered"])
    )
    assert late.height == 0


def test_applications_span_the_window_with_a_back_testable_truth(data, truth):
    apps = data["loan_applications"]
    t = truth["applications"]
    assert apps["application_id"].is_unique().all()
    assert apps["application_date"].dt.strftime("%Y-%m").n_unique() >= 20
    assert apps["application_date"].min() >= date(2023, 11, 1)
    assert apps["application_date"].max() <= date(2026, 10, 31)
    recent = apps.filter(pl.col("application_date") > date(2026, 10, 31) - pl.duration(days=90))
    assert recent.height >= 20
    assert apps["enterprise_id"].is_in(data["enterprises"]["enterprise_id"].implode()).all()
    t = t.join(apps.select("application_id", "application_date"), on="application_id")
    assert t.height == apps.height
    assert (t["application_date"] == t["application_date_right"]).all()
    assert set(t["origin"].unique()) == {"loan", "historic", "pending"}

    # An application that became a loan precedes its contract and matches product / purpose.
    loans = data["loans"].select("loan_id", "contract_date", "product", "purpose")
    linked = (
        t.filter(pl.col("origin") == "loan")
        .join(apps.select("application_id", "requested_product", "purpose"), on="application_id")
        .join(loans, on="loan_id")
    )
    assert linked.height == (t["origin"] == "loan").sum() > 0
    gap = (linked["contract_date"] - linked["application_date"]).dt.total_days()
    assert gap.is_between(3, 35).all()
    assert (linked["purpose"] == linked["purpose_right"]).all()
    named = linked.filter(pl.col("requested_product").is_not_null())
    assert (named["requested_product"] == named["product"]).all()

    # Truth consistent with the enterprise truth and with itself.
    ent = truth["enterprises"].select("enterprise_id", "distress_start_month")
    t = t.join(ent, on="enterprise_id", suffix="_firm")
    assert t["distress_start_month"].eq_missing(t["distress_start_month_firm"]).all()
    assert (
        t["should_decline"]
        == (t["distress_ongoing"] | t["dishonest_debtor_listed"] | t["bad_status"])
    ).all()
    assert not (t["distress_ongoing"] & (t["months_to_distress"] >= 0)).any()
    after = t.filter(pl.col("first_default_after").is_not_null())
    assert (after["first_default_after"] > after["application_date"]).all()
    within = (after["first_default_after"] - after["application_date"]).dt.total_days() <= 365
    assert (after["defaulted_within_12m"] == within).all()
    assert not t.filter(pl.col("first_default_after").is_null())["defaulted_within_12m"].any()
    # Some applicants look fine when applying but fall into distress 3-12 months later, and
    # some applicants that became loans still default within a year.
    assert t.filter(pl.col("months_to_distress").is_between(3, 12)).height >= 5
    assert t.filter((pl.col("origin") == "loan") & pl.col("defaulted_within_12m")).height >= 1
    done = t.filter(pl.col("outcome_complete_12m") & ~pl.col("defaulted_before"))
    rate = done.group_by("should_decline").agg(pl.col("defaulted_within_12m").mean())
    rate = dict(zip(rate["should_decline"], rate["defaulted_within_12m"], strict=True))
    assert rate[True] > rate[False]


# --- benign noise ---------------------------------------------------------------------------


def _calm(truth) -> pl.DataFrame:
    """Firms never distressed, diverting or liquidity stressed, with their noise flags."""
    te = truth["enterprises"]
    return te.filter(
        ~pl.col("is_distressed") & ~pl.col("is_diverter") & ~pl.col("liquidity_stress")
    )


def _installments(data) -> pl.DataFrame:
    """Each installment with the day it was settled (cumulative payments cover its cumulative
    due, data-contract section 3; null when never) and its firm."""
    sched = (
        data["repayment_schedule"]
        .with_columns(
            ((pl.col("principal_due") + pl.col("interest_due")).cast(pl.Float64) * 100)
            .round().cast(pl.Int64).alias("due")
        )
        .sort("loan_id", "installment_no")
        .with_columns(pl.col("due").cum_sum().over("loan_id").alias("cum"))
    )  # fmt: skip
    pays = (
        data["repayments"]
        .with_columns((pl.col("amount").cast(pl.Float64) * 100).round().cast(pl.Int64).alias("a"))
        .sort("loan_id", "payment_date", "payment_id")
        .with_columns(pl.col("a").cum_sum().over("loan_id").alias("cum"))
    )
    settled = sched.sort("cum").join_asof(
        pays.sort("cum").select("loan_id", "cum", "payment_date"),
        on="cum", by="loan_id", strategy="forward", check_sortedness=False,
    )  # fmt: skip
    firms = data["loans"].select("loan_id", "enterprise_id")
    return settled.join(firms, on="loan_id").with_columns(
        (pl.col("payment_date") - pl.col("due_date")).dt.total_days().alias("late")
    )


def test_noise_is_recorded_in_the_truth(truth):
    te = truth["enterprises"]
    assert truth["meta"]["noise"] == NoiseConfig().as_dict()
    n = te.height
    expected = {"late_installments": 0.25, "late_utility": 0.20, "late_tax": 0.15,
                "rating_drift": 0.20, "revenue_dip": 0.08, "loss_quarters": 0.30}  # fmt: skip
    for kind, share in expected.items():
        assert abs(te[f"noise_{kind}"].mean() - share) < 4 * (share / n) ** 0.5 + 0.01, kind
    assert 0.01 < te["noise_shrinking"].mean() < 0.07
    assert 0.05 < te["noise_seasonal"].mean() < 0.25
    assert 0.02 < te["noise_related_party_flows"].mean() < 0.15
    # `noise` lists exactly the kinds flagged.
    for row in (
        te.select("noise", *[f"noise_{k}" for k in FIRM_KINDS]).head(300).iter_rows(named=True)
    ):
        listed = set(filter(None, row["noise"].split(",")))
        assert listed == {k for k in FIRM_KINDS if row[f"noise_{k}"]}
    # Distress speeds: every distressed firm has one, nobody else.
    assert (te["distress_speed"].is_not_null() == te["is_distressed"]).all()
    assert set(te["distress_speed"].drop_nulls()) == set(SPEEDS)
    assert (te["sudden_default"] == (te["distress_speed"] == "sudden").fill_null(False)).all()


def test_healthy_firms_pay_late_now_and_then(data, truth):
    """Never-distressed firms flagged as late payers pay some installments days late and a
    few a month late, but never default; the others rarely pay late."""
    calm = _calm(truth).select("enterprise_id", "noise_late_installments")
    inst = (
        _installments(data)
        .join(calm, on="enterprise_id")
        .filter(pl.col("due_date") <= pl.date(2026, 9, 30))
    )
    by = {k: g for (k,), g in inst.group_by("noise_late_installments")}
    late, other = by[True], by[False]
    assert 0.08 < late["late"].is_between(1, 20).mean() < 0.25
    assert late["late"].is_between(28, 45).mean() > 0.01
    assert other["late"].is_between(1, 20).mean() < 0.06
    assert late["late"].is_between(1, 20).mean() > 2.5 * other["late"].is_between(1, 20).mean()
    assert (inst["late"].drop_nulls() < 91).all()
    ids = calm["enterprise_id"].implode()
    assert truth["loans"].filter(pl.col("enterprise_id").is_in(ids))["default_date"].null_count() \
        == truth["loans"].filter(pl.col("enterprise_id").is_in(ids)).height  # fmt: skip


def test_healthy_firms_pay_bills_and_tax_late_sometimes(data, truth):
    calm = _calm(truth)
    bills = (
        data["utility_bills"]
        .join(calm.select("enterprise_id", "noise_late_utility"), on="enterprise_id")
        .filter(pl.col("period") <= "2026-08")
        .with_columns(
            (pl.col("paid_date") > pl.col("period").str.to_date("%Y-%m").dt.month_end()
             + pl.duration(days=20)).alias("late")
        )
    )  # fmt: skip
    rate = dict(bills.group_by("noise_late_utility").agg(pl.col("late").mean()).iter_rows())
    assert rate[True] > 0.10 and rate[False] < 0.05
    vat = (
        data["tax_filings"]
        .filter(pl.col("tax_type") == "vat")
        .join(calm.select("enterprise_id", "noise_late_tax"), on="enterprise_id")
        .with_columns(
            (pl.col("filed_date") > pl.col("period").str.to_date("%Y-%m").dt.month_end()
             + pl.duration(days=15)).alias("late"),
            (pl.col("tax_payable") - pl.col("tax_paid")).cast(pl.Float64).alias("owed"),
        )
    )  # fmt: skip
    flagged = vat.filter(pl.col("noise_late_tax"))
    rate = dict(vat.group_by("noise_late_tax").agg(pl.col("late").mean()).iter_rows())
    assert rate[True] > 0.08 and rate[False] < 0.04
    # Paid short now and then, the rest with the next month: no lasting arrears.
    assert (flagged["owed"] > 0.005).sum() > 10
    assert (flagged["owed"] < -0.005).sum() > 10
    arrears = flagged.group_by("enterprise_id").agg(pl.col("owed").sum(), pl.len())
    assert arrears.filter(pl.col("len") == 36)["owed"].abs().max() < 0.01
    assert vat.filter(~pl.col("noise_late_tax"))["owed"].abs().max() < 0.005


def test_healthy_firms_report_a_loss_quarter_now_and_then(data, truth):
    """Quarterly CIT: firms flagged `loss_quarters` report some quarters with nothing payable
    (a loss) and profitable ones in between; other healthy firms always owe CIT; a distressed
    firm owes none from the quarter its distress shows until it recovers."""
    cit = data["tax_filings"].filter(pl.col("tax_type") == "cit").with_columns(
        (pl.col("tax_payable") == 0).alias("nil")
    )
    calm = cit.join(_calm(truth).select("enterprise_id", "noise_loss_quarters"), on="enterprise_id")
    rate = dict(calm.group_by("noise_loss_quarters").agg(pl.col("nil").mean()).iter_rows())
    assert 0.2 < rate[True] < 0.4 and rate[False] == 0.0
    per_firm = calm.filter(pl.col("noise_loss_quarters")).group_by("enterprise_id").agg(
        pl.col("nil").sum(), pl.len()
    )
    assert (per_firm["nil"] < per_firm["len"]).mean() > 0.9  # losses now and then, not always
    te = truth["enterprises"].filter(pl.col("distress_speed").is_in(["normal", "slow"]))
    cit = cit.join(
        te.select("enterprise_id", "distress_visible_month", "recovery_month"), on="enterprise_id"
    )
    recovered = pl.col("period") >= pl.col("recovery_month")
    shown = cit.filter(pl.col("period") >= pl.col("distress_visible_month"))
    in_distress = shown.filter(~recovered.fill_null(False))
    assert in_distress.height > 20 and in_distress["nil"].all()
    after = shown.filter(recovered.fill_null(False))
    assert after.height > 10 and after["nil"].mean() < 0.5  # profitable again


def test_ratings_persist_and_drift_both_ways(data, truth):
    calm = _calm(truth)
    seq = (
        data["tax_ratings"].sort("enterprise_id", "year")
        .group_by("enterprise_id", maintain_order=True).agg(pl.col("rating").str.join(""))
        .join(calm.select("enterprise_id", "noise_rating_drift"), on="enterprise_id")
    )  # fmt: skip
    assert seq["rating"].str.len_chars().min() == 3
    steady = seq.filter(~pl.col("noise_rating_drift"))["rating"]
    assert all(len(set(r)) == 1 for r in steady)  # a firm keeps its rating
    drift = seq.filter(pl.col("noise_rating_drift"))["rating"].to_list()
    order = "ABMCD"
    moves = [(order.index(r[i + 1]) - order.index(r[i])) for r in drift for i in range(2)]
    assert moves.count(1) > 20 and moves.count(-1) > 20  # down and back up, or up and down
    assert all(abs(x) <= 1 for x in moves)
    assert "D" not in "".join(drift)
    downs = [r for r in drift if r[0] == r[2] and order.index(r[1]) == order.index(r[0]) + 1]
    assert len(downs) > 10  # one notch down for a year, then back


def _monthly_rev(data, firms: pl.DataFrame) -> pl.DataFrame:
    return _vat(data).join(firms, on="enterprise_id")


def test_shrinking_firms_decline_for_years_and_keep_paying(data, truth):
    te = truth["enterprises"]
    calm = _calm(truth).select("enterprise_id", "noise_shrinking", "noise_seasonal")
    vat = _monthly_rev(data, calm.filter(~pl.col("noise_seasonal")))
    first = vat.filter(pl.col("period").is_between(pl.lit("2023-11"), pl.lit("2024-10")))
    last = vat.filter(pl.col("period").is_between(pl.lit("2025-11"), pl.lit("2026-10")))
    ratio = (
        last.group_by("enterprise_id", "noise_shrinking").agg(pl.col("rev").sum().alias("b"))
        .join(first.group_by("enterprise_id").agg(pl.col("rev").sum().alias("a")),
              on="enterprise_id")
        .with_columns((pl.col("b") / pl.col("a")).alias("r"))
    )  # fmt: skip
    med = dict(ratio.group_by("noise_shrinking").agg(pl.col("r").median()).iter_rows())
    assert 0.4 < med[True] < 0.85 and med[False] > 1.0
    shrinking = te.filter(pl.col("noise_shrinking"))
    assert shrinking.height >= 20
    assert not shrinking["is_distressed"].any()
    assert shrinking["first_default_date"].null_count() == shrinking.height
    elec = (
        data["utility_bills"].filter(pl.col("utility") == "electricity")
        .join(shrinking.select("enterprise_id"), on="enterprise_id")
        .with_columns(pl.col("consumption").cast(pl.Float64))
    )  # fmt: skip
    first_year = pl.col("period").is_between(pl.lit("2023-11"), pl.lit("2024-10"))
    last_year = pl.col("period").is_between(pl.lit("2025-11"), pl.lit("2026-10"))
    a = elec.filter(first_year)["consumption"].sum()
    b = elec.filter(last_year)["consumption"].sum()
    assert b < 0.85 * a


def test_seasonal_firms_swing_and_dips_recover(data, truth):
    calm = _calm(truth).select("enterprise_id", "noise_seasonal", "noise_revenue_dip")
    vat = _monthly_rev(data, calm).filter(
        pl.col("period").is_between(pl.lit("2025-03"), pl.lit("2025-12"))  # no CNY months
    )
    swing = vat.group_by("enterprise_id", "noise_seasonal").agg(
        (pl.col("rev").max() / pl.col("rev").min()).alias("s")
    )
    med = dict(swing.group_by("noise_seasonal").agg(pl.col("s").median()).iter_rows())
    assert med[True] > 2.0 and med[False] < 1.6
    # A one-off bad quarter: its three months well below the firm's usual, then back.
    vat = _monthly_rev(data, calm.filter(~pl.col("noise_seasonal"))).sort("enterprise_id", "g")
    q = vat.with_columns(
        pl.col("rev").rolling_mean(3).over("enterprise_id").alias("q"),
        pl.col("rev").median().over("enterprise_id").alias("med"),
    )
    low = q.group_by("enterprise_id", "noise_revenue_dip").agg(
        (pl.col("q") / pl.col("med")).min().alias("low"),
        (pl.col("q") / pl.col("med")).last().alias("end"),
    )
    dip = low.filter(pl.col("noise_revenue_dip"))
    rest = low.filter(~pl.col("noise_revenue_dip"))
    assert dip["low"].median() < 0.75 < rest["low"].median()
    assert dip["end"].median() > 0.85  # they recover


def test_distress_speeds_and_sudden_defaults(data, truth):
    """Distress unfolds at different speeds (months from onset to short payments); sudden
    defaults show nothing before the missed payments, the others a falling revenue."""
    months = {
        "distress_start_month": "start",
        "repayment_partial_from_month": "partial",
        "repayment_stop_month": "stop",
        "distress_visible_month": "visible",
    }
    te = (
        truth["enterprises"]
        .filter(pl.col("is_distressed"))
        .with_columns(
            pl.col(c).map_elements(_g, return_dtype=pl.Int64).alias(a) for c, a in months.items()
        )
    )
    lags = te.group_by("distress_speed").agg(
        (pl.col("partial") - pl.col("start")).min().alias("lo"),
        (pl.col("partial") - pl.col("start")).max().alias("hi"),
        (pl.col("stop") - pl.col("partial")).max().alias("stop_hi"),
    )
    r = {row[0]: row[1:] for row in lags.iter_rows()}
    assert r["sudden"][1] <= 2 and r["sudden"][2] == 0  # no partial phase
    assert r["fast"][1] <= 1 and r["fast"][2] == 1
    assert 3 <= r["normal"][0] and r["normal"][1] <= 6
    assert r["slow"][0] >= 9 and r["slow"][2] <= 6
    sudden = te.filter(pl.col("sudden_default"))
    assert sudden.height >= 5
    assert (sudden["visible"] == sudden["stop"] + 1).all()
    # Sudden defaults: nothing shows before the missed payments (no bad registry events, tax
    # paid in full, revenue as a year before).
    visible = sudden.select("enterprise_id", "start", "stop")
    ev = data["registry_events"].join(visible, on="enterprise_id").filter(
        pl.col("event_type").is_in(["court_judgment_defendant", "enforcement_listed",
                                    "dishonest_debtor_listed", "abnormal_operation_listed"])
    )  # fmt: skip
    ev_m = ev["event_date"].dt.year().cast(pl.Int64) * 12 + ev["event_date"].dt.month() - 1
    assert (ev_m > ev["stop"]).all()
    before = (
        _vat(data)
        .join(visible, on="enterprise_id")
        .filter(pl.col("g").is_between(pl.col("stop") - 3, pl.col("stop")))
    )
    assert before.height > 10
    assert (before["tax_paid"] >= before["tax_payable"]).mean() > 0.95

    def revenue_before_stop(firms: pl.DataFrame) -> float:
        """Median over firms: VAT revenue of the 4 months up to the stop / a year earlier."""
        vat = _vat(data).join(firms.select("enterprise_id", "stop"), on="enterprise_id")
        b = vat.filter(pl.col("g").is_between(pl.col("stop") - 3, pl.col("stop")))
        a = vat.filter(pl.col("g").is_between(pl.col("stop") - 15, pl.col("stop") - 12))
        return (
            b.group_by("enterprise_id").agg(pl.col("rev").mean().alias("b"))
            .join(a.group_by("enterprise_id").agg(pl.col("rev").mean().alias("a")),
                  on="enterprise_id")
            .select((pl.col("b") / pl.col("a")).median())
            .item()
        )  # fmt: skip

    assert revenue_before_stop(sudden) > 0.8  # no decline before the default
    others = te.filter(pl.col("distress_speed").is_in(["fast", "normal"]))
    assert revenue_before_stop(others) < 0.7
    assert sudden["first_default_date"].is_not_null().sum() >= 3


def test_noise_config_validates_and_scales():
    assert NoiseConfig.off().late_installments == 0 and NoiseConfig.off().recovery == 0
    doubled = NoiseConfig().scaled(2)
    assert doubled.late_installments == 0.5 and doubled.recovery == 0.96
    assert doubled.fast_distress + doubled.slow_distress <= 1.0
    assert NoiseConfig().scaled(0) == NoiseConfig.off()
    with pytest.raises(ValueError):
        NoiseConfig(late_tax=1.5)
    with pytest.raises(ValueError):
        NoiseConfig(fast_distress=0.6, slow_distress=0.6)


_SMALL = 1500
#: kind -> the landing tables it may change; every other table stays byte-identical.
_TOUCHES = {
    "late_installments": {"repayments"},
    "late_utility": {"utility_bills"},
    "late_tax": {"tax_filings"},
    "rating_drift": {"tax_ratings"},
    "shrinking": {"tax_filings", "utility_bills"},
    "seasonal": {"tax_filings", "utility_bills"},
    "revenue_dip": {"tax_filings", "utility_bills"},
    "related_party_flows": {"fund_flows"},
    "loss_quarters": {"tax_filings"},
}


@pytest.fixture(scope="module")
def small_default(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("noise") / "landing"
    generate(out, _SMALL, SEED, "csv", end_month=END)
    return out


def _firm_rows(root: Path, table: str) -> pl.DataFrame:
    df = read_table(root, table)
    if "enterprise_id" not in df.columns:
        loans = read_table(root, "loans").select("loan_id", "enterprise_id")
        df = df.join(loans, on="loan_id")
    return df.drop("payment_id", "flow_id", strict=False)


@pytest.mark.parametrize("kind", list(_TOUCHES))
def test_each_noise_switch_removes_only_that_noise(kind, small_default, tmp_path):
    """Switching one kind off: the truth flags nobody, the tables it touches change only for
    the firms it flagged, and every other landing table is byte-identical."""
    off = tmp_path / "landing"
    fields = {kind: 0.0, **({"seasonal_other": 0.0} if kind == "seasonal" else {})}
    generate(off, _SMALL, SEED, "csv", end_month=END, noise=replace(NoiseConfig(), **fields))
    te_on = pl.read_parquet(small_default.parent / "landing_truth" / "enterprises.parquet")
    te_off = pl.read_parquet(off.parent / "landing_truth" / "enterprises.parquet")
    assert not te_off[f"noise_{kind}"].any()
    assert te_on[f"noise_{kind}"].sum() > 5
    assert te_on.drop(f"noise_{kind}", "noise").equals(te_off.drop(f"noise_{kind}", "noise"))
    flagged = te_on.filter(pl.col(f"noise_{kind}"))["enterprise_id"].implode()
    for table in TABLES:
        files = sorted(p.name for p in (small_default / table).iterdir())
        same = all(
            (small_default / table / f).read_bytes() == (off / table / f).read_bytes()
            for f in files
        )
        if table not in _TOUCHES[kind]:
            assert same, (kind, table)
            continue
        assert not same, (kind, table)
        on_rows = _firm_rows(small_default, table)
        off_rows = _firm_rows(off, table)
        keys = [c for c in on_rows.columns if c != "enterprise_id"]
        on_rest = on_rows.filter(~pl.col("enterprise_id").is_in(flagged)).sort(keys)
        off_rest = off_rows.filter(~pl.col("enterprise_id").is_in(flagged)).sort(keys)
        assert on_rest.equals(off_rest), (kind, table)


def test_distress_noise_switches(tmp_path):
    """No sudden, fast or slow distress and no recovery when switched off; everything off
    still writes contract-conformant data."""
    out = tmp_path / "landing"
    generate(out, _SMALL, SEED, "csv", end_month=END, noise=NoiseConfig.off())
    te = pl.read_parquet(tmp_path / "landing_truth" / "enterprises.parquet")
    assert set(te["distress_speed"].drop_nulls()) == {"normal"}
    assert not te["recovered"].any() and not te["sudden_default"].any()
    assert (te["noise"] == "").all()
    assert (te["distress_visible_month"].eq_missing(te["distress_start_month"])).all()
    for table in TABLES:
        pandera_schema(table).validate(read_table(out, table))


def test_scaled_noise_still_conforms(tmp_path):
    out = tmp_path / "landing"
    generate(out, _SMALL, SEED, "parquet", end_month=END, noise=NoiseConfig().scaled(2.0))
    for table in TABLES:
        pandera_schema(table).validate(read_table(out, table))
    te = pl.read_parquet(tmp_path / "landing_truth" / "enterprises.parquet")
    assert 0.4 < te["noise_late_installments"].mean() < 0.6


# --- the guarantee and related-party network (issue 13) ----------------------------------------


def test_network_off_writes_no_network_and_the_same_registry(small_default, tmp_path):
    off = tmp_path / "landing"
    generate(off, _SMALL, SEED, "csv", end_month=END, network_config=NetworkConfig.off())
    for table in ("guarantees", "enterprise_links"):
        assert not list((off / table).iterdir())
    assert "officer_id" not in pl.read_csv(next((off / "loans").glob("*.csv")), n_rows=1).columns
    apps = pl.read_csv(next((off / "loan_applications").glob("*.csv")), n_rows=1)
    assert "offered_guarantor_id" not in apps.columns
    assert not (tmp_path / "landing_truth" / "contagion.parquet").exists()
    for f in (small_default / "enterprises").iterdir():
        assert f.read_bytes() == (off / "enterprises" / f.name).read_bytes()
    meta = json.loads((tmp_path / "landing_truth" / "meta.json").read_text())
    assert meta["network"]["enabled"] is False


def test_guarantee_structures(data, truth):
    g, loans, ents = data["guarantees"], data["loans"], data["enterprises"]
    g = g.join(loans.select("loan_id", "enterprise_id", "contract_date", "principal"), on="loan_id")
    assert (g["start_date"] == g["contract_date"]).all()
    assert set(g["guarantor_type"]) == {"government_fund", "enterprise", "individual"}
    # most borrowers have no guarantor or one
    per = g.group_by("enterprise_id").agg(pl.col("guarantor_id").n_unique().alias("k"))
    borrowers = loans["enterprise_id"].n_unique()
    assert per.filter(pl.col("k") >= 2).height < 0.15 * borrowers
    assert per.height < 0.8 * borrowers
    ent = g.filter(pl.col("guarantor_type") == "enterprise")
    assert all(is_valid_uscc(c) for c in ent["guarantor_id"])
    outside = ent.filter(~pl.col("guarantor_id").is_in(ents["enterprise_id"].implode()))
    assert outside.height > 0.2 * ent.height  # guarantors outside the book
    gov = g.filter(pl.col("guarantor_type") == "government_fund").join(
        ents.select("enterprise_id", "region_code"), on="enterprise_id"
    )
    assert (gov["guarantor_id"] == "GF" + gov["region_code"]).all()
    fund_loans = loans.filter(pl.col("guarantee_type") == "government_fund")["loan_id"]
    assert set(fund_loans) == set(gov["loan_id"])
    ind = g.filter(pl.col("guarantor_type") == "individual")["guarantor_id"]
    assert ind.str.contains(r"^P[0-9a-f]{16}$").all()
    maturity = loans.select("loan_id", "maturity_date")
    open_ = g.filter(pl.col("end_date").is_null()).join(maturity, on="loan_id")
    assert open_.height > 0 and (open_["maturity_date"] > date(2026, 11, 20)).all()
    ended = g.filter(pl.col("end_date").is_not_null())
    assert (ended["end_date"] >= ended["start_date"]).all()
    # every circle of the truth is one cycle of enterprise guarantees among its members
    circles = pl.read_parquet(truth["root"] / "guarantee_circles.parquet")
    assert 2 in set(circles["circle_size"]) and circles["circle_size"].max() >= 4
    edges = ent.select(pl.col("guarantor_id").alias("src"), pl.col("enterprise_id").alias("dst"))
    for (no,), members in circles.group_by(["circle_no"]):
        ids = set(members["enterprise_id"])
        inner = edges.filter(pl.col("src").is_in(list(ids)) & pl.col("dst").is_in(list(ids)))
        succ = dict(inner.unique().iter_rows())
        assert set(succ) == ids and len(succ) == len(ids) == members["circle_size"][0], no
        node, seen = next(iter(ids)), set()
        while node not in seen:
            seen.add(node)
            node = succ[node]
        assert seen == ids, no
    # loans of circle members say so
    circle_loans = loans.filter(pl.col("enterprise_id").is_in(circles["enterprise_id"].implode()))
    assert (circle_loans["guarantee_type"] == "third_party_company").all()
    assert loans["officer_id"].null_count() < 0.1 * loans.height


def test_offered_guarantors(data, truth):
    """Most applications offer no enterprise guarantor; some a healthy firm of the book, a
    few a firm in distress (screening should reject those)."""
    apps, ents = data["loan_applications"], data["enterprises"]
    offered = apps.filter(pl.col("offered_guarantor_id").is_not_null())
    assert 0.05 * apps.height < offered.height < 0.25 * apps.height
    assert all(is_valid_uscc(c) for c in offered["offered_guarantor_id"])
    assert offered["offered_guarantor_id"].is_in(ents["enterprise_id"].implode()).all()
    assert (offered["offered_guarantor_id"] != offered["enterprise_id"]).all()
    te = pl.read_parquet(truth["root"] / "enterprises.parquet").select(
        pl.col("enterprise_id").alias("offered_guarantor_id"), "is_distressed")
    distressed = offered.join(te, on="offered_guarantor_id")["is_distressed"].mean()
    assert 0 < distressed < 0.5


def test_related_parties(data):
    links, ents = data["enterprise_links"], data["enterprises"]
    assert set(links["relation"]) == {
        "shareholder_of", "subsidiary_of", "same_legal_rep", "same_controller",
        "major_supplier", "major_customer",
    }  # fmt: skip
    assert all(is_valid_uscc(c) for c in links["related_id"])
    assert (~links["related_id"].is_in(ents["enterprise_id"].implode())).any()
    same = links.filter(pl.col("relation") == "same_controller")
    reverse = same.select(
        pl.col("related_id").alias("enterprise_id"), pl.col("enterprise_id").alias("related_id")
    )
    assert same.join(reverse, on=["enterprise_id", "related_id"]).height > 0  # both ways
    shares = links.filter(pl.col("relation") == "shareholder_of")["share"]
    assert shares.null_count() == 0
    assert (
        links.filter(pl.col("relation").is_in(["same_controller", "major_supplier"]))[
            "share"
        ].is_null()
    ).all()


def test_contagion_is_recorded_in_the_truth(tmp_path):
    """Strong contagion: firms hit fall into distress after their source's default."""
    out = tmp_path / "landing"
    cfg = NetworkConfig(circles=0.3, contagion_circle=1.0, contagion_guarantor=1.0,
                        contagion_related=1.0)  # fmt: skip
    generate(out, _SMALL, SEED, "parquet", end_month=END, network_config=cfg)
    root = tmp_path / "landing_truth"
    c = pl.read_parquet(root / "contagion.parquet")
    te = pl.read_parquet(root / "enterprises.parquet")
    assert c.height > 5 and set(c["channel"]) >= {"guarantee_circle", "related_party"}
    assert c["enterprise_id"].n_unique() == c.height
    hit = c.join(te, on="enterprise_id")
    assert hit["is_distressed"].all()
    assert (hit["distress_start_month"] == hit["distress_start_month_right"]).all()
    assert (hit["distress_start_month"] > hit["source_default_month"]).all()
    assert set(hit["distress_speed"]) == {"normal"} and not hit["recovered"].any()
    src = c.join(te, left_on="source_enterprise_id", right_on="enterprise_id")
    assert src["expected_default"].all()
    for table in ("guarantees", "enterprise_links", "loans"):
        pandera_schema(table).validate(read_table(out, table))
