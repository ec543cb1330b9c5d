"""The report's charts: Altair specs rendered to static SVG by vl-convert, offline.

Officers open the report without internet and often without JavaScript, so each chart is
converted here to an inline SVG (text stays text, so Chinese labels remain searchable). Data is
passed inline and vl-convert may load no URL at all, so rendering never touches the network.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import altair as alt
import vl_convert

#: Same stack as the page CSS, so chart labels match the tables (and CJK glyphs render).
FONT = '-apple-system, "Segoe UI", "PingFang SC", "Microsoft YaHei", sans-serif'
TIER_COLORS = {"red": "#c0392b", "amber": "#e6a23c"}
# vl-convert bundles several Vega-Lite versions; render with the one Altair writes specs for.
_VL_VERSION = "_".join(alt.SCHEMA_VERSION.split(".")[:2])


def _fmt_number(value: float) -> str:
    return f"{value:g}"


def to_svg(chart: alt.TopLevelMixin) -> str:
    """Static SVG markup of a chart; `allowed_base_urls=[]` forbids any data or image fetch."""
    return vl_convert.vegalite_to_svg(chart.to_dict(), vl_version=_VL_VERSION, allowed_base_urls=[])


def _configured(chart: alt.TopLevelMixin, description: str) -> alt.TopLevelMixin:
    return (
        chart.properties(description=description)
        .configure(font=FONT, background="white")
        .configure_view(stroke=None)
    )


def bar_chart(
    items: Sequence[tuple[str, float]],
    *,
    title: str,
    color: str = "#3b6ea5",
    value_format: Callable[[float], str] = _fmt_number,
    width: int = 380,
) -> alt.TopLevelMixin | None:
    """Horizontal bars in the given order, each labelled with its formatted value.

    Values are formatted in Python so the chart shows exactly what the tables show
    (e.g. `5.00%`); each bar's accessible label reads `label: value`. None when empty.
    """
    if not items:
        return None
    rows = [
        {
            "label": str(label),
            "value": float(value),
            "text": value_format(value),
            "desc": f"{label}: {value_format(value)}",
        }
        for label, value in items
    ]
    base = alt.Chart(alt.Data(values=rows)).encode(
        y=alt.Y(
            "label:N",
            sort=None,
            title=None,
            axis=alt.Axis(labelLimit=260, ticks=False, domain=False, labelFontSize=12),
        ),
        x=alt.X("value:Q", axis=None, scale=alt.Scale(domainMin=0)),
        description=alt.Description("desc:N"),
    )
    bars = base.mark_bar(color=color, size=20)
    values = base.mark_text(align="left", dx=4, fontSize=12).encode(text="text:N")
    chart = alt.layer(bars, values).properties(width=width, height=alt.Step(26))
    return _configured(chart, title)


def tier_chart(
    dates: Sequence[str],
    counts: Mapping[tuple[str, str], int],
    *,
    title: str,
    colors: Mapping[str, str] = TIER_COLORS,
) -> alt.TopLevelMixin | None:
    """Vertical bars per as-of date stacked by tier (first tier at the bottom), totals on top.

    None when there are no dates.
    """
    if not dates:
        return None
    tiers = list(colors)
    rows = [
        {"as_of_date": d, "tier": t, "n": counts.get((d, t), 0), "stack": i}
        for d in dates
        for i, t in enumerate(tiers)
        if counts.get((d, t), 0) > 0
    ]
    totals = [{"as_of_date": d, "total": sum(counts.get((d, t), 0) for t in tiers)} for d in dates]
    x = alt.X(
        "as_of_date:O",
        sort=list(dates),
        title=None,
        scale=alt.Scale(domain=list(dates)),
        axis=alt.Axis(labelAngle=-35),
    )
    bars = (
        alt.Chart(alt.Data(values=rows))
        .mark_bar(size=36)
        .encode(
            x=x,
            y=alt.Y("n:Q", stack="zero", title=None, axis=alt.Axis(tickCount=2, grid=False)),
            color=alt.Color(
                "tier:N",
                title=None,
                scale=alt.Scale(domain=tiers, range=[colors[t] for t in tiers]),
            ),
            order=alt.Order("stack:Q"),
            description=alt.Description("desc:N"),
        )
        .transform_calculate(desc="datum.as_of_date + ' ' + datum.tier + ': ' + datum.n")
    )
    labels = (
        alt.Chart(alt.Data(values=totals))
        .mark_text(baseline="bottom", dy=-4, fontSize=11)
        .encode(x=x, y=alt.Y("total:Q"), text=alt.Text("total:Q", format="d"))
    )
    chart = alt.layer(bars, labels).properties(width=alt.Step(50), height=150)
    return _configured(chart, title)


def roc_chart(
    points: Sequence[Mapping[str, float]],
    *,
    title: str,
    x_title: str = "performing firms listed",
    y_title: str = "later defaulters listed",
) -> alt.TopLevelMixin | None:
    """ROC curve (true against false positive rate) with the chance diagonal; None if empty."""
    if not points:
        return None
    rows = [{"fpr": float(p["fpr"]), "tpr": float(p["tpr"])} for p in points]
    axis = {"tickCount": 5, "format": "%"}
    curve = (
        alt.Chart(alt.Data(values=rows))
        .mark_line(color="#3b6ea5", strokeWidth=2)
        .encode(
            x=alt.X("fpr:Q", title=x_title, axis=alt.Axis(**axis)),
            y=alt.Y("tpr:Q", title=y_title, axis=alt.Axis(**axis)),
        )
    )
    chance = (
        alt.Chart(alt.Data(values=[{"fpr": 0.0, "tpr": 0.0}, {"fpr": 1.0, "tpr": 1.0}]))
        .mark_line(color="#999", strokeDash=[4, 4])
        .encode(x="fpr:Q", y="tpr:Q")
    )
    return _configured(alt.layer(chance, curve).properties(width=260, height=220), title)


def calibration_chart(
    rows: Sequence[tuple[str, float, float]],
    *,
    title: str,
    x_title: str = "predicted PD",
    y_title: str = "observed 12-month default rate",
) -> alt.TopLevelMixin | None:
    """Predicted PD against the observed default rate per band, with the diagonal."""
    if not rows:
        return None
    data = [{"band": b, "predicted": float(p), "observed": float(o)} for b, p, o in rows]
    top = max(max(d["predicted"], d["observed"]) for d in data) or 1.0
    axis = {"tickCount": 5, "format": "%"}
    dots = (
        alt.Chart(alt.Data(values=data))
        .mark_point(color="#c0392b", filled=True, size=60)
        .encode(
            x=alt.X("predicted:Q", title=x_title, axis=alt.Axis(**axis),
                    scale=alt.Scale(domain=[0, top])),
            y=alt.Y("observed:Q", title=y_title,
                    axis=alt.Axis(**axis), scale=alt.Scale(domain=[0, top])),
            description=alt.Description("band:N"),
        )
    )
    diagonal = (
        alt.Chart(alt.Data(values=[{"predicted": 0.0, "observed": 0.0},
                                   {"predicted": top, "observed": top}]))
        .mark_line(color="#999", strokeDash=[4, 4])
        .encode(x="predicted:Q", y="observed:Q")
    )
    return _configured(alt.layer(diagonal, dots).properties(width=260, height=220), title)


def line_chart(
    points: Sequence[tuple[str, float]],
    *,
    title: str,
    color: str = "#c0392b",
    value_format: Callable[[float], str] = _fmt_number,
    axis_format: str = "%",
) -> alt.TopLevelMixin | None:
    """A value per month end as a line with labelled points; None when empty."""
    if not points:
        return None
    rows = [
        {"x": str(k), "v": float(v), "text": value_format(v), "desc": f"{k}: {value_format(v)}"}
        for k, v in points
    ]
    x = alt.X("x:O", sort=[r["x"] for r in rows], title=None, axis=alt.Axis(labelAngle=-35))
    base = alt.Chart(alt.Data(values=rows)).encode(
        x=x, description=alt.Description("desc:N"),
        y=alt.Y("v:Q", title=None, axis=alt.Axis(format=axis_format, tickCount=4),
                scale=alt.Scale(zero=True)),
    )
    line = base.mark_line(color=color, strokeWidth=2, point=True)
    labels = base.mark_text(dy=-8, fontSize=10).encode(text="text:N")
    chart = alt.layer(line, labels).properties(width=alt.Step(42), height=150)
    return _configured(chart, title)
