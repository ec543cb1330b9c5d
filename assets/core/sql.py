"""The one place that renders Python values as SQL literals and identifiers.

Every value pasted into generated SQL (catalog thresholds, versions, dates, paths) goes through
here, so a quote in a rule file or a path can never break or change a statement.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import duckdb

#: The one-row table dbt's macro as_of_date() reads (assets/core/dbt_project.py writes it
#: before each dbt run): per-night values live here, not in --vars, so dbt's parse inputs stay
#: the same from night to night (partial parsing). Also where the back-test reads D.
RUN_CONTEXT = "main.dbt_run_context"


def text(value: object) -> str:
    """'value' with single quotes doubled."""
    return "'" + str(value).replace("'", "''") + "'"


def ident(name: str) -> str:
    """"name" with double quotes doubled (a column or table name)."""
    return '"' + name.replace('"', '""') + '"'


def date_literal(value: date) -> str:
    """DATE 'YYYY-MM-DD' (a datetime keeps only its date)."""
    if isinstance(value, datetime):
        value = value.date()
    return f"DATE '{value.isoformat()}'"


def decimal_literal(value: int | float | Decimal, scale: int = 6) -> str:
    """An exact decimal: compares with DECIMAL money without a detour through DOUBLE."""
    return f"CAST('{Decimal(str(value))}' AS DECIMAL(18, {scale}))"


def literal(value: object) -> str:
    """Any plain value: NULL, TRUE/FALSE, int, float, Decimal, date, path or text."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, Decimal):
        return decimal_literal(value)
    if isinstance(value, date):
        return date_literal(value)
    if isinstance(value, Path):
        return text(str(value))
    return text(value)


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """BEGIN ... COMMIT, or ROLLBACK on any error: a multi-statement write is all or nothing."""
    con.execute("BEGIN TRANSACTION")
    try:
        yield
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")
