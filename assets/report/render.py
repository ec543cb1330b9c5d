"""The report as one self-contained HTML page: a Jinja2 template with inline CSS and SVG.

Officers open it from a shared drive, offline, so nothing is linked: no scripts, stylesheets,
fonts or images from elsewhere. Autoescaping is on because reasons and names come from the
data; only the chart SVGs (escaped by Vega when rendered) are inserted as markup.
"""

from __future__ import annotations

import re
from pathlib import Path

import altair as alt
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup

from assets.report import charts, network
from assets.report.i18n import (
    HEADERS,
    LABELS,
    action_in,
    reasons_in,
    report_lang,
    screening_reason_zh,
    signal_names,
    topic_name,
    word,
)
from assets.report.model import ReportData, as_items, top_counts
from assets.signals.catalog import Catalog, load_catalog

TEMPLATES = Path(__file__).parent / "templates"
MAX_HISTORY_BARS = 60  # a year of nightly refreshes would make the chart unreadable
TOP_BRANCHES = 10  # branches that matter: the top N by NPL (else by outstanding), not all 60
SUMMARY_LIST = 10  # firms named per change in the one-minute summary


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


def _tier_section(data: ReportData, lang: str) -> dict:
    """Firms per tier at the last 12 month ends (decision history), else per refresh."""
    history = data.tier_by_month or data.tier_history
    dates = sorted({d for d, _, _ in history})
    capped = len(dates) > MAX_HISTORY_BARS
    dates = dates[-(12 if data.tier_by_month else MAX_HISTORY_BARS):]
    counts = {(d, t): n for d, t, n in history}
    red_amber = [(counts.get((d, "red"), 0), counts.get((d, "amber"), 0)) for d in dates]
    colors = {word("red", lang): charts.TIER_COLORS["red"],
              word("amber", lang): charts.TIER_COLORS["amber"]}
    named = {(d, word(t, lang)): n for (d, t), n in counts.items()}
    title = LABELS[lang]["tiers_by_month"]
    return {
        "capped": capped,
        "chart": _svg(charts.tier_chart(dates, named, title=title, colors=colors)),
        "rows": [(d, r, a, r + a) for d, (r, a) in zip(dates, red_amber, strict=True)],
    }


def _npl_trend(data: ReportData, lang: str) -> dict:
    points = [(m, n / o if o else 0.0) for m, n, o in data.npl_trend]
    return {
        "chart": _svg(charts.line_chart(points, title=LABELS[lang]["npl_trend"],
                                        value_format=_pct)),
        "rows": [(m, _pct(n / o if o else 0.0), n, o) for m, n, o in data.npl_trend],
    }


def _npl_section(data: ReportData, lang: str) -> list[dict]:
    """NPL by industry (every section with loans) and by the branches that matter."""
    ind = [
        (f"{k} {data.industry_names.get(k, '')}".strip(), r, o) for k, r, o in data.npl_by_industry
    ]
    # The branches that matter: those with NPL, largest NPL first (at most TOP_BRANCHES);
    # when no branch has any, the largest books.
    with_npl = sorted(
        (b for b in data.npl_by_branch if b[1] > 0), key=lambda t: (-(t[1] * t[2]), t[0])
    )
    branches = with_npl or sorted(data.npl_by_branch, key=lambda t: (-t[2], t[0]))
    top = branches[:TOP_BRANCHES]
    rest = len(data.npl_by_branch) - len(top)
    br = [(data.branch_names.get(k) or k, r, o) for k, r, o in top]
    out = []
    for key, items in (("by_industry", ind), ("by_branch", br)):
        title = LABELS[lang][key].format(n=len(br))
        out.append({
            "title": title,
            "chart": _svg(charts.bar_chart([(k, r) for k, r, _ in items], title=title,
                                           color="#c0392b", value_format=_pct)),
            "rows": [(k, _pct(r), r * o, o) for k, r, o in items],
            "more": rest if key == "by_branch" else 0,
        })
    return out


def _reason_groups(data: ReportData, lang: str, catalog: Catalog) -> dict:
    """Listed firms per topic and per signal (a firm counted once per group), not per text."""
    names = signal_names(lang, catalog)
    known = {s.id for s in catalog.signals}
    topics = top_counts(
        ([catalog.topic(x) for x in as_items(r.get("signals")) if x in known]
         for r in data.watchlist_rows), n=12,
    )
    signals = top_counts((r.get("signals") for r in data.watchlist_rows), n=15)
    t_items = [(topic_name(t, lang), n) for t, n in topics]
    s_items = [(names.get(sid, sid), n) for sid, n in signals]
    return {
        "topic_chart": _svg(charts.bar_chart(t_items, title=LABELS[lang]["by_topic"],
                                             color="#8e44ad")),
        "signal_chart": _svg(charts.bar_chart(s_items, title=LABELS[lang]["by_signal"],
                                              color="#3b6ea5")),
    }


def officer_row(r: dict, lang: str, catalog: Catalog) -> dict:
    """One watchlist row as the officer reads it, in the language (also the sheets' rows)."""
    reasons = r.get("reason_list")
    items = as_items(reasons) if reasons else as_items(r.get("reasons"), reasons=True)
    pd_value = r.get("pd")
    return {
        "enterprise_id": str(r.get("enterprise_id") or ""),
        "name": r.get("name") or "",
        "branch_id": r.get("branch_id") or "",
        "branch_name": r.get("branch_name") or r.get("branch_id") or "",
        "officer_id": r.get("officer_id") or "",
        "industry": r.get("industry_name_zh" if lang == "zh" else "industry_name_en")
        or r.get("industry_code") or "",
        "exposure": r.get("exposure"),
        "tier_code": str(r.get("tier") or ""),
        "tier": word(r.get("tier"), lang),
        "pd": float(pd_value) if pd_value is not None else None,
        "risk_score": r.get("risk_score"),
        "status_code": str(r.get("status") or ""),
        "status": word(r.get("status"), lang),
        "first_flagged_date": str(r.get("first_flagged_date") or "")[:10],
        "reasons": reasons_in(items, lang, catalog),
        "signals": as_items(r.get("signals")),
        "recommended_action": action_in(r.get("recommended_action"), r.get("tier"), lang,
                                        catalog),
    }


BACKTEST_FIGURES_ZH = {
    "auc_6m": "AUC（6个月内违约）",
    "auc_6m_list_order": "AUC（6个月，按名单顺序：红、黄、其他）",
    "ks_6m": "KS（6个月）", "auc_12m": "AUC（12个月内违约）",
    "recall_6m": "6个月内违约企业中事先列入名单的比例",
    "precision_red_6m": "红色企业6个月内违约比例", "precision_amber_6m": "黄色企业6个月内违约比例",
    "performing_listed_share": "12个月正常履约却被列入名单的企业比例",
    "listed_while_current_share": "违约企业在全部贷款正常时即被列入的比例",
    "lead_time_median": "首次列入到违约的月数（中位数）",
    "watchlist_size_mean": "每个月末名单企业数", "score_psi": "评分相对训练期的PSI",
}
BACKTEST_FIGURES = (
    ("auc_6m", "AUC, default within 6 months", "num"),
    ("auc_6m_list_order", "AUC, 6 months, in list order (red, amber, rest)", "num"),
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


def _backtest_section(data: ReportData, lang: str = "en") -> dict | None:
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
    engine = bt.engine
    if lang == "zh":
        engine = (f"PD评分卡 {bt.model['model_version']}" if bt.model
                  else "专家信号目录（冷启动：尚无PD评分卡）")
    names = signal_names(lang)
    return {
        "engine": engine,
        "heads": [f"{r['window_start']} .. {r['window_end']}" for r in runs],
        "figures": [
            (BACKTEST_FIGURES_ZH.get(key, label) if lang == "zh" else label,
             [_figure(r.get(key), kind) for r in runs])
            for key, label, kind in BACKTEST_FIGURES
        ],
        "roc": _svg(
            charts.roc_chart(bt.roc, title="ROC（6个月内违约）", x_title="被列入的正常企业比例",
                             y_title="事后违约企业被列入比例")
            if lang == "zh" else charts.roc_chart(bt.roc, title="ROC, default within 6 months")
        ),
        "calibration": _svg(
            charts.calibration_chart(cal, title="校准", x_title="预测违约概率",
                                     y_title="实际12个月违约率")
            if lang == "zh" else charts.calibration_chart(cal, title="Calibration")
        ),
        "cutoffs": [
            (f"{c['cutoff']:.1%}", _figure(c.get("performing_listed_share"), "pct"),
             _figure(c.get("recall_6m"), "pct"), _figure(c.get("precision_6m"), "pct"),
             _figure(c.get("watchlist_size_mean"), "int"))
            for c in bt.cutoffs
        ],
        "weak": [
            (names.get(w["signal_id"], w["signal_id"]), _figure(w.get("lift"), "num"))
            for w in bt.weak_signals
        ],
        "silent": [
            names.get(s, s) for s in (bt.runs[-1].get("silent_signal_ids") or [] if bt.runs else [])
        ],
        "model": bt.model,
    }


def _summary(data: ReportData, rows: list[dict], lang: str) -> dict:
    def pick(items: list[dict]) -> list[dict]:
        return items[:SUMMARY_LIST]

    new = [o for o in rows if o["status_code"] == "new"]
    esc = [o for o in rows if o["status_code"] == "escalated"]
    exposure = sum(o["exposure"] or 0 for o in rows)
    npl = None
    if data.npl_trend:
        m, n, o = data.npl_trend[-1]
        npl = LABELS[lang]["npl_now"].format(month=m, ratio=_pct(n / o if o else 0.0),
                                             npl=f"{n:,.0f}", out=f"{o:,.0f}")
    return {
        "line": LABELS[lang]["summary_line"].format(
            n=len(rows), red=sum(o["tier_code"] == "red" for o in rows),
            amber=sum(o["tier_code"] == "amber" for o in rows), exposure=f"{exposure:,.0f}",
            new=len(new), esc=len(esc), cleared=len(data.cleared),
        ),
        "since": LABELS[lang]["since"].format(prev=data.previous_as_of)
        if data.previous_as_of else LABELS[lang]["since_none"],
        "npl": npl,
        "lists": [
            (LABELS[lang]["new_list"], len(new), pick(new)),
            (LABELS[lang]["escalated_list"], len(esc), pick(esc)),
        ],
        "cleared": [
            {"name": c.get("name") or "", "enterprise_id": c["enterprise_id"],
             "tier": word(c.get("tier"), lang)}
            for c in data.cleared[:SUMMARY_LIST]
        ],
        "cleared_n": len(data.cleared),
    }


_EW_REASON = re.compile(r"^Early-warning tier (\w+) at (\S+): (.*)$")


def _screening_reason(text: str, lang: str) -> str:
    """A screening reason in the language: every access rule has a Chinese text
    (`reason_zh`, same placeholders); the early-warning refer quotes the catalog's reasons,
    which have Chinese templates too."""
    if lang != "zh":
        return text
    zh = screening_reason_zh(text)
    if zh != text:
        return zh
    m = _EW_REASON.match(text)
    if not m:
        return text
    parts = reasons_in(m[3].split("; "), lang)
    return f"预警等级{word(m[1], lang)}（{m[2]}）：" + "；".join(parts)


def _screening(data: ReportData, lang: str) -> dict | None:
    if data.screening_window is None:
        return None
    start, end = data.screening_window
    n = sum(k for _, k in data.screening_month)
    items = [(word(d, lang), k) for d, k in data.screening_month]
    return {
        "window": LABELS[lang]["screening_window"].format(start=start, end=end, n=n),
        "chart": _svg(charts.bar_chart(items, title=LABELS[lang]["screening"],
                                       color="#2e7d32")),
        "decisions": items,
        "rules": [(rid, _screening_reason(re.sub(r"\{[^{}]*\}", "…", txt), lang), n)
                  for rid, txt, n in data.screening_rules],
    }


def _circles(data: ReportData, lang: str) -> list[dict]:
    """Each troubled guarantee circle: its picture (static SVG) and its members' table."""
    out = []
    for c in data.circles:
        members = c["members"]
        svg = network.circle_svg(members, c["edges"],
                                 title=f"{LABELS[lang]['circle']} {c['circle_id']}")
        out.append({
            **c,
            "svg": Markup(svg),
            "rows": [(i, m.get("name") or "", m["enterprise_id"],
                      LABELS[lang][f"state_{m['state']}"], float(m["exposure"] or 0))
                     for i, m in enumerate(members, start=1)],
        })
    return out


def render_report(data: ReportData, lang: str | None = None,
                  catalog: Catalog | None = None, rows: list[dict] | None = None) -> str:
    """The whole report as one self-contained HTML string (every text value escaped), in
    `lang` (default RISK_REPORT_LANG, zh). `rows`: the watchlist's officer rows in `lang`, when
    the caller has them already (the exports write them to the sheets first: at 1M firms
    1.4 s a pass)."""
    lang = lang or report_lang()
    catalog = catalog or load_catalog()
    if rows is None:
        rows = [officer_row(r, lang, catalog) for r in data.watchlist_rows]
    screening = None
    if data.screening_decisions is not None:
        screening = charts.bar_chart(
            [(word(d, lang), n) for d, n in data.screening_decisions],
            title=LABELS[lang]["screening"], color="#2e7d32",
        )
    has_history = bool(data.tier_by_month) or "watchlist_history" not in data.missing
    return _env.get_template("report.html.j2").render(
        data=data,
        lang=lang,
        L=LABELS[lang],
        H=HEADERS[lang],
        rows=rows,
        officers=any(o["officer_id"] for o in rows),
        summary=_summary(data, rows, lang),
        cards=[
            (LABELS[lang]["on_watchlist"], len(rows), ""),
            (LABELS[lang]["red"], sum(o["tier_code"] == "red" for o in rows), "red"),
            (LABELS[lang]["amber"], sum(o["tier_code"] == "amber" for o in rows), "amber"),
            (LABELS[lang]["new"], sum(o["status_code"] == "new" for o in rows), ""),
            (LABELS[lang]["escalated"], sum(o["status_code"] == "escalated" for o in rows), ""),
            (LABELS[lang]["cleared"], len(data.cleared), ""),
        ],
        notices=[*data.missing.values(), *data.notices],
        tier=_tier_section(data, lang) if has_history else None,
        npl_trend=_npl_trend(data, lang) if data.npl_trend else None,
        groups=_reason_groups(data, lang, catalog),
        npl=_npl_section(data, lang) if data.npl_month_end is not None else [],
        screening_chart=_svg(screening),
        screening_month=_screening(data, lang),
        backtest=_backtest_section(data, lang),
        circles=_circles(data, lang),
        circle_legend=[(LABELS[lang][f"state_{k}"], v) for k, v in network.STATE_COLORS.items()],
    )
