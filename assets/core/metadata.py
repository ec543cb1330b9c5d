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
    return bool(
        con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? "
            "AND table_name = ?",
            [schema, table],
        ).fetchone()[0]
    )
