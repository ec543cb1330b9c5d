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


BACKTEST_FIGURES = (
    ("auc_6m", "AUC, default within 6 months", "num"),
    ("ks_6m", "KS, 6 months", "num"),
    ("auc_12m", "AUC, default within 12 months", "num"),
    ("recall_6m", "later defaulters (6 months) listed", "pct"),
    ("precision_red_6m", "red firms defaulting within 6 months", "pct"),
    ("precision_amber_6m", "amber firms defaulting within 6 months", "pct"),
    ("performing_listed_share", "firms performing for 12 months that were listed", "pct"),
    ("listed_while_current_share", "defaulters listed while all loans were current", "pct"),
    ("lead_time_median", "median months from first listing to default", "int"),
    ("watchlist_size_mean", "firms on the watchlist per month end", "int"),
    ("score_psi", "PSI of the score against training", "num"),
)


def _figure(value: object, kind: str) -> str:
    if value is None:
        return "n/a"
    if kind == "pct":
        return f"{float(value):.1%}"
    if kind == "int":
        return f"{float(value):,.0f}"
    return f"{float(value):.3f}" if isinstance(value, float) else str(value)


def _backtest_section(data: ReportData) -> dict | None:
    """Figures of the latest back-test runs, ROC and calibration charts, the cut-off table."""
    bt = data.backtest
    if bt is None:
        return None
    runs = bt.runs
    cal = [
        (str(r["band"]), r["mean_pd"], r["observed_rate_12m"])
        for r in bt.calibration
        if r.get("band_kind") == "decile" and r.get("mean_pd") is not None
        and r.get("observed_rate_12m") is not None
    ]
    return {
        "engine": bt.engine,
        "heads": [f"{r['window_start']} .. {r['window_end']}" for r in runs],
        "figures": [
            (label, [_figure(r.get(key), kind) for r in runs])
            for key, label, kind in BACKTEST_FIGURES
        ],
        "roc": _svg(charts.roc_chart(bt.roc, title="ROC, default within 6 months")),
        "calibration": _svg(charts.calibration_chart(cal, title="Calibration")),
        "cutoffs": [
            (f"{c['cutoff']:.1%}", _figure(c.get("performing_listed_share"), "pct"),
             _figure(c.get("recall_6m"), "pct"), _figure(c.get("precision_6m"), "pct"),
             _figure(c.get("watchlist_size_mean"), "int"))
            for c in bt.cutoffs
        ],
        "weak": [
            (w["signal_id"], _figure(w.get("lift"), "num")) for w in bt.weak_signals
        ],
        "model": bt.model,
    }


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
        backtest=_backtest_section(data),
        new_columns=["tier", "risk_score", "reasons", "recommended_action"],
    )
