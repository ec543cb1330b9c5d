"""The two dimensions derived from rule files, written by Python (the rule files are read here,
never by dbt): `marts.dim_signal` from the signal catalog and `marts.dim_screening_rule` from
the access rules. Each table is replaced whole on every refresh, so it always matches the rule
file the run used (no copy to keep in sync). dbt declares both as sources
(`models/marts/dimensions/_dimensions__sources.yml`).
"""

from __future__ import annotations

import json

import duckdb

from assets.core.sql import ident, text
from assets.screening.rules import AccessRules
from assets.signals.catalog import Catalog

SCHEMA = "marts"

#: (column, DuckDB type, description): the one definition of each table's columns; the dbt
#: source YAML describes the same columns (a test compares them).
DIM_SIGNAL_COLUMNS = (
    ("signal_id", "VARCHAR", "Signal id as in signal_hits.signal_id and watchlist.signals."),
    ("name_zh", "VARCHAR", "Short Chinese name of the signal."),
    ("dimension", "VARCHAR", "Risk dimension: credit, moral, operational, market, liquidity."),
    ("stage", "VARCHAR", "pre_lending, lending or post_lending."),
    ("severity", "VARCHAR", "high, medium or low."),
    ("topic", "VARCHAR", "Reason topic (reasons of one topic are merged)."),
    ("hard_trigger_tier", "VARCHAR", "Tier the signal forces whatever the PD (null if none)."),
    ("description", "VARCHAR", "What the signal means, in English."),
    ("description_zh", "VARCHAR", "What the signal means, in Chinese."),
    ("reason_template", "VARCHAR", "English reason template ({feature} placeholders)."),
    ("reason_template_zh", "VARCHAR", "Chinese reason template (same placeholders)."),
    ("conditions", "VARCHAR", "The firing conditions as JSON (all must hold)."),
    ("catalog_version", "VARCHAR", "Version of the catalog the row comes from."),
)
DIM_SCREENING_RULE_COLUMNS = (
    ("rule_id", "VARCHAR", "Rule id as in application_screening.rule_ids."),
    ("section", "VARCHAR", "hard_decline, refer, product or guarantor_reject."),
    ("decision", "VARCHAR", "Decision a hit leads to: decline, refer (null for products)."),
    ("priority", "INTEGER", "Position in its section (products: first match wins)."),
    ("reason_template", "VARCHAR", "Reason shown to the officer ({fact} placeholders)."),
    ("reason_template_zh", "VARCHAR", "The reason in Chinese (same placeholders)."),
    ("product", "VARCHAR", "Product a product rule recommends (null otherwise)."),
    ("condition", "VARCHAR", "The rule's condition as JSON (null: the fallback product)."),
    ("rules_version", "VARCHAR", "Version of the access rules the row comes from."),
)


def signal_rows(catalog: Catalog) -> list[tuple]:
    """One row per catalog signal, in DIM_SIGNAL_COLUMNS order."""
    return [
        (
            s.id, s.name_zh or None, s.dimension, s.stage, s.severity, catalog.topic(s.id),
            catalog.hard_triggers.get(s.id), s.description or None, s.description_zh or None,
            s.reason, s.reason_zh or None,
            json.dumps([c.model_dump(mode="json", exclude_none=True) for c in s.conditions],
                       ensure_ascii=False),
            catalog.version,
        )
        for s in catalog.signals
    ]


def screening_rule_rows(rules: AccessRules) -> list[tuple]:
    """One row per access rule, in DIM_SCREENING_RULE_COLUMNS order."""
    rows = []
    for section, decision, items in (
        ("hard_decline", "decline", rules.hard_declines),
        ("refer", "refer", rules.refers),
        ("product", None, rules.products),
        ("guarantor_reject", None,
         rules.enhancement.guarantor_rejects if rules.enhancement else []),
    ):
        for i, r in enumerate(items, start=1):
            when = r.when.model_dump(mode="json", exclude_none=True) if r.when else None
            rows.append((
                r.id, section, decision, i, getattr(r, "reason", None),
                getattr(r, "reason_zh", None) or None, getattr(r, "product", None),
                None if when is None else json.dumps(when, ensure_ascii=False),
                rules.version,
            ))
    return rows


def write_table(
    con: duckdb.DuckDBPyConnection,
    table: str,
    columns: tuple[tuple[str, str, str], ...],
    rows: list[tuple],
) -> int:
    """Replace `marts.<table>` with `rows` in one transaction; returns the row count."""
    name = f"{ident(SCHEMA)}.{ident(table)}"
    cols = ", ".join(f"{ident(c)} {t}" for c, t, _ in columns)
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {ident(SCHEMA)}")
        con.execute(f"CREATE OR REPLACE TABLE {name} ({cols})")
        if rows:
            marks = ", ".join("?" for _ in columns)
            con.executemany(f"INSERT INTO {name} VALUES ({marks})", rows)
        for c, _, desc in columns:
            con.execute(f"COMMENT ON COLUMN {name}.{ident(c)} IS {text(desc)}")
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
    return len(rows)
