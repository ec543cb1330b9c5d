"""Exports for credit officers (issue 4): watchlist CSV/Parquet and a self-contained HTML report.

Officers open these from a shared drive, often offline and in Excel, so: the CSV carries a
UTF-8 BOM (Excel otherwise garbles Chinese text), the HTML has no external JS/CSS/fonts and
its charts are inline SVG drawn here. Rendering is pure (`render_report(ReportData) -> str`)
so it is tested without a warehouse; the asset only gathers data and writes files.
"""

import html
import json
import os
import re
import shutil
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

import duckdb
from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    MaterializeResult,
    MetadataValue,
    asset,
)

from assets.core import settings
from assets.core.metadata import markdown_table, table_exists
from assets.core.resources import RiskWarehouse

OWNER = "team:credit-risk"
GROUP = "exports"
MARTS = "marts"
WATCHLIST = AssetKey([MARTS, "watchlist"])
WATCHLIST_HISTORY = AssetKey([MARTS, "watchlist_history"])
PORTFOLIO_MONTHLY = AssetKey([MARTS, "portfolio_monthly"])
APPLICATION_SCREENING = AssetKey([MARTS, "application_screening"])

# Contract section 4: used for a header-only CSV when the watchlist mart does not exist yet.
WATCHLIST_COLUMNS = [
    "as_of_date",
    "enterprise_id",
    "tier",
    "risk_score",
    "signals",
    "reasons",
    "first_flagged_date",
    "status",
    "recommended_action",
]
TIER_COLORS = {"red": "#c0392b", "amber": "#e6a23c"}
BOM = b"\xef\xbb\xbf"
MAX_HISTORY_BARS = 60  # a year of nightly refreshes would make the chart unreadable


def exports_dir() -> Path:
    """Exports root: RISK_EXPORTS_DIR (read at run time, so tests can point it), else default."""
    return Path(os.environ.get("RISK_EXPORTS_DIR") or settings.DEFAULT_EXPORTS_DIR).resolve()


# --------------------------------------------------------------------------- report data


@dataclass
class ReportData:
    """Everything the HTML report shows; plain values so rendering needs no warehouse."""

    as_of: date
    generated_at: str = ""
    watchlist_columns: list[str] = field(default_factory=list)
    watchlist_rows: list[dict] = field(default_factory=list)
    enterprise_names: dict[str, str] = field(default_factory=dict)
    tier_history: list[tuple[str, str, int]] = field(default_factory=list)
    npl_month_end: str | None = None
    npl_by_industry: list[tuple[str, float, float]] = field(default_factory=list)
    npl_by_branch: list[tuple[str, float, float]] = field(default_factory=list)
    screening_decisions: list[tuple[str, int]] | None = None
    notices: list[str] = field(default_factory=list)
    missing: dict[str, str] = field(default_factory=dict)

    @property
    def new_entries(self) -> list[dict]:
        return [r for r in self.watchlist_rows if str(r.get("status") or "") == "new"]


def as_items(value: object, *, reasons: bool = False) -> list[str]:
    """A signals/reasons cell as a list, whether the mart stores VARCHAR[] or text.

    Text may be a JSON array or delimited; reasons are prose (they may hold commas), so they
    split only on semicolons, `|` and newlines, signals also on commas.
    """
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return [str(v).strip() for v in value if v is not None and str(v).strip()]
    text = str(value).strip()
    if text.startswith("[") and text.endswith("]"):
        try:
            parsed = json.loads(text)
            if isinstance(parsed, list):
                return as_items(parsed, reasons=reasons)
        except ValueError:
            text = text[1:-1]
    pattern = r"[;；|\n]" if reasons else r"[;；|\n,，]"
    return [p.strip().strip("'\"").strip() for p in re.split(pattern, text) if p.strip()]


def top_counts(values: Iterable[object], *, reasons: bool = False, n: int = 15) -> list:
    """Most frequent items over a column of list-or-text cells."""
    counter: Counter[str] = Counter()
    for v in values:
        counter.update(set(as_items(v, reasons=reasons)))
    return sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))[:n]


# --------------------------------------------------------------------------- SVG charts


def _text_width(text: str, px: float = 7.0) -> float:
    """Rough label width; CJK glyphs are about twice as wide as Latin ones."""
    return sum(px * (2 if ord(ch) > 0x2E7F else 1) for ch in text)


def _esc(value: object) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def svg_bar_chart(
    items: Sequence[tuple[str, float]],
    *,
    title: str,
    color: str = "#3b6ea5",
    value_format: Callable[[float], str] = lambda v: f"{v:g}",
    bar_height: int = 20,
    width: int = 560,
) -> str:
    """Horizontal bars, one per (label, value); an empty list draws a 'no data' note."""
    if not items:
        return (
            f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{width}" height="40">'
            f"<title>{_esc(title)}</title>"
            '<text x="8" y="24" font-size="13" fill="#777">no data</text></svg>'
        )
    label_w = min(260.0, max(_text_width(str(lbl)) for lbl, _ in items) + 12)
    value_w = 70
    plot_w = max(60.0, width - label_w - value_w)
    vmax = max((float(v) for _, v in items), default=0.0) or 1.0
    height = len(items) * (bar_height + 6) + 10
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" font-size="12">',
        f"<title>{_esc(title)}</title>",
    ]
    for i, (label, value) in enumerate(items):
        y = 5 + i * (bar_height + 6)
        w = max(0.0, float(value)) / vmax * plot_w
        parts.append(
            f'<text x="{label_w - 6:.1f}" y="{y + bar_height * 0.7:.1f}" '
            f'text-anchor="end">{_esc(label)}</text>'
            f'<rect x="{label_w:.1f}" y="{y}" width="{w:.1f}" height="{bar_height}" '
            f'fill="{_esc(color)}"><title>{_esc(label)}: {_esc(value_format(value))}</title></rect>'
            f'<text x="{label_w + w + 4:.1f}" y="{y + bar_height * 0.7:.1f}">'
            f"{_esc(value_format(value))}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def svg_stacked_bars(
    categories: Sequence[str],
    series: Sequence[tuple[str, str, Sequence[float]]],
    *,
    title: str,
    height: int = 240,
    bar_width: int = 36,
) -> str:
    """Vertical stacked bars: one bar per category, one (name, color, values) per series."""
    if not categories:
        return (
            '<svg xmlns="http://www.w3.org/2000/svg" role="img" width="560" height="40">'
            f"<title>{_esc(title)}</title>"
            '<text x="8" y="24" font-size="13" fill="#777">no data</text></svg>'
        )
    left, bottom, top, gap = 40, 66, 24, 14
    width = left + len(categories) * (bar_width + gap) + 20 + 90
    plot_h = height - bottom - top
    totals = [sum(float(s[2][i]) for s in series) for i in range(len(categories))]
    vmax = max(totals) or 1.0
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" font-size="11">',
        f"<title>{_esc(title)}</title>",
        f'<line x1="{left}" y1="{top + plot_h}" x2="{width - 100}" y2="{top + plot_h}" '
        'stroke="#999"/>',
        f'<text x="{left - 4}" y="{top + 4}" text-anchor="end">{vmax:g}</text>',
        f'<text x="{left - 4}" y="{top + plot_h}" text-anchor="end">0</text>',
    ]
    for i, cat in enumerate(categories):
        x = left + gap / 2 + i * (bar_width + gap)
        y = top + plot_h
        for name, color, values in series:
            v = float(values[i])
            if v <= 0:
                continue
            h = v / vmax * plot_h
            y -= h
            parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_width}" height="{h:.1f}" '
                f'fill="{_esc(color)}"><title>{_esc(cat)} {_esc(name)}: {v:g}</title></rect>'
            )
        parts.append(
            f'<text x="{x + bar_width / 2:.1f}" y="{y - 4:.1f}" text-anchor="middle">'
            f"{totals[i]:g}</text>"
            f'<text x="{x + bar_width / 2:.1f}" y="{top + plot_h + 14}" text-anchor="end" '
            f'transform="rotate(-35 {x + bar_width / 2:.1f} {top + plot_h + 14})">'
            f"{_esc(cat)}</text>"
        )
    for j, (name, color, _) in enumerate(series):
        ly = top + j * 18
        parts.append(
            f'<rect x="{width - 90}" y="{ly}" width="12" height="12" fill="{_esc(color)}"/>'
            f'<text x="{width - 72}" y="{ly + 10}">{_esc(name)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


# --------------------------------------------------------------------------- HTML


CSS = """
body{font-family:-apple-system,"Segoe UI","PingFang SC","Microsoft YaHei",sans-serif;
margin:24px;color:#222;max-width:1280px}
h1{font-size:22px;margin-bottom:4px}h2{font-size:17px;margin-top:32px;
border-bottom:1px solid #ddd;padding-bottom:4px}
.meta{color:#666;font-size:13px}.cards{display:flex;gap:12px;flex-wrap:wrap;margin:16px 0}
.card{border:1px solid #ddd;border-radius:6px;padding:10px 16px;min-width:110px}
.card b{display:block;font-size:22px}.notice{background:#fff7e6;border:1px solid #f0c36d;
padding:8px 12px;border-radius:4px;margin:6px 0}
table{border-collapse:collapse;font-size:12px;margin-top:8px}
th,td{border:1px solid #ddd;padding:4px 6px;text-align:left;vertical-align:top}
th{background:#f4f6f8}td.num{text-align:right}
.tier-red{color:#c0392b;font-weight:bold}.tier-amber{color:#b7791f;font-weight:bold}
.row{display:flex;gap:32px;flex-wrap:wrap}ul.reasons{margin:0;padding-left:16px}
"""


def _table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """An HTML table; cells are already-escaped HTML fragments."""
    head = "".join(f"<th>{_esc(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _cell(column: str, value: object) -> str:
    if column in ("signals", "reasons"):
        items = as_items(value, reasons=column == "reasons")
        if column == "reasons" and len(items) > 1:
            return '<ul class="reasons">' + "".join(f"<li>{_esc(i)}</li>" for i in items) + "</ul>"
        return _esc("; ".join(items))
    if column == "tier":
        return f'<span class="tier-{_esc(value)}">{_esc(value)}</span>'
    if isinstance(value, float):
        return f"{value:.1f}"
    return _esc(value)


def _pct(v: float) -> str:
    return f"{v * 100:.2f}%"


def render_report(data: ReportData) -> str:
    """The whole report as one self-contained HTML string (every text value escaped)."""
    rows = data.watchlist_rows
    tiers = Counter(str(r.get("tier")) for r in rows)
    statuses = Counter(str(r.get("status")) for r in rows)
    out: list[str] = [
        "<!DOCTYPE html>",
        '<html lang="zh-CN"><head><meta charset="utf-8">',
        f"<title>SME early-warning report {_esc(data.as_of.isoformat())}</title>",
        f"<style>{CSS}</style></head><body>",
        f"<h1>SME credit early-warning report &mdash; as of {_esc(data.as_of.isoformat())}</h1>",
        f'<div class="meta">Generated {_esc(data.generated_at)}</div>',
    ]
    for msg in [*data.missing.values(), *data.notices]:
        out.append(f'<div class="notice">{_esc(msg)}</div>')

    out.append('<div class="cards">')
    for label, n in [
        ("On watchlist", len(rows)),
        ("Red", tiers.get("red", 0)),
        ("Amber", tiers.get("amber", 0)),
        ("New", statuses.get("new", 0)),
        ("Escalated", statuses.get("escalated", 0)),
    ]:
        out.append(f'<div class="card">{_esc(label)}<b>{n}</b></div>')
    out.append("</div>")
    if not rows and "watchlist" not in data.missing:
        out.append('<p class="notice">No firms on the watchlist as of this date.</p>')

    # Tier counts over time.
    out.append('<h2 id="tiers">Watchlist tiers over time</h2>')
    if "watchlist_history" in data.missing:
        out.append(f"<p>{_esc(data.missing['watchlist_history'])}</p>")
    else:
        dates = sorted({d for d, _, _ in data.tier_history})
        if len(dates) > MAX_HISTORY_BARS:
            dates = dates[-MAX_HISTORY_BARS:]
            out.append(f'<p class="meta">Last {MAX_HISTORY_BARS} refreshes.</p>')
        counts = {(d, t): n for d, t, n in data.tier_history}
        series = [
            (t, TIER_COLORS[t], [counts.get((d, t), 0) for d in dates]) for t in ("red", "amber")
        ]
        out.append(svg_stacked_bars(dates, series, title="Firms on the watchlist by tier"))
        out.append(
            _table(
                ["as_of_date", "red", "amber", "total"],
                (
                    [
                        _esc(d),
                        str(counts.get((d, "red"), 0)),
                        str(counts.get((d, "amber"), 0)),
                        str(counts.get((d, "red"), 0) + counts.get((d, "amber"), 0)),
                    ]
                    for d in dates
                ),
            )
        )

    # Top reasons and signals.
    out.append('<h2 id="reasons">Top reasons and signals</h2><div class="row">')
    reason_counts = top_counts((r.get("reasons") for r in rows), reasons=True)
    signal_counts = top_counts(r.get("signals") for r in rows)
    out.append("<div><h3>Reasons</h3>")
    out.append(svg_bar_chart(reason_counts, title="Firms per reason", color="#8e44ad"))
    out.append("</div><div><h3>Signals</h3>")
    out.append(svg_bar_chart(signal_counts, title="Firms per signal", color="#3b6ea5"))
    out.append("</div></div>")

    # NPL ratios.
    out.append('<h2 id="npl">NPL ratio by industry and by branch</h2>')
    if "portfolio_monthly" in data.missing:
        out.append(f"<p>{_esc(data.missing['portfolio_monthly'])}</p>")
    elif data.npl_month_end is None:
        out.append(f"<p>No portfolio month end on or before {_esc(data.as_of)}.</p>")
    else:
        out.append(f'<p class="meta">Month end {_esc(data.npl_month_end)}.</p><div class="row">')
        for label, items in (("Industry", data.npl_by_industry), ("Branch", data.npl_by_branch)):
            out.append(f"<div><h3>By {label.lower()}</h3>")
            out.append(
                svg_bar_chart(
                    [(k, r) for k, r, _ in items],
                    title=f"NPL ratio by {label.lower()}",
                    color="#c0392b",
                    value_format=_pct,
                )
            )
            out.append(
                _table(
                    [label, "NPL ratio", "Outstanding principal"],
                    ([_esc(k), _pct(r), f"{o:,.0f}"] for k, r, o in items),
                )
            )
            out.append("</div>")
        out.append("</div>")

    # New entries.
    names = data.enterprise_names
    out.append(f'<h2 id="new">New entries ({len(data.new_entries)})</h2>')
    if "watchlist" in data.missing:
        out.append(f"<p>{_esc(data.missing['watchlist'])}</p>")
    elif not data.new_entries:
        out.append("<p>No new firms on the watchlist.</p>")
    else:
        cols = ["enterprise_id", "tier", "risk_score", "reasons", "recommended_action"]
        out.append(
            _table(
                ["enterprise_id", "name", *cols[1:]],
                (
                    [
                        _cell("enterprise_id", r.get("enterprise_id")),
                        _esc(names.get(str(r.get("enterprise_id")), "")),
                        *(_cell(c, r.get(c)) for c in cols[1:]),
                    ]
                    for r in data.new_entries
                ),
            )
        )

    # Application screening summary.
    if data.screening_decisions is not None:
        out.append('<h2 id="screening">Application screening decisions</h2>')
        out.append(
            svg_bar_chart(
                data.screening_decisions, title="Applications by decision", color="#2e7d32"
            )
        )

    # Full watchlist.
    out.append(f'<h2 id="watchlist">Full watchlist ({len(rows)})</h2>')
    if "watchlist" in data.missing:
        out.append(f"<p>{_esc(data.missing['watchlist'])}</p>")
    elif not rows:
        out.append("<p>No firms on the watchlist.</p>")
    else:
        cols = data.watchlist_columns
        headers = cols[:1] + ["name"] + cols[1:] if names else cols
        body = []
        for r in rows:
            cells = [_cell(c, r.get(c)) for c in cols]
            if names:
                cells.insert(1, _esc(names.get(str(r.get("enterprise_id")), "")))
            body.append(cells)
        out.append(_table(headers, body))
    out.append("</body></html>")
    return "\n".join(out)


# --------------------------------------------------------------------------- warehouse side


def _columns(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> list[tuple[str, str]]:
    return con.execute(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position",
        [schema, table],
    ).fetchall()


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _quote_path(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def _csv_select(con: duckdb.DuckDBPyConnection, table: str, order_by: str) -> str:
    """SELECT for a CSV: list columns joined with '; ' (Excel cannot read `[a, b]` lists)."""
    exprs = []
    for name, dtype in _columns(con, MARTS, table):
        q = _quote_ident(name)
        exprs.append(f"array_to_string({q}, '; ') AS {q}" if dtype.endswith("[]") else q)
    return f"SELECT {', '.join(exprs)} FROM {MARTS}.{table} ORDER BY {order_by}"


def write_csv_with_bom(con: duckdb.DuckDBPyConnection, select_sql: str, dest: Path) -> None:
    """DuckDB writes the CSV; the BOM is prefixed by a byte copy (no dataframe round-trip)."""
    tmp = dest.with_name(dest.name + ".tmp")
    con.execute(f"COPY ({select_sql}) TO {_quote_path(tmp)} (FORMAT csv, HEADER true)")
    part = dest.with_name(dest.name + ".part")
    with part.open("wb") as out, tmp.open("rb") as src:
        out.write(BOM)
        shutil.copyfileobj(src, out, 1 << 20)
    tmp.unlink()
    part.replace(dest)


def write_parquet(con: duckdb.DuckDBPyConnection, select_sql: str, dest: Path) -> None:
    part = dest.with_name(dest.name + ".part")
    con.execute(f"COPY ({select_sql}) TO {_quote_path(part)} (FORMAT parquet)")
    part.replace(dest)


def _order_by(columns: Sequence[str]) -> str:
    keys = [c for c in ("risk_score", "enterprise_id") if c in columns]
    if not keys:
        return "ALL"
    return ", ".join(f"{c} DESC" if c == "risk_score" else c for c in keys)


def _missing_message(table: str) -> str:
    return (
        f"marts.{table} does not exist yet (first run, or its asset has not been "
        "materialized); this section is empty."
    )


def gather_report_data(con: duckdb.DuckDBPyConnection, as_of: date) -> ReportData:
    """Read what the report shows from the marts; missing tables become notices."""
    data = ReportData(as_of=as_of, generated_at=datetime.now().isoformat(timespec="seconds"))
    for table in ("watchlist", "watchlist_history", "portfolio_monthly"):
        if not table_exists(con, MARTS, table):
            data.missing[table] = _missing_message(table)

    if "watchlist" not in data.missing:
        cols = [c for c, _ in _columns(con, MARTS, "watchlist")]
        cur = con.execute(f"SELECT * FROM {MARTS}.watchlist ORDER BY {_order_by(cols)}")
        data.watchlist_columns = cols
        data.watchlist_rows = [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]
        stale = sorted(
            {str(r.get("as_of_date"))[:10] for r in data.watchlist_rows} - {as_of.isoformat()}
        )
        if stale:
            data.notices.append(
                f"marts.watchlist holds as_of_date {', '.join(stale)}, not {as_of.isoformat()}: "
                "it may not have been rebuilt for this date."
            )
        if table_exists(con, "raw", "enterprises"):
            data.enterprise_names = dict(
                con.execute(
                    f"SELECT e.enterprise_id, e.name FROM raw.enterprises e "
                    f"JOIN (SELECT DISTINCT enterprise_id FROM {MARTS}.watchlist) w "
                    "USING (enterprise_id)"
                ).fetchall()
            )

    if "watchlist_history" not in data.missing:
        data.tier_history = [
            (str(d), str(t), int(n))
            for d, t, n in con.execute(
                f"SELECT CAST(as_of_date AS DATE), tier, count(*) FROM {MARTS}.watchlist_history "
                "WHERE CAST(as_of_date AS DATE) <= ? GROUP BY ALL ORDER BY 1, 2",
                [as_of],
            ).fetchall()
        ]

    if "portfolio_monthly" not in data.missing:
        pm = f"{MARTS}.portfolio_monthly"
        month_end = con.execute(
            f"SELECT max(CAST(month_end AS DATE)) FROM {pm} WHERE CAST(month_end AS DATE) <= ?",
            [as_of],
        ).fetchone()[0]
        if month_end is not None:
            data.npl_month_end = str(month_end)
            for dim, attr in (("industry_code", "npl_by_industry"), ("branch_id", "npl_by_branch")):
                rows = con.execute(
                    f"""SELECT coalesce(CAST({dim} AS VARCHAR), '(none)') AS k,
                               coalesce(sum(npl_principal) / nullif(sum(outstanding_principal), 0),
                                        0) AS ratio,
                               coalesce(sum(outstanding_principal), 0) AS outstanding
                        FROM {pm} WHERE CAST(month_end AS DATE) = ?
                        GROUP BY 1 ORDER BY ratio DESC, k""",
                    [month_end],
                ).fetchall()
                setattr(data, attr, [(str(k), float(r), float(o)) for k, r, o in rows])

    if table_exists(con, MARTS, "application_screening"):
        data.screening_decisions = [
            (str(d), int(n))
            for d, n in con.execute(
                f"SELECT coalesce(decision, '(none)'), count(*) FROM {MARTS}.application_screening "
                "GROUP BY 1 ORDER BY 2 DESC, 1"
            ).fetchall()
        ]
    return data


def _empty_watchlist_select() -> str:
    """Typed, empty contract-shaped watchlist for when the mart does not exist yet."""
    return (
        "SELECT NULL::DATE AS as_of_date, NULL::VARCHAR AS enterprise_id, NULL::VARCHAR AS tier, "
        "NULL::DOUBLE AS risk_score, NULL::VARCHAR AS signals, NULL::VARCHAR AS reasons, "
        "NULL::DATE AS first_flagged_date, NULL::VARCHAR AS status, "
        "NULL::VARCHAR AS recommended_action WHERE false"
    )


@asset(
    key=AssetKey(["exports", "watchlist_report"]),
    group_name=GROUP,
    kinds={"duckdb", "python", "html"},
    owners=[OWNER],
    deps=[WATCHLIST, WATCHLIST_HISTORY, PORTFOLIO_MONTHLY, APPLICATION_SCREENING],
    description=(
        "Credit officers' exports for as-of date D, in `<RISK_EXPORTS_DIR>/<D>/` (default "
        "`data/exports/`): `watchlist.csv` (UTF-8 with BOM, for Excel), `watchlist.parquet`, "
        "`report.html` (self-contained: tier counts over time, top reasons and signals, NPL "
        "ratio by industry and branch, new entries, the full watchlist) and, when screening "
        "has run, `application_screening.csv`."
    ),
)
def watchlist_report(context: AssetExecutionContext, warehouse: RiskWarehouse) -> MaterializeResult:
    as_of = warehouse.as_of_date
    out_dir = exports_dir() / as_of.isoformat()
    out_dir.mkdir(parents=True, exist_ok=True)
    csv_path, parquet_path = out_dir / "watchlist.csv", out_dir / "watchlist.parquet"
    html_path, screening_path = out_dir / "report.html", out_dir / "application_screening.csv"

    if warehouse.warehouse_path.exists():
        with warehouse.connect(read_only=True) as con:
            data = gather_report_data(con, as_of)
            if "watchlist" in data.missing:
                select_csv = select_parquet = _empty_watchlist_select()
            else:
                order = _order_by(data.watchlist_columns)
                select_csv = _csv_select(con, "watchlist", order)
                select_parquet = f"SELECT * FROM {MARTS}.watchlist ORDER BY {order}"
            write_csv_with_bom(con, select_csv, csv_path)
            write_parquet(con, select_parquet, parquet_path)
            screening_rows = None
            if data.screening_decisions is not None:
                write_csv_with_bom(
                    con, _csv_select(con, "application_screening", "ALL"), screening_path
                )
                screening_rows = sum(n for _, n in data.screening_decisions)
    else:
        data = ReportData(as_of=as_of, generated_at=datetime.now().isoformat(timespec="seconds"))
        for t in ("watchlist", "watchlist_history", "portfolio_monthly"):
            data.missing[t] = _missing_message(t)
        with duckdb.connect() as con:
            write_csv_with_bom(con, _empty_watchlist_select(), csv_path)
            write_parquet(con, _empty_watchlist_select(), parquet_path)
        screening_rows = None

    html_path.write_text(render_report(data), encoding="utf-8")
    for msg in data.missing.values():
        context.log.warning(msg)
    if screening_rows is None and screening_path.exists():
        screening_path.unlink()  # stale from an earlier run of the same date

    rows = data.watchlist_rows
    preview_cols = ["enterprise_id", "tier", "risk_score", "status", "reasons"]
    top = sorted(rows, key=lambda r: -(r.get("risk_score") or 0))[:20]
    metadata = {
        "dagster/row_count": len(rows),
        "as_of_date": as_of.isoformat(),
        "export_dir": MetadataValue.path(str(out_dir)),
        "watchlist_csv": MetadataValue.path(str(csv_path)),
        "watchlist_parquet": MetadataValue.path(str(parquet_path)),
        "report_html": MetadataValue.path(str(html_path)),
        "watchlist_rows": len(rows),
        "new_entries": len(data.new_entries),
        "red": sum(r.get("tier") == "red" for r in rows),
        "amber": sum(r.get("tier") == "amber" for r in rows),
        "missing_tables": MetadataValue.json(sorted(data.missing)),
        "preview": MetadataValue.md(
            markdown_table([[r.get(c) for c in preview_cols] for r in top], preview_cols)
            if rows
            else "No firms on the watchlist."
        ),
    }
    if screening_rows is not None:
        metadata["application_screening_csv"] = MetadataValue.path(str(screening_path))
        metadata["application_screening_rows"] = screening_rows
    return MaterializeResult(metadata=metadata)


export_assets: list[AssetsDefinition] = [watchlist_report]
