"""Another firm on red by its PD (issue 13): fct_enterprise_month_end_network_pd.

A hand-made book: QB guarantees QA's loan, QR is related to QA, QC guarantees the healthy QD,
QU guarantees QT (listed as a dishonest debtor: on red by a hard trigger). QA's and QT's loans
fall due on 2024-04-15 and are never paid. A stored champion scorecard with one feature
(dpd_max) gives PD 0.5 to a firm past due and about 0.7% to a current one, so QA reaches the
catalog's red cut-off from April's month end, by its PD only, until it defaults in July.
"""

from __future__ import annotations

import math
import shutil
from datetime import date
from pathlib import Path

import duckdb
import pytest
import yaml
from conftest import CONTRACT_EXAMPLES, write_csv
from test_guarantees import (
    EVENT_HEADER,
    LINK_HEADER,
    code,
    firms_with_guarantees,
    link_row,
)

from assets.contract import TABLES
from assets.core.dbt_project import run_dbt
from assets.dbt_assets import decision_vars, store_champion_for_dbt
from assets.ingestion import ingest_all
from assets.scorecard.spec import NETWORK_ON_RED, SpecError, load_spec, parse_spec
from assets.scorecard.sql import DDL
from assets.screening.rules import DEPENDENCIES as SCREENING_DEPENDENCIES
from assets.screening.rules import build_screening
from assets.signals.catalog import load_catalog
from assets.signals.decisions import NETWORK_PD_COLUMNS

AS_OF = "2024-12-31"
MODEL = "pd_scorecard test-champion"
FIRMS = ["QA", "QB", "QC", "QD", "QR", "QT", "QU"]
PAST_DUE = {"QA": "2024-04-15", "QT": "2024-04-15"}  # never paid
EDGES = [("QB", "QA"), ("QC", "QD"), ("QU", "QT")]
ROOT = Path(__file__).resolve().parents[1]
NETWORK_YAMLS = (
    ROOT / "dbt_project/models/marts/network/_network__models.yml",
    ROOT / "dbt_project/models/intermediate/network/_int_network__models.yml",
)


@pytest.fixture(autouse=True)
def pseudonym_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RISK_PSEUDONYM_KEY", "test-network-pd-key")


def _landing(landing: Path) -> None:
    firms_with_guarantees(landing, FIRMS, EDGES, PAST_DUE, "pd", "GQ")
    write_csv(landing, "enterprise_links", "pd.csv", LINK_HEADER, [
        link_row(enterprise_id=code("QR"), related_id=code("QA"), relation="same_controller",
                 valid_from="2024-01-01"),
    ])  # fmt: skip
    app = {"application_id": "APQ1", "enterprise_id": code("QB"), "application_date":
           "2024-05-15", "requested_amount": "100000", "requested_term_months": "12",
           "requested_product": "working_capital_loan", "purpose": "working_capital",
           "offered_guarantor_id": ""}
    header = list(TABLES["loan_applications"].column_names)
    write_csv(landing, "loan_applications", "pd.csv", header, [[app[c] for c in header]])
    event = {"event_id": "EVQ1", "enterprise_id": code("QT"), "event_date": "2024-03-10",
             "event_type": "dishonest_debtor_listed", "amount": "", "description": ""}
    write_csv(landing, "registry_events", "pd.csv", EVENT_HEADER,
              [[event[c] for c in EVENT_HEADER]])


def store_champion(wh: Path, past_due_pd: float) -> None:
    """A champion scorecard on dpd_max: PD `past_due_pd` at dpd >= 1, about 0.7% below."""
    with duckdb.connect(str(wh)) as con:
        for ddl in DDL:
            con.execute(ddl)
        con.execute("DELETE FROM marts.pd_scorecard_bins")
        con.execute("DELETE FROM marts.pd_scorecard_models")
        con.execute(
            "INSERT INTO marts.pd_scorecard_models (model_version, status, fitted_at, fit_date, "
            "intercept, features) VALUES (?, 'champion', now(), DATE '2024-01-31', 0, "
            "['dpd_max'])",
            [MODEL],
        )
        logit = math.log(past_due_pd / (1 - past_due_pd))
        for bin_id, lower, upper, missing, contribution in (
            (0, None, 1.0, False, -5.0), (1, 1.0, None, False, logit), (2, None, None, True, -5.0),
        ):  # fmt: skip
            con.execute(
                "INSERT INTO marts.pd_scorecard_bins (model_version, feature, bin_id, "
                "lower_bound, upper_bound, is_missing, logit_contribution, points) "
                "VALUES (?, 'dpd_max', ?, ?, ?, ?, ?, 0)",
                [MODEL, bin_id, lower, upper, missing, contribution],
            )


def build(tmp: Path, wh: Path, *select: str) -> None:
    """dbt as the Dagster step runs it: the champion stored in the warehouse before the step
    is the one that scores."""
    store_champion_for_dbt(wh)
    proc = run_dbt(
        ["build", "--select", *select],
        warehouse=wh,
        dbt_vars={"as_of_date": AS_OF, **decision_vars(load_catalog())},
        target_path=tmp / "target",
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-6000:]


@pytest.fixture(scope="module")
def book(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The warehouse built with no champion stored (first build), and the tmp dir."""
    tmp = tmp_path_factory.mktemp("network_pd")
    landing = tmp / "landing"
    shutil.copytree(CONTRACT_EXAMPLES / "landing", landing)
    _landing(landing)
    mp = pytest.MonkeyPatch()
    mp.setenv("RISK_PSEUDONYM_KEY", "test-network-pd-key")
    try:
        wh = tmp / "wh.duckdb"
        ingest_all(wh, landing)
        build(tmp, wh, "+fct_enterprise_month_end_network_pd", *(
            f"+{m}" for m in SCREENING_DEPENDENCIES if m != "fct_enterprise_month_end_network_pd"))
        return tmp, wh
    finally:
        mp.undo()


def rows(wh: Path) -> dict[tuple[str, str], dict[str, object]]:
    tag = {code(t): t for t in FIRMS}
    with duckdb.connect(str(wh), read_only=True) as con:
        cur = con.execute(
            "SELECT * FROM marts.fct_enterprise_month_end_network_pd ORDER BY ALL")
        names = [d[0] for d in cur.description]
        out = {}
        for r in cur.fetchall():
            row = dict(zip(names, r, strict=True))
            out[(tag.get(row["enterprise_id"], row["enterprise_id"]), str(row["month_end"]))] = row
        return out


def hits(wh: Path) -> dict[tuple[str, str, str], str]:
    """{(firm tag, month end, signal id): reason} of the network signals, on the engine's own
    path (features_sql + signal_hits_rows_sql)."""
    from assets.signals.decisions import features_sql, signal_hits_rows_sql

    catalog = load_catalog()
    tag = {code(t): t for t in FIRMS}
    with duckdb.connect(str(wh), read_only=True) as con:
        feats = features_sql(con, catalog, end=date(2024, 12, 31), start=date(2024, 2, 29))
        con.execute(f"CREATE TEMP TABLE f AS {feats}")
        got = con.execute(
            f"SELECT enterprise_id, month_end::VARCHAR, signal_id, reason "
            f"FROM ({signal_hits_rows_sql(catalog, 'f')}) WHERE signal_id LIKE 'network_%'"
        ).fetchall()
    return {(tag.get(e, e), m, s): r for e, m, s, r in got}


def label(tag: str) -> str:
    return f"Firm {tag} ({code(tag)})"


def test_no_champion_no_pd_route_and_nothing_breaks(book: tuple[Path, Path]) -> None:
    tmp, wh = book
    assert store_champion_for_dbt(wh) == ""
    assert rows(wh) == {}
    got = hits(wh)
    assert not any(s.endswith("_red_by_pd") for _, _, s in got)
    # the hard-trigger route is unaffected: QU guarantees QT, a listed dishonest debtor
    assert (("QU", "2024-03-31", "network_guaranteed_party_on_red")) in got


def test_other_firm_red_by_its_pd_names_it(book: tuple[Path, Path]) -> None:
    """QA has no hard trigger; from April's end (15 days past due) the stored champion gives it
    PD 0.5, over the catalog's red cut-off: QB (its guarantor) and QR (related) see it on red by
    its PD, named, with the PD and the cut-off, in English and Chinese. March's end (current)
    and after QA's default (July: it counts in default then) they do not."""
    from assets.report.i18n import reason_zh

    tmp, wh = book
    store_champion(wh, 0.5)
    build(tmp, wh, "fct_enterprise_month_end_network_pd")
    cutoff = load_catalog().pd_tiers.red
    got = rows(wh)
    qb = got[("QB", "2024-04-30")]
    assert qb["guaranteed_parties_red_by_pd"] == 1
    assert qb["guaranteed_party_red_by_pd"] == label("QA")
    assert qb["guaranteed_party_pd"] == pytest.approx(0.5)
    assert qb["red_pd_cutoff"] == cutoff and qb["pd_model_version"] == MODEL
    assert got[("QR", "2024-04-30")]["related_party_red_by_pd"] == label("QA")
    assert ("QB", "2024-03-31") not in got  # QA current at March's end: PD about 0.7%
    assert ("QC", "2024-04-30") not in got  # QD is current
    # QT is past due too (PD 0.5) but on red by its hard trigger: counted there, not twice
    assert ("QU", "2024-04-30") not in got
    # QA defaults 90 days after 2024-04-15: from then in default, not on red
    assert ("QB", "2024-06-30") in got and ("QB", "2024-07-31") not in got

    sig = hits(wh)
    reason = sig[("QB", "2024-04-30", "network_guaranteed_party_red_by_pd")]
    assert label("QA") in reason and "50%" in reason and f"{cutoff * 100:.0f}%" in reason
    zh = reason_zh(reason, load_catalog())
    assert label("QA") in zh and "违约概率为50%" in zh and "红色阈值" in zh
    assert label("QA") in sig[("QR", "2024-04-30", "network_related_party_red_by_pd")]
    assert ("QB", "2024-03-31", "network_guaranteed_party_red_by_pd") not in sig
    assert not any(k[0] in ("QC", "QU") and k[2].endswith("_red_by_pd") for k in sig)
    assert ("QU", "2024-04-30", "network_guaranteed_party_on_red") in sig


def test_below_the_cutoff_does_not_fire(book: tuple[Path, Path]) -> None:
    tmp, wh = book
    cutoff = load_catalog().pd_tiers.red
    store_champion(wh, cutoff - 0.01)
    build(tmp, wh, "fct_enterprise_month_end_network_pd")
    assert rows(wh) == {}
    assert not any(s.endswith("_red_by_pd") for _, _, s in hits(wh))
    store_champion(wh, cutoff)  # reaching the cut-off is red, as in the decisions
    build(tmp, wh, "fct_enterprise_month_end_network_pd")
    assert rows(wh)[("QB", "2024-04-30")]["guaranteed_parties_red_by_pd"] == 1


def test_screening_reads_the_network_pd_mart(book: tuple[Path, Path]) -> None:
    """Screening evaluates the catalog on each applicant's features with the mart beside them
    (the PD-route signals' columns): it builds on a warehouse where dbt made the mart."""
    tmp, wh = book
    store_champion(wh, 0.5)
    build(tmp, wh, "fct_enterprise_month_end_network_pd")
    with duckdb.connect(str(wh)) as con:
        assert build_screening(con, date(2024, 12, 31)) > 0
        (signals,) = con.execute(
            "SELECT early_warning_signals FROM marts.application_screening "
            "WHERE application_id = 'APQ1'").fetchone()
    # QB applies on 2024-05-15: its April features, QA on red by its PD
    assert "network_guaranteed_party_red_by_pd" in signals


def _network_on_red_columns() -> set[str]:
    cols = set()
    for path in NETWORK_YAMLS:
        for model in yaml.safe_load(path.read_text(encoding="utf-8"))["models"]:
            names = {c["name"] for c in model.get("columns") or []}
            if model["name"] == "fct_enterprise_month_end_network_pd":
                cols |= names - {"enterprise_id", "month_end"}
            elif model["name"] == "int_enterprise_month__network":
                cols |= {n for n in names if "red" in n}
    return cols


def test_scorecard_never_takes_network_on_red_features() -> None:
    columns = _network_on_red_columns()
    assert "guaranteed_parties_red_by_pd" in columns and "related_parties_on_red" in columns
    spec = load_spec()
    assert not any(NETWORK_ON_RED.search(f.name) for f in spec.features)
    base = spec.model_dump(mode="json")
    for col in sorted(columns):
        data = {**base, "features": [*base["features"], {"name": col, "mart": "enterprise"}]}
        with pytest.raises(SpecError, match=f"features {col}: another firm on red"):
            parse_spec(data, "scorecard.yml")
    # an ordinary network feature (a fact, no PD, no red) stays a possible candidate
    ok = {**base, "features": [*base["features"],
                               {"name": "guaranteed_parties_in_default", "mart": "enterprise"}]}
    parse_spec(ok)


def test_engine_columns_match_the_mart_contract() -> None:
    """decisions.features_sql stands the mart's columns in as NULLs when it is not built."""
    doc = yaml.safe_load(NETWORK_YAMLS[0].read_text(encoding="utf-8"))
    model = next(m for m in doc["models"] if m["name"] == "fct_enterprise_month_end_network_pd")
    contract = {c["name"]: c["data_type"] for c in model["columns"]}
    contract.pop("enterprise_id"), contract.pop("month_end")
    assert contract == NETWORK_PD_COLUMNS


def test_a_night_rescores_only_the_network_rows_of_its_firms(book: tuple[Path, Path]) -> None:
    """Incremental nights (scope `network` of the run context): the rows of the firms the
    night names are rebuilt, every other row is kept. QB guarantees QA's loan and QR is
    related to QA; with a new scoring of QA (PD 0.6 instead of 0.5) a night naming QB rebuilds
    QB's rows only; QR's keep the old PD until a night names it. Every row after the run
    context says all month ends (a new champion)."""
    from assets.core.dbt_project import write_run_context
    from assets.refresh_plan import NOTHING

    tmp, built = book
    wh = tmp / "night.duckdb"
    shutil.copyfile(built, wh)
    store_champion(wh, 0.5)
    build(tmp, wh, "fct_enterprise_month_end_network_pd")
    before = rows(wh)
    assert before[("QB", "2024-04-30")]["guaranteed_party_pd"] == pytest.approx(0.5)

    def night(network_from: date, firms: list[str]) -> dict:
        write_run_context(wh, date.fromisoformat(AS_OF), NOTHING, (), network_from,
                          [code(f) for f in firms])
        store_champion_for_dbt(wh)
        run_dbt(["run", "--select", "fct_enterprise_month_end_network_pd"], warehouse=wh,
                dbt_vars=decision_vars(load_catalog()), target_path=tmp / "night_target")
        return rows(wh)

    store_champion(wh, 0.6)  # the same model version, another PD for a firm past due
    got = night(NOTHING, ["QB"])
    assert got.keys() == before.keys()
    for (firm, month), row in got.items():
        pd_read = row["guaranteed_party_pd"] or row["related_party_pd"]
        assert pd_read == pytest.approx(0.6 if firm == "QB" else 0.5), (firm, month)
    got = night(NOTHING, ["QR"])
    assert got[("QR", "2024-04-30")]["related_party_pd"] == pytest.approx(0.6)
    store_champion(wh, 0.7)
    got = night(date.min, [])
    assert got.keys() == before.keys()
    assert {round(r["guaranteed_party_pd"] or r["related_party_pd"], 6)
            for r in got.values()} == {0.7}
    assert night(NOTHING, []) == got  # nothing to recompute: every row kept
    # the champion reaches dbt through the warehouse, not its vars: each new champion above
    # kept the partial parse of the night before (only the first night parsed in full)
    log = (tmp / "night_target" / "logs" / "dbt.log").read_text(errors="replace")
    nights = log.split("Running with dbt=")[1:]
    assert len(nights) == 4
    assert "Unable to do partial parsing because saved manifest not found" in nights[0]
    assert not any("Unable to do partial parsing" in n for n in nights[1:]), nights[1:]
