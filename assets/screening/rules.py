"""Pre-lending screening rules: load and validate `access_rules.yml`, build DuckDB SQL from it.

The YAML is the only home of screening thresholds; this module knows the *facts* (what the
bank knew about an application on its date, read from the marts and staging views) and how to
turn the YAML's conditions into SQL over them. Pure Python + DuckDB, testable without Dagster.
"""

import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml

from assets.signals import catalog as signal_catalog

RULES_PATH = Path(__file__).with_name("access_rules.yml")
TARGET = "marts.application_screening"

#: Facts per application, each known on the application date. name -> meaning.
FACTS: dict[str, str] = {
    "application_id": "The application.",
    "enterprise_id": "The applicant.",
    "application_date": "Date of the application.",
    "requested_amount": "Amount requested (CNY).",
    "requested_product": "Product requested (nullable).",
    "purpose": "Purpose of the loan.",
    "size_class": "micro/small/medium (registry).",
    "established_date": "Registry establishment date.",
    "operating_years": "Full months from established_date to application_date / 12.",
    "registry_status": "status_at_month_end of the feature row, else the registry status.",
    "dishonest_debtor_events": "dishonest_debtor_listed events dated <= application_date.",
    "enforcement_events": "enforcement_listed events dated <= application_date.",
    "tax_rating": "Latest tax rating of a year before the application's year.",
    "tax_rating_year": "Year of that rating.",
    "first_default_date": "Earliest default_date <= application_date of the firm's loans.",
    "in_default_with_bank": "True when first_default_date is known.",
    "feature_month_end": "Month end of the feature row: the latest one < application_date.",
    "abnormal_operation_currently_listed": "From the feature row (false when none).",
    "revenue_12m": "Trailing-12m VAT taxable revenue at the feature row.",
    "tax_arrears": "Cumulative tax arrears at the feature row.",
    "utility_arrears": "Utility arrears at the feature row (includes bills not yet due).",
    "utility_late_payments_6m": "Utility bills that became late in the 6 months to the row.",
    "outstanding_principal": "Outstanding principal with the bank at the feature row (0: none).",
    "tax_paid_12m": "tax_paid (VAT + CIT) of the 12 periods ending at the feature month end.",
    "vat_filing_months": "Distinct VAT periods filed, ended on or before application_date.",
    "has_real_estate_collateral": "A loan contracted <= application_date pledged `collateral`.",
    "early_warning_tier": "red/amber/green by the signal catalog on the feature row (NULL: none).",
    "early_warning_signals": "Ids of the catalog's signals triggered on the feature row.",
    "early_warning_reasons": "Their plain-language reasons, joined by '; '.",
}
#: Facts derived by the screening itself (usable by refers and the guarantee rule only).
DERIVED_FACTS: dict[str, str] = {
    "recommended_product": "Product chosen by the product rules.",
    "recommended_limit": "Limit from the limit formula (before the decision).",
}
OPS = {"=", "!=", "<", "<=", ">", ">=", "in", "not_in", "is_null", "not_null", "is_true",
       "is_false"}
UNARY_OPS = {"is_null", "not_null", "is_true", "is_false"}
DEPENDENCIES = (
    ("staging", "stg_core_banking__loan_applications"),
    ("staging", "stg_registry__enterprises"),
    ("staging", "stg_registry__events"),
    ("staging", "stg_tax__ratings"),
    ("staging", "stg_tax__filings"),
    ("staging", "stg_core_banking__loans"),
    ("marts", "fct_enterprise_month_end"),
    ("marts", "fct_loan_month_end"),
)


class RulesError(ValueError):
    """The rules file is malformed: the message names the rule and the problem."""


@dataclass(frozen=True)
class Rule:
    id: str
    when: dict | None
    reason: str = ""
    product: str | None = None


@dataclass(frozen=True)
class AccessRules:
    version: str
    hard_declines: list[Rule]
    refers: list[Rule]
    products: list[Rule]
    collateral_types: list[str]
    revenue_multiple: Decimal
    tax_paid_multiple: Decimal
    rounding_unit: Decimal
    product_caps: dict[str, Decimal]
    guarantee_when: dict
    checks: dict[str, float]


def load_rules(path: Path | str = RULES_PATH) -> AccessRules:
    """Read and validate the rules file; every error names what is wrong where."""
    raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    if not isinstance(raw, dict) or not raw.get("version"):
        raise RulesError(f"{path}: a mapping with a `version` is required")
    base = set(FACTS)
    with_derived = base | set(DERIVED_FACTS)
    declines = _rules(raw, "hard_declines", base, need_reason=True)
    refers = _rules(raw, "refers", with_derived, need_reason=True)
    products = _rules(raw, "products", base, need_reason=False)
    if not products or products[-1].when is not None:
        raise RulesError("products: the last product rule must have no `when` (the fallback)")
    if any(p.when is None for p in products[:-1]) or any(not p.product for p in products):
        raise RulesError("products: every rule needs a `product`; only the last has no `when`")
    ids = [r.id for r in declines + refers + products]
    if len(ids) != len(set(ids)):
        raise RulesError(f"duplicate rule ids: {sorted({i for i in ids if ids.count(i) > 1})}")
    limit = raw.get("limit") or {}
    try:
        params = {k: Decimal(str(limit[k]))
                  for k in ("revenue_multiple", "tax_paid_multiple", "rounding_unit")}
        caps = {p: Decimal(str(v)) for p, v in (limit.get("product_caps") or {}).items()}
    except (KeyError, ArithmeticError) as exc:
        raise RulesError(f"limit: missing or non-numeric parameter {exc}") from exc
    if params["rounding_unit"] <= 0 or any(v < 0 for v in [*params.values(), *caps.values()]):
        raise RulesError("limit: parameters must be >= 0 and rounding_unit > 0")
    guarantee = (raw.get("guarantee") or {}).get("when")
    if guarantee is None:
        raise RulesError("guarantee: a `when` condition is required")
    _check_condition(guarantee, with_derived, "guarantee")
    checks = {k: float(v) for k, v in (raw.get("checks") or {}).items()}
    for key in ("max_decline_share_per_rule", "max_decline_share"):
        if key not in checks:
            raise RulesError(f"checks: `{key}` is required")
    return AccessRules(
        version=str(raw["version"]),
        hard_declines=declines,
        refers=refers,
        products=products,
        collateral_types=list((raw.get("collateral") or {}).get("types") or []),
        revenue_multiple=params["revenue_multiple"],
        tax_paid_multiple=params["tax_paid_multiple"],
        rounding_unit=params["rounding_unit"],
        product_caps=caps,
        guarantee_when=guarantee,
        checks=checks,
    )


def _rules(raw: dict, section: str, facts: set[str], need_reason: bool) -> list[Rule]:
    items = raw.get(section)
    if not isinstance(items, list) or not items:
        raise RulesError(f"{section}: a non-empty list of rules is required")
    out = []
    for item in items:
        rid = item.get("id") if isinstance(item, dict) else None
        if not rid:
            raise RulesError(f"{section}: every rule needs an `id` ({item!r})")
        if need_reason:
            if not item.get("reason") or item.get("when") is None:
                raise RulesError(f"{section}/{rid}: `reason` and `when` are required")
            for name in re.findall(r"\{(\w+)\}", item["reason"]):
                if name not in facts:
                    raise RulesError(f"{section}/{rid}: reason uses unknown fact `{name}`")
        if item.get("when") is not None:
            _check_condition(item["when"], facts, f"{section}/{rid}")
        out.append(Rule(rid, item.get("when"), item.get("reason", ""), item.get("product")))
    return out


def _check_condition(cond: Any, facts: set[str], where: str) -> None:
    if not isinstance(cond, dict) or len(cond) == 0:
        raise RulesError(f"{where}: a condition must be a mapping, got {cond!r}")
    if "all" in cond or "any" in cond:
        parts = cond.get("all", cond.get("any"))
        if len(cond) != 1 or not isinstance(parts, list) or not parts:
            raise RulesError(f"{where}: `all`/`any` takes a non-empty list and nothing else")
        for part in parts:
            _check_condition(part, facts, where)
        return
    if "not" in cond:
        _check_condition(cond["not"], facts, where)
        return
    if cond.get("fact") not in facts:
        raise RulesError(f"{where}: unknown fact {cond.get('fact')!r}")
    op = cond.get("op")
    if op not in OPS:
        raise RulesError(f"{where}: unknown op {op!r} (one of {sorted(OPS)})")
    if op not in UNARY_OPS and "value" not in cond:
        raise RulesError(f"{where}: op {op} needs a `value`")
    if op in ("in", "not_in") and not isinstance(cond["value"], list):
        raise RulesError(f"{where}: op {op} needs a list value")


# ---------------------------------------------------------------- SQL


def _literal(value: Any) -> str:
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | float | Decimal):
        return f"CAST('{value}' AS DECIMAL(18, 6))" if not isinstance(value, int) else str(value)
    return "'" + str(value).replace("'", "''") + "'"


def condition_sql(cond: dict) -> str:
    """SQL predicate of a condition; NULL facts make it false (never unknown)."""
    if "all" in cond:
        return "(" + " AND ".join(condition_sql(c) for c in cond["all"]) + ")"
    if "any" in cond:
        return "(" + " OR ".join(condition_sql(c) for c in cond["any"]) + ")"
    if "not" in cond:
        return f"(NOT {condition_sql(cond['not'])})"
    fact, op = cond["fact"], cond["op"]
    if op == "is_null":
        return f"({fact} IS NULL)"
    if op == "not_null":
        return f"({fact} IS NOT NULL)"
    if op == "is_true":
        return f"coalesce({fact} = TRUE, FALSE)"
    if op == "is_false":
        return f"coalesce({fact} = FALSE, FALSE)"
    if op in ("in", "not_in"):
        items = ", ".join(_literal(v) for v in cond["value"])
        neg = "NOT " if op == "not_in" else ""
        return f"coalesce({fact} {neg}IN ({items}), FALSE)"
    sql_op = "<>" if op == "!=" else op
    return f"coalesce({fact} {sql_op} {_literal(cond['value'])}, FALSE)"


def _reason_sql(template: str) -> str:
    parts = re.split(r"\{(\w+)\}", template)
    sql = []
    for i, part in enumerate(parts):
        if i % 2 == 0:
            if part:
                sql.append(_literal(part))
        else:
            sql.append(f"coalesce(CAST({part} AS VARCHAR), 'unknown')")
    return "concat(" + ", ".join(sql) + ")" if len(sql) > 1 else sql[0]


def _hits_sql(rules: list[Rule], what: str) -> str:
    """List of rule ids (what='id') or reasons (what='reason') of the rules that hit."""
    items = [
        f"CASE WHEN {condition_sql(r.when)} THEN "
        f"{_literal(r.id) if what == 'id' else _reason_sql(r.reason)} END"
        for r in rules
    ]
    return f"list_filter([{', '.join(items)}]::VARCHAR[], lambda x: x IS NOT NULL)"


def facts_sql(as_of: date, rules: AccessRules) -> str:
    """One row per application dated <= as_of with every fact, each as known on its date."""
    d = f"DATE '{as_of.isoformat()}'"
    collateral = ", ".join(_literal(t) for t in rules.collateral_types) or "NULL"
    return f"""
WITH apps AS (
    SELECT application_id, enterprise_id, application_date, requested_amount,
           requested_product, purpose
    FROM staging.stg_core_banking__loan_applications
    WHERE application_date <= {d}
),
ev AS (
    SELECT a.application_id,
           count(*) FILTER (WHERE e.event_type = 'dishonest_debtor_listed') AS dishonest_n,
           count(*) FILTER (WHERE e.event_type = 'enforcement_listed') AS enforcement_n
    FROM apps a
    JOIN staging.stg_registry__events e
      ON e.enterprise_id = a.enterprise_id AND e.event_date <= a.application_date
    WHERE e.event_type IN ('dishonest_debtor_listed', 'enforcement_listed')
    GROUP BY a.application_id
),
rating AS (
    SELECT a.application_id, r.year AS tax_rating_year, r.rating AS tax_rating
    FROM apps a
    JOIN staging.stg_tax__ratings r
      ON r.enterprise_id = a.enterprise_id AND r.year < year(a.application_date)
    QUALIFY row_number() OVER (PARTITION BY a.application_id ORDER BY r.year DESC) = 1
),
dflt AS (
    SELECT a.application_id, min(l.default_date) AS first_default_date
    FROM apps a
    JOIN marts.fct_loan_month_end l
      ON l.enterprise_id = a.enterprise_id AND l.default_date <= a.application_date
    GROUP BY a.application_id
),
feat AS (
    SELECT a.application_id, f.*, f.month_end AS feature_month_end
    FROM apps a
    JOIN marts.fct_enterprise_month_end f
      ON f.enterprise_id = a.enterprise_id AND f.month_end < a.application_date
    QUALIFY row_number() OVER (PARTITION BY a.application_id ORDER BY f.month_end DESC) = 1
),
{early_warning_sql()}
tax AS (
    SELECT a.application_id,
           count(DISTINCT t.period) FILTER (WHERE t.tax_type = 'vat') AS vat_filing_months,
           sum(t.tax_paid) FILTER (
               WHERE date_diff('month', t.period_end, fe.feature_month_end) BETWEEN 0 AND 11
           ) AS tax_paid_12m
    FROM apps a
    LEFT JOIN feat fe ON fe.application_id = a.application_id
    JOIN staging.stg_tax__filings t
      ON t.enterprise_id = a.enterprise_id AND t.period_end <= a.application_date
    GROUP BY a.application_id
),
coll AS (
    SELECT DISTINCT a.application_id
    FROM apps a
    JOIN staging.stg_core_banking__loans l
      ON l.enterprise_id = a.enterprise_id AND l.contract_date <= a.application_date
    WHERE l.collateral_type IN ({collateral})
)
SELECT
    a.application_id, a.enterprise_id, a.application_date, a.requested_amount,
    a.requested_product, a.purpose,
    e.size_class,
    e.established_date,
    CAST((date_diff('month', e.established_date, a.application_date)
          - CASE WHEN day(a.application_date) < day(e.established_date)
                  AND a.application_date <> last_day(a.application_date) THEN 1 ELSE 0 END)
         / 12.0 AS DECIMAL(8, 2)) AS operating_years,
    coalesce(fe.status_at_month_end, e.status) AS registry_status,
    coalesce(ev.dishonest_n, 0) AS dishonest_debtor_events,
    coalesce(ev.enforcement_n, 0) AS enforcement_events,
    r.tax_rating,
    r.tax_rating_year,
    dflt.first_default_date,
    dflt.first_default_date IS NOT NULL AS in_default_with_bank,
    fe.feature_month_end,
    coalesce(fe.abnormal_operation_currently_listed, FALSE)
        AS abnormal_operation_currently_listed,
    fe.revenue_12m,
    fe.tax_arrears,
    fe.utility_arrears,
    fe.utility_late_payments_6m,
    coalesce(fe.outstanding_principal, 0) AS outstanding_principal,
    coalesce(tax.tax_paid_12m, 0) AS tax_paid_12m,
    coalesce(tax.vat_filing_months, 0) AS vat_filing_months,
    coll.application_id IS NOT NULL AS has_real_estate_collateral,
    ews.early_warning_tier,
    ews.early_warning_signals,
    ews.early_warning_reasons
FROM apps a
LEFT JOIN staging.stg_registry__enterprises e ON e.enterprise_id = a.enterprise_id
LEFT JOIN ev ON ev.application_id = a.application_id
LEFT JOIN rating r ON r.application_id = a.application_id
LEFT JOIN dflt ON dflt.application_id = a.application_id
LEFT JOIN feat fe ON fe.application_id = a.application_id
LEFT JOIN tax ON tax.application_id = a.application_id
LEFT JOIN coll ON coll.application_id = a.application_id
LEFT JOIN ews ON ews.application_id = a.application_id
"""


def early_warning_sql() -> str:
    """CTEs `ewf` + `ews`: the signal catalog's signals and tier on each application's
    feature row (`feat`). Thresholds and tier rules come from the catalog, never from here."""
    catalog = signal_catalog.load_catalog()
    mart = signal_catalog.FEATURE_MART
    joins, cols = [], []
    for k, (feature, months) in enumerate(catalog.change_columns):
        col = f'"{feature}"'
        joins.append(
            f"LEFT JOIN {mart} p{k} ON p{k}.enterprise_id = l.enterprise_id "
            f"AND p{k}.month_end = last_day(l.month_end - INTERVAL {months} MONTH)"
        )
        cols.append(f'l.{col} - p{k}.{col} AS "{feature}_chg_{months}m"')
    ids = ", ".join(
        f"CASE WHEN {signal_catalog.signal_predicate_sql(s)} THEN {_literal(s.id)} END"
        for s in catalog.signals
    )
    reasons = ", ".join(
        f"CASE WHEN {signal_catalog.signal_predicate_sql(s)} "
        f"THEN {signal_catalog.signal_reason_sql(s)} END"
        for s in catalog.signals
    )
    counts = {
        sev: " + ".join(
            f"CASE WHEN {signal_catalog.signal_predicate_sql(s)} THEN 1 ELSE 0 END"
            for s in catalog.signals if s.severity == sev
        ) or "0"
        for sev in signal_catalog.SEVERITIES
    }
    tier = signal_catalog.tier_sql(catalog, signals="early_warning_signals")
    return f"""ewf AS (
    SELECT l.*{"".join(", " + c for c in cols)}
    FROM feat l {" ".join(joins)}
),
ews0 AS (
    SELECT f.application_id,
           list_filter([{ids}]::VARCHAR[], lambda x: x IS NOT NULL) AS early_warning_signals,
           list_filter([{reasons}]::VARCHAR[], lambda x: x IS NOT NULL) AS ew_reasons,
           {counts["high"]} AS n_high, {counts["medium"]} AS n_medium, {counts["low"]} AS n_low
    FROM ewf AS f
),
ews AS (
    SELECT application_id, early_warning_signals,
           array_to_string(ew_reasons, '; ') AS early_warning_reasons,
           {tier} AS early_warning_tier
    FROM ews0
),"""


def _limit_sql(rules: AccessRules) -> str:
    unit = _literal(rules.rounding_unit)
    capacity = (
        f"greatest(coalesce(revenue_12m * {_literal(rules.revenue_multiple)}, 0), "
        f"coalesce(tax_paid_12m * {_literal(rules.tax_paid_multiple)}, 0)) "
        "- outstanding_principal"
    )
    cap = "CASE recommended_product " + " ".join(
        f"WHEN {_literal(p)} THEN {_literal(v)}" for p, v in rules.product_caps.items()
    ) + " ELSE requested_amount END" if rules.product_caps else "requested_amount"
    raw = f"least(requested_amount, {cap}, greatest(0, {capacity}))"
    return f"CAST(floor({raw} / {unit}) * {unit} AS DECIMAL(18, 2))"


def screening_sql(as_of: date, rules: AccessRules) -> str:
    """SELECT producing marts.application_screening (one row per application dated <= as_of)."""
    product_case = "CASE " + " ".join(
        f"WHEN {condition_sql(p.when)} THEN {_literal(p.product)}" for p in rules.products[:-1]
    ) + f" ELSE {_literal(rules.products[-1].product)} END"
    product_id_case = "CASE " + " ".join(
        f"WHEN {condition_sql(p.when)} THEN {_literal(p.id)}" for p in rules.products[:-1]
    ) + f" ELSE {_literal(rules.products[-1].id)} END"
    return f"""
WITH facts AS ({facts_sql(as_of, rules)}),
product AS (
    SELECT *, {product_case} AS recommended_product, {product_id_case} AS product_rule_id
    FROM facts
),
sized AS (
    SELECT *, {_limit_sql(rules)} AS recommended_limit FROM product
),
hits AS (
    SELECT *,
        {_hits_sql(rules.hard_declines, 'id')} AS decline_rule_ids,
        {_hits_sql(rules.hard_declines, 'reason')} AS decline_reasons,
        {_hits_sql(rules.refers, 'id')} AS refer_rule_ids,
        {_hits_sql(rules.refers, 'reason')} AS refer_reasons,
        {condition_sql(rules.guarantee_when)} AS guarantee_hit
    FROM sized
),
decided AS (
    SELECT *,
        CASE WHEN len(decline_rule_ids) > 0 THEN 'decline'
             WHEN len(refer_rule_ids) > 0 THEN 'refer'
             ELSE 'approve' END AS decision
    FROM hits
)
SELECT
    application_id,
    enterprise_id,
    application_date,
    decision,
    CASE WHEN decision = 'approve' THEN ['Passed every access rule']
         ELSE list_concat(decline_reasons, refer_reasons) END AS reasons,
    list_concat(decline_rule_ids, refer_rule_ids) AS rule_ids,
    CASE WHEN decision <> 'decline' THEN recommended_product END AS recommended_product,
    CASE WHEN decision <> 'decline' THEN product_rule_id END AS product_rule_id,
    CASE WHEN decision = 'decline' THEN CAST(0 AS DECIMAL(18, 2))
         ELSE recommended_limit END AS recommended_limit,
    decision <> 'decline' AND guarantee_hit AS guarantee_recommended,
    requested_amount,
    requested_product,
    purpose,
    feature_month_end,
    early_warning_tier,
    early_warning_signals,
    {_literal(rules.version)} AS rules_version,
    DATE '{as_of.isoformat()}' AS as_of_date
FROM decided
ORDER BY application_date, application_id
"""


def decline_audit_sql(as_of: date, rules: AccessRules) -> str:
    """Applications a hard-decline rule hits (re-evaluated on the facts) but not declined."""
    any_decline = " OR ".join(condition_sql(r.when) for r in rules.hard_declines)
    return f"""
SELECT f.application_id, s.decision
FROM ({facts_sql(as_of, rules)}) f
LEFT JOIN {TARGET} s ON s.application_id = f.application_id
WHERE ({any_decline}) AND coalesce(s.decision, 'missing') <> 'decline'
"""


def build_screening(con: Any, as_of: date, rules: AccessRules | None = None) -> int:
    """Create or replace marts.application_screening on `con`; returns its row count."""
    rules = rules or load_rules()
    con.execute("CREATE SCHEMA IF NOT EXISTS marts")
    con.execute(f"CREATE OR REPLACE TABLE {TARGET} AS {screening_sql(as_of, rules)}")
    return con.execute(f"SELECT count(*) FROM {TARGET}").fetchone()[0]
