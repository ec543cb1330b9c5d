"""The two rule files (signal catalog, screening access rules) against their pydantic models:
a broken file fails with a message naming the file, the field path and the rule; the JSON
Schemas published beside the files (for editors) are the ones the models generate; text from
the files reaches SQL only quoted."""

import copy
import json
from collections.abc import Callable
from pathlib import Path

import duckdb
import pytest
import yaml

from assets.core.yaml_files import SAFE_LOADER, read_yaml
from assets.scorecard.spec import SPEC_PATH
from assets.screening import rules as screening_rules
from assets.screening.rules import RULES_PATH, RulesError, load_rules
from assets.signals import catalog as signal_catalog
from assets.signals.catalog import CATALOG_PATH, CatalogError, load_catalog, signal_reason_sql

ROOT = Path(__file__).resolve().parents[1]


def _write(tmp_path: Path, name: str, data: dict) -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def _catalog() -> dict:
    return yaml.safe_load(CATALOG_PATH.read_text(encoding="utf-8"))


def _rules() -> dict:
    return yaml.safe_load(RULES_PATH.read_text(encoding="utf-8"))


def _signal(data: dict, sid: str) -> dict:
    return next(s for s in data["signals"] if s["id"] == sid)


def _mart_columns() -> set[str]:
    """Documented columns of marts.fct_enterprise_month_end and of the mart the engine reads
    beside it, fct_enterprise_month_end_network_pd (the dbt models' YAML)."""
    columns: set[str] = set()
    found = set()
    for path in (ROOT / "dbt_project" / "models").rglob("*.yml"):
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for model in doc.get("models") or []:
            if model.get("name") in ("fct_enterprise_month_end",
                                     "fct_enterprise_month_end_network_pd"):
                found.add(model["name"])
                columns |= {c["name"] for c in model.get("columns") or []}
    if "fct_enterprise_month_end" not in found:
        pytest.skip("fct_enterprise_month_end is not documented in dbt_project/models")
    return columns


# ---------------------------------------------------------------- the signal catalog

CATALOG_CASES: list[tuple[str, Callable[[dict], object], str]] = [
    ("bad enum", lambda d: _signal(d, "tax_arrears").update(dimension="legal"),
     "signal 'tax_arrears': field 'dimension': Input should be 'credit', 'moral', "
     "'operational', 'market' or 'liquidity' (got 'legal')"),
    ("missing field", lambda d: _signal(d, "overdue_now").pop("severity"),
     "signal 'overdue_now': field 'severity' is required"),
    ("duplicate id", lambda d: d["signals"].append(copy.deepcopy(_signal(d, "tax_arrears"))),
     "signal 'tax_arrears': field 'id': duplicate id"),
    ("threshold of wrong type",
     lambda d: _signal(d, "overdue_now")["conditions"][0].update(threshold="30 days"),
     "signal 'overdue_now': conditions[0]: field 'threshold' must be a number for >"),
    ("list threshold for in",
     lambda d: _signal(d, "tax_rating_poor")["conditions"][0].update(threshold="C"),
     "signal 'tax_rating_poor': conditions[0]: field 'threshold' must be a non-empty list"),
    ("unknown key (typo)", lambda d: _signal(d, "overdue_now").update(severty="high"),
     "signal 'overdue_now': field 'severty' is not a known field"),
    ("change_months out of range",
     lambda d: _signal(d, "borrowing_burden_rising")["conditions"][1].update(change_months=36),
     "signal 'borrowing_burden_rising': conditions[1]: field 'change_months'"),
    ("tier names an unknown signal", lambda d: d["tiers"]["amber"].append({"any_signal": ["x"]}),
     "tiers.amber[3]: field 'any_signal': unknown signal 'x'"),
    ("tier rule of two kinds",
     lambda d: d["tiers"]["amber"].append({"min": {"high": 1}, "any_signal": ["overdue_now"]}),
     "tiers.amber[3]: a rule is one of"),
    ("severity points incomplete", lambda d: d["scores"]["severity_points"].pop("low"),
     "scores.severity_points: field 'low' is required"),
    ("weights not summing to 1", lambda d: d["scores"]["dimension_weights"].update(market=0.5),
     "scores: field 'dimension_weights' must sum to 1"),
    ("version unsafe for SQL", lambda d: d.update(version="2026'; DROP TABLE x; --"),
     "field 'version': String should match pattern"),
    ("not a mapping", lambda d: d["signals"].__setitem__(0, "loan_defaulted"),
     "signals[0]: Input should be a valid dictionary"),
]


@pytest.mark.parametrize(("mutate", "message"), [c[1:] for c in CATALOG_CASES],
                         ids=[c[0] for c in CATALOG_CASES])
def test_broken_catalog_names_file_field_and_rule(tmp_path, mutate, message) -> None:
    data = _catalog()
    mutate(data)
    path = _write(tmp_path, "catalog.yml", data)
    with pytest.raises(CatalogError) as exc:
        load_catalog(path)
    assert str(exc.value).startswith(f"{path}: ")
    assert message in str(exc.value)


def test_unknown_feature_is_named(tmp_path) -> None:
    columns = _mart_columns()
    data = _catalog()
    _signal(data, "tax_arrears")["conditions"][0]["feature"] = "tax_arears"
    _signal(data, "overdue_now")["reason"] = "a loan is {dpd_maks} days past due"
    path = _write(tmp_path, "catalog.yml", data)
    with pytest.raises(CatalogError) as exc:
        load_catalog(path, columns=columns)
    assert "signal 'tax_arrears': conditions[0]: field 'feature': unknown feature 'tax_arears'" \
        in str(exc.value)
    assert "signal 'overdue_now': field 'reason': placeholder {dpd_maks}: unknown feature" \
        in str(exc.value)


def test_catalog_reads_only_documented_mart_columns() -> None:
    """A typo in a feature name fails here, not as a DuckDB binder error in production."""
    load_catalog(columns=_mart_columns())


def test_several_problems_are_all_listed(tmp_path) -> None:
    data = _catalog()
    _signal(data, "tax_arrears").update(severity="critical")
    _signal(data, "overdue_now").pop("stage")
    with pytest.raises(CatalogError) as exc:
        load_catalog(_write(tmp_path, "catalog.yml", data))
    assert "2 problems" in str(exc.value)
    assert "signal 'tax_arrears': field 'severity'" in str(exc.value)
    assert "signal 'overdue_now': field 'stage' is required" in str(exc.value)


def test_invalid_yaml_names_the_file_and_line(tmp_path) -> None:
    path = tmp_path / "catalog.yml"
    path.write_text("version: '1'\nsignals: [unclosed\nmore: 1\n", encoding="utf-8")
    with pytest.raises(CatalogError, match="not valid YAML") as exc:
        load_catalog(path)
    assert str(path) in str(exc.value) and "line 2" in str(exc.value)


def test_rule_files_are_read_with_libyaml_as_pyyaml_reads_them() -> None:
    """The loaders read through libyaml's C parser (a tenth of the time) and get exactly what
    PyYAML's own parser gives, on every rule file and dbt YAML of the project."""
    if yaml.__with_libyaml__:
        assert SAFE_LOADER is yaml.CSafeLoader
    dbt_yaml = [ROOT / "dbt_project" / "dbt_project.yml",
                *sorted((ROOT / "dbt_project" / "models").rglob("*.yml"))]
    files = [CATALOG_PATH, RULES_PATH, SPEC_PATH, *dbt_yaml]
    for path in files:
        want = yaml.safe_load(path.read_text(encoding="utf-8"))
        got = read_yaml(path, ValueError)
        assert got == want and repr(got) == repr(want), path


def test_reason_text_reaches_sql_quoted() -> None:
    data = _catalog()
    _signal(data, "loan_defaulted")["reason"] = "the firm's loan defaulted"
    sig = signal_catalog.parse_catalog(data).signal("loan_defaulted")
    sql = signal_reason_sql(sig)
    assert duckdb.connect().execute(f"SELECT {sql}").fetchone()[0] == "the firm's loan defaulted"


# ---------------------------------------------------------------- the access rules

RULES_CASES: list[tuple[str, Callable[[dict], object], str]] = [
    ("bad enum", lambda d: d["hard_declines"][0]["when"].update(op="greater"),
     "hard_declines/HD01_dishonest_debtor: when: field 'op': Input should be '='"),
    ("missing field", lambda d: d["refers"][1].pop("reason"),
     "refers/RF02_tax_rating_c: field 'reason' is required"),
    ("duplicate id", lambda d: d["refers"][0].update(id="HD01_dishonest_debtor"),
     "refers/HD01_dishonest_debtor: field 'id': duplicate id"),
    ("value of wrong type", lambda d: d["hard_declines"][2]["when"].update(value="active"),
     "hard_declines/HD03_registry_status: when: field 'value' must be a non-empty list"),
    ("value missing", lambda d: d["refers"][0]["when"].pop("value"),
     "refers/RF01_short_history: when: field 'value' is required for op <"),
    ("unknown fact", lambda d: d["products"][2]["when"]["all"][1].update(fact="tax_arears"),
     "products/PR03_tax_credit: when.all[1]: field 'fact': unknown fact 'tax_arears'"),
    ("derived fact too early",
     lambda d: d["hard_declines"][0]["when"].update(fact="recommended_limit"),
     "hard_declines/HD01_dishonest_debtor: when: field 'fact': fact 'recommended_limit' is "
     "derived"),
    ("unknown fact in a reason", lambda d: d["hard_declines"][3].update(reason="{tax_ratng}"),
     "hard_declines/HD04_tax_rating_d: field 'reason': uses unknown fact {tax_ratng}"),
    ("fallback product has a condition",
     lambda d: d["products"][-1].update(when={"fact": "purpose", "op": "not_null"}),
     "products/PR05_working_capital: field 'when' must be absent"),
    ("limit parameter of wrong type", lambda d: d["limit"].update(rounding_unit="ten thousand"),
     "limit: field 'rounding_unit': Input should be a valid decimal"),
    ("check threshold missing", lambda d: d["checks"].pop("max_decline_share"),
     "checks: field 'max_decline_share' is required"),
    ("mixed condition", lambda d: d["guarantee"]["when"].update(fact="purpose"),
     "guarantee: field 'when': `all`, `any` and `not` each stand alone"),
    ("unknown key (typo)", lambda d: d.update(hard_decline=[]),
     "field 'hard_decline' is not a known field"),
]


@pytest.mark.parametrize(("mutate", "message"), [c[1:] for c in RULES_CASES],
                         ids=[c[0] for c in RULES_CASES])
def test_broken_rules_name_file_field_and_rule(tmp_path, mutate, message) -> None:
    data = _rules()
    mutate(data)
    path = _write(tmp_path, "access_rules.yml", data)
    with pytest.raises(RulesError) as exc:
        load_rules(path)
    assert str(exc.value).startswith(f"{path}: ")
    assert message in str(exc.value)


def test_rule_text_reaches_sql_quoted() -> None:
    data = _rules()
    data["hard_declines"][0]["reason"] = "Listed: the firm's {dishonest_debtor_events} listing(s)"
    rule = screening_rules.parse_rules(data).hard_declines[0]
    sql = screening_rules._reason_sql(rule.reason)
    con = duckdb.connect()
    got = con.execute(f"SELECT {sql} FROM (SELECT 2 AS dishonest_debtor_events)").fetchone()[0]
    assert got == "Listed: the firm's 2 listing(s)"


# ---------------------------------------------------------------- the published schemas

SCHEMAS = [
    (signal_catalog.Catalog, signal_catalog.SCHEMA_PATH, CATALOG_PATH, "assets.signals.catalog"),
    (screening_rules.AccessRules, screening_rules.SCHEMA_PATH, RULES_PATH,
     "assets.screening.rules"),
]


@pytest.mark.parametrize(("model", "schema_path", "yaml_path", "module"), SCHEMAS,
                         ids=["catalog", "access_rules"])
def test_published_schema_is_the_models(model, schema_path, yaml_path, module) -> None:
    committed = json.loads(schema_path.read_text(encoding="utf-8"))
    assert committed == model.model_json_schema(by_alias=True), (
        f"{schema_path.name} is out of date with the models in {module}; regenerate it: "
        f"python -m {module} --write-schema"
    )


@pytest.mark.parametrize(("model", "schema_path", "yaml_path", "module"), SCHEMAS,
                         ids=["catalog", "access_rules"])
def test_yaml_points_editors_at_its_schema(model, schema_path, yaml_path, module) -> None:
    first = yaml_path.read_text(encoding="utf-8").splitlines()[0]
    assert first == f"# yaml-language-server: $schema=./{schema_path.name}"


@pytest.mark.parametrize(("model", "schema_path", "yaml_path", "module"), SCHEMAS,
                         ids=["catalog", "access_rules"])
def test_shipped_file_passes_its_json_schema(model, schema_path, yaml_path, module) -> None:
    """What the editor checks agrees with the loader on the shipped file."""
    jsonschema = pytest.importorskip("jsonschema")
    data = yaml.safe_load(yaml_path.read_text(encoding="utf-8"))
    jsonschema.validate(data, json.loads(schema_path.read_text(encoding="utf-8")))
