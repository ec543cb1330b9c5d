"""The report as one self-contained HTML page: a Jinja2 template with inline CSS and SVG.

Officers open it from a shared drive, offline, so nothing is linked: no scripts, stylesheets,
fonts or images from elsewhere. Autoescaping is on because reasons and names come from the
data; only the chart SVGs (escaped by Vega when rendered) are inserted as markup.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import altair as alt
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup

from assets.report import charts
from assets.report.model import ReportData, as_items, top_counts

TEMPLATES = Path(__file__).parent / "templates"
MAX_HISTORY_BARS = 60  # a year of nightly refreshes would make the chart unreadable


def _pct(v: float) -> str:
    return f"{v * 100:.2f}%"


_env = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=True,
    undefined=StrictUndefined,
    finalize=lambda v: "" if v is None else v,  # a NULL cell renders empty, not "None"
    trim_blocks=True,
    lstrip_blocks=True,
)
_env.filters["items"] = as_items
_env.filters["thousands"] = lambda v: f"{v:,.0f}"
_env.filters["pct"] = _pct


def _svg(chart: alt.TopLevelMixin | None) -> Markup | None:
    return None if chart is None else Markup(charts.to_svg(chart))


def _tier_section(data: ReportData) -> dict:
    """Tier counts per as-of date (the last MAX_HISTORY_BARS), as a chart and a table."""
    dates = sorted({d for d, _, _ in data.tier_history})
    capped = len(dates) > MAX_HISTORY_BARS
    dates = dates[-MAX_HISTORY_BARS:]
    counts = {(d, t): n for d, t, n in data.tier_history}
    red_amber = [(counts.get((d, "red"), 0), counts.get((d, "amber"), 0)) for d in dates]
    return {
        "capped": capped,
        "chart": _svg(charts.tier_chart(dates, counts, title="Firms on the watchlist by tier")),
        "rows": [(d, r, a, r + a) for d, (r, a) in zip(dates, red_amber, strict=True)],
    }


def _npl_section(data: ReportData) -> list[dict]:
    """One block per dimension: the NPL-ratio chart and its table."""
    return [
        {
            "label": label,
            "chart": _svg(
                charts.bar_chart(
                    [(k, r) for k, r, _ in items],
                    title=f"NPL ratio by {label.lower()}",
                    color="#c0392b",
                    value_format=_pct,
                )
            ),
            "rows": items,
        }
        for label, items in (("Industry", data.npl_by_industry), ("Branch", data.npl_by_branch))
    ]


def render_report(data: ReportData) -> str:
    """The whole report as one self-contained HTML string (every text value escaped)."""
    rows = data.watchlist_rows
    tiers = Counter(str(r.get("tier")) for r in rows)
    statuses = Counter(str(r.get("status")) for r in rows)
    reasons = top_counts((r.get("reasons") for r in rows), reasons=True)
    signals = top_counts(r.get("signals") for r in rows)
    screening = None
    if data.screening_decisions is not None:
        screening = charts.bar_chart(
            data.screening_decisions, title="Applications by decision", color="#2e7d32"
        )
    return _env.get_template("report.html.j2").render(
        data=data,
        cards=[
            ("On watchlist", len(rows)),
            ("Red", tiers.get("red", 0)),
            ("Amber", tiers.get("amber", 0)),
            ("New", statuses.get("new", 0)),
            ("Escalated", statuses.get("escalated", 0)),
        ],
        notices=[*data.missing.values(), *data.notices],
        tier=_tier_section(data) if "watchlist_history" not in data.missing else None,
        reasons_chart=_svg(charts.bar_chart(reasons, title="Firms per reason", color="#8e44ad")),
        signals_chart=_svg(charts.bar_chart(signals, title="Firms per signal", color="#3b6ea5")),
        npl=_npl_section(data) if data.npl_month_end is not None else [],
        screening_chart=_svg(screening),
        new_columns=["tier", "risk_score", "reasons", "recommended_action"],
    )
