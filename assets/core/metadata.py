"""Helpers every asset uses to describe what it wrote: markdown previews, table existence."""

from collections.abc import Sequence

import duckdb


def markdown_table(
    rows: Sequence[Sequence[object]], headers: Sequence[str], width: int = 160
) -> str:
    """A markdown table for Dagster metadata; lists shown as '; '-joined, cells cut at `width`."""

    def cell(v: object) -> str:
        if isinstance(v, list | tuple):
            v = "; ".join(str(x) for x in v)
        return str(v).replace("|", "\\|").replace("\n", " ")[:width]

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(v) for v in r) + " |" for r in rows]
    return "\n".join(lines)


def table_exists(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> bool:
    """Whether `schema.table` exists in the connection's current database (the one an
    unqualified `schema.table` names), not in another file attached beside it."""
    return bool(
        con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_catalog = "
            "current_database() AND table_schema = ? AND table_name = ?",
            [schema, table],
        ).fetchone()[0]
    )


def column_schema(con: duckdb.DuckDBPyConnection, schema: str, table: str):
    """The table's columns and types as Dagster's column schema (shown in the UI), with the
    DuckDB column comments as descriptions where there are any."""
    from dagster import TableColumn, TableSchema

    rows = con.execute(
        "SELECT c.column_name, c.data_type, d.comment FROM information_schema.columns AS c "
        "LEFT JOIN duckdb_columns() AS d ON d.schema_name = c.table_schema "
        "AND d.table_name = c.table_name AND d.column_name = c.column_name "
        "WHERE c.table_schema = ? AND c.table_name = ? ORDER BY c.ordinal_position",
        [schema, table],
    ).fetchall()
    return TableSchema(
        columns=[TableColumn(name=n, type=t, description=c) for n, t, c in rows]
    )


def relation_row_counts(
    con: duckdb.DuckDBPyConnection, relations: dict[str, str]
) -> dict[str, int]:
    """{key: row count} of `schema.table` relations that exist (one connection, sequential)."""
    out = {}
    for key, rel in relations.items():
        schema, _, table = rel.partition(".")
        if table_exists(con, schema, table):
            out[key] = con.execute(f'SELECT count(*) FROM "{schema}"."{table}"').fetchone()[0]
    return out
