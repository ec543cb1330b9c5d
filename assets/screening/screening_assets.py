"""Dagster side of pre-lending screening: the `marts/application_screening` asset and its checks.

The rules and the SQL are `assets.screening.rules` (driven by `access_rules.yml`); this module
only runs them against the warehouse, reports the decision mix and checks the result.
"""

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetExecutionContext,
    AssetKey,
    MaterializeResult,
    MetadataValue,
    asset,
    asset_check,
)

from assets.core.metadata import markdown_table
from assets.core.resources import RiskWarehouse
from assets.core.sql import text
from assets.dbt_assets import mart_key
from assets.screening.rules import (
    DEPENDENCIES,
    TARGET,
    build_screening,
    decline_audit_sql,
    load_rules,
)

OWNER = "team:credit-risk"
GROUP = "pre_lending"
SCREENING_KEY = AssetKey(["marts", "application_screening"])


@asset(
    key=SCREENING_KEY,
    group_name=GROUP,
    kinds={"duckdb", "python"},
    owners=[OWNER],
    deps=[mart_key(model) for model in DEPENDENCIES],
    description=(
        "Pre-lending screening: one row per loan application dated <= D with decision "
        "(approve/refer/decline), plain-language reasons and rule ids, recommended product, "
        "limit (CNY, rounded down) and whether a guarantee is recommended. Each application "
        "uses only what was known on its date: events and defaults dated on or before it, "
        "the feature row of the latest month end before it, tax ratings of earlier years. "
        "Rules and every threshold: `assets/screening/access_rules.yml`."
    ),
)
def application_screening(context: AssetExecutionContext, warehouse: RiskWarehouse):
    """Build the screening mart from the rules file and report the decision mix."""
    rules = load_rules()
    with warehouse.connect() as con:
        rows = build_screening(con, warehouse.as_of_date, rules)
        mix = dict(con.execute(f"SELECT decision, count(*) FROM {TARGET} GROUP BY 1").fetchall())
        products = con.execute(
            f"""SELECT recommended_product, count(*), sum(recommended_limit) FROM {TARGET}
                WHERE decision <> 'decline' GROUP BY 1 ORDER BY 2 DESC"""
        ).fetchall()
        fund, offered, rejected = con.execute(
            f"""SELECT count(*) FILTER (WHERE fund_cover_recommended),
                       count(*) FILTER (WHERE offered_guarantor_id IS NOT NULL),
                       count(*) FILTER (WHERE NOT guarantor_acceptable) FROM {TARGET}"""
        ).fetchone()
        preview = con.execute(
            f"""SELECT application_id, enterprise_id, application_date, decision,
                       array_to_string(rule_ids, ', '), recommended_product,
                       recommended_limit, guarantee_recommended
                FROM {TARGET} ORDER BY application_date DESC, application_id LIMIT 10"""
        ).fetchall()
    context.log.info(f"screened {rows} applications with rules {rules.version}: {mix}")
    return MaterializeResult(
        metadata={
            "dagster/row_count": rows,
            "rules_version": rules.version,
            "as_of_date": warehouse.as_of_date.isoformat(),
            "approve": mix.get("approve", 0),
            "refer": mix.get("refer", 0),
            "decline": mix.get("decline", 0),
            "fund_cover_recommended": fund,
            "guarantors_offered": offered,
            "guarantors_rejected": rejected,
            "products": MetadataValue.md(
                markdown_table(products, ["product", "applications", "total limit"])
            ),
            "preview": MetadataValue.md(
                markdown_table(
                    preview,
                    [
                        "application",
                        "enterprise",
                        "date",
                        "decision",
                        "rules",
                        "product",
                        "limit",
                        "guarantee",
                    ],
                )
            ),
        }
    )


@asset_check(
    asset=SCREENING_KEY,
    blocking=True,
    description="ERROR (blocking): an application a hard-decline rule hits must be declined.",
)
def no_approval_with_hard_decline_hit(
    context: AssetCheckExecutionContext, warehouse: RiskWarehouse
) -> AssetCheckResult:
    """Re-evaluate the hard-decline rules on the facts the screening stored beside the mart
    (FACTS_TABLE), apart from the decision logic: every application they hit must be declined."""
    rules = load_rules()
    with warehouse.connect(read_only=True) as con:
        bad = con.execute(decline_audit_sql(rules)).fetchall()
    return AssetCheckResult(
        passed=not bad,
        severity=AssetCheckSeverity.ERROR,
        metadata={
            "violations": len(bad),
            "examples": MetadataValue.md(markdown_table(bad[:10], ["application", "decision"])),
        },
    )


@asset_check(
    asset=SCREENING_KEY,
    blocking=True,
    description="ERROR (blocking): limits are >= 0, <= the request and on the rounding unit.",
)
def limits_within_request(
    context: AssetCheckExecutionContext, warehouse: RiskWarehouse
) -> AssetCheckResult:
    """A limit above the request, negative or off the rounding grid is a formula bug."""
    unit = load_rules().rounding_unit
    with warehouse.connect(read_only=True) as con:
        bad = con.execute(
            f"""SELECT application_id, requested_amount, recommended_limit FROM {TARGET}
                WHERE recommended_limit IS NULL OR recommended_limit < 0
                   OR recommended_limit > requested_amount
                   OR recommended_limit % CAST(? AS DECIMAL(18, 2)) <> 0""",
            [str(unit)],
        ).fetchall()
    return AssetCheckResult(
        passed=not bad,
        severity=AssetCheckSeverity.ERROR,
        metadata={
            "violations": len(bad),
            "examples": MetadataValue.md(
                markdown_table(bad[:10], ["application", "requested", "limit"])
            ),
        },
    )


@asset_check(
    asset=SCREENING_KEY,
    description="WARN when declines, overall or for one rule, exceed the shares in the rules file.",
)
def decline_share_per_reason(
    context: AssetCheckExecutionContext, warehouse: RiskWarehouse
) -> AssetCheckResult:
    """A rule suddenly declining many applicants usually means bad data, not bad applicants."""
    rules = load_rules()
    checks = rules.checks
    hard_decline_ids = ", ".join(text(r.id) for r in rules.hard_declines)
    with warehouse.connect(read_only=True) as con:
        total = con.execute(f"SELECT count(*) FROM {TARGET}").fetchone()[0]
        declines = con.execute(
            f"SELECT count(*) FROM {TARGET} WHERE decision = 'decline'"
        ).fetchone()[0]
        per_rule = con.execute(
            f"""SELECT rule_id, count(*) FROM (
                    SELECT unnest(rule_ids) AS rule_id FROM {TARGET}
                    WHERE decision = 'decline')
                WHERE rule_id IN ({hard_decline_ids}) GROUP BY 1 ORDER BY 2 DESC"""
        ).fetchall()
    share = declines / total if total else 0.0
    shares = [(rid, n, round(n / total, 4)) for rid, n in per_rule] if total else []
    too_high = [s for s in shares if s[2] > checks["max_decline_share_per_rule"]]
    return AssetCheckResult(
        passed=share <= checks["max_decline_share"] and not too_high,
        severity=AssetCheckSeverity.WARN,
        metadata={
            "applications": total,
            "decline_share": round(share, 4),
            "max_decline_share": checks["max_decline_share"],
            "max_decline_share_per_rule": checks["max_decline_share_per_rule"],
            "per_rule": MetadataValue.md(markdown_table(shares, ["rule", "declines", "share"])),
        },
    )


screening_assets = [application_screening]
screening_checks = [
    no_approval_with_hard_decline_hit,
    limits_within_request,
    decline_share_per_reason,
]
