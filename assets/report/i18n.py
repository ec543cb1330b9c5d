"""The officers' language: labels, tier/status/decision words and Chinese reasons.

`RISK_REPORT_LANG=zh|en` (default zh, read at run time) chooses the language of the report,
the CSV headers and the sheets. Reasons: the decision engine renders English reasons from the
catalog's `reason` templates; the catalog also holds a `reason_zh` template with the same
placeholders for every signal and scorecard feature, so each English reason is matched back to
its template here and the firm's values re-inserted into the Chinese one. A reason that
matches no template (an older catalog's, or free text) is shown as it is.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from functools import lru_cache

from assets.signals.catalog import Catalog, load_catalog

LANGS = ("zh", "en")
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")


def report_lang() -> str:
    """RISK_REPORT_LANG (zh or en), default zh; anything else falls back to zh."""
    lang = (os.environ.get("RISK_REPORT_LANG") or "zh").strip().lower()
    return lang if lang in LANGS else "zh"


WORDS: dict[str, dict[str, str]] = {
    "zh": {
        "red": "红色", "amber": "黄色", "green": "绿色",
        "new": "新增", "continuing": "持续", "escalated": "升级", "cleared": "已退出",
        "approve": "通过", "refer": "转人工审查", "decline": "拒绝", "(none)": "（无）",
        "micro": "微型", "small": "小型", "medium": "中型",
        "down": "下降", "up": "上升",
        "hard_decline": "硬性拒绝", "product": "产品匹配",
        "active": "存续", "suspended": "停业", "revoked": "吊销", "cancelled": "注销",
    },
    "en": {},
}

#: Column headers of the CSV, the sheets and the report table, by internal name.
HEADERS: dict[str, dict[str, str]] = {
    "zh": {
        "enterprise_id": "统一社会信用代码", "name": "企业名称", "branch_id": "支行代码",
        "branch_name": "支行", "officer_id": "客户经理", "industry": "行业",
        "exposure": "贷款余额（元）", "tier": "预警等级", "pd": "违约概率（12个月）",
        "risk_score": "风险分", "status": "状态", "first_flagged_date": "首次预警日期",
        "reasons": "预警原因", "signals": "触发信号", "recommended_action": "建议措施",
        "as_of_date": "数据日期", "engine": "判定引擎",
    },
    "en": {
        "enterprise_id": "credit code", "name": "name", "branch_id": "branch id",
        "branch_name": "branch", "officer_id": "relationship manager", "industry": "industry",
        "exposure": "outstanding principal (CNY)", "tier": "tier", "pd": "PD (12 months)",
        "risk_score": "risk score", "status": "status", "first_flagged_date": "flagged since",
        "reasons": "reasons", "signals": "signals", "recommended_action": "action",
        "as_of_date": "as of", "engine": "engine",
    },
}

#: Every other text of the report, by key.
LABELS: dict[str, dict[str, str]] = {
    "zh": {
        "title": "小微企业信贷预警报告", "as_of": "数据日期", "generated": "生成时间",
        "summary": "一分钟摘要", "on_watchlist": "预警名单", "red": "红色", "amber": "黄色",
        "new": "新增", "escalated": "升级", "cleared": "退出",
        "since": "与上次刷新（{prev}）相比", "since_none": "没有更早的刷新可比较。",
        "summary_line": "名单共 {n} 户（红色 {red} 户、黄色 {amber} 户），"
                        "贷款余额合计 {exposure} 元；"
                        "新增 {new} 户，升级 {esc} 户，退出 {cleared} 户。",
        "npl_now": "{month} 不良率 {ratio}（不良余额 {npl} 元 / 贷款余额 {out} 元）。",
        "new_list": "新增", "escalated_list": "升级为红色", "cleared_list": "已退出名单",
        "trends": "近12个月趋势", "tiers_by_month": "各月末红色/黄色企业数（按当月判定）",
        "npl_trend": "各月末不良率",
        "npl": "不良率：行业与支行", "by_industry": "按行业",
        "by_branch": "按支行（有不良的前 {n} 个）",
        "npl_ratio": "不良率", "outstanding": "贷款余额（元）", "npl_principal": "不良余额（元）",
        "month_end": "月末", "industry": "行业", "branch": "支行",
        "reasons": "预警原因（按信号与主题归类）", "by_topic": "按主题", "by_signal": "按信号",
        "firms": "户数", "topic": "主题", "signal": "信号",
        "watchlist": "预警名单", "no_firms": "名单为空。",
        "screening": "上月准入筛查", "screening_window": "{start} 至 {end} 的申请 {n} 笔。",
        "decision": "决定", "applications": "笔数", "main_reasons": "主要原因", "rule": "规则",
        "no_applications": "该期间没有申请。",
        "backtest": "回测（本行自身结果）", "more": "其余", "none": "无",
        "more_branches": "其余 {n} 个支行未列出（无不良或排名靠后）。",
        "branch_unknown": "（未知支行）", "total": "合计",
        "print_note": "本报告为单一文件，可离线打开、打印（A4）或在手机上阅读。",
        "circles": "担保圈风险",
        "circles_note": "{month} 有成员出现问题（违约、逾期超过30天或列入预警名单）的"
                        "担保圈 {n} 个，按风险敞口排序。箭头由担保人指向被担保人。",
        "circle": "担保圈", "state": "状态",
        "circle_exposure": "{n} 户成员，本行贷款余额合计 {total} 元；其中尚未违约成员的余额 "
                           "{risk} 元可能因代偿而受波及。",
        "state_default": "已违约", "state_red": "红色预警", "state_past_due": "逾期超过30天",
        "state_amber": "黄色预警", "state_ok": "正常",
    },
    "en": {
        "title": "SME credit early-warning report", "as_of": "As of", "generated": "Generated",
        "summary": "Summary", "on_watchlist": "On watchlist", "red": "Red", "amber": "Amber",
        "new": "New", "escalated": "Escalated", "cleared": "Cleared",
        "since": "Since the last refresh ({prev})", "since_none": "No earlier refresh to compare.",
        "summary_line": "{n} firms listed ({red} red, {amber} amber), {exposure} CNY outstanding; "
                        "{new} new, {esc} escalated, {cleared} cleared.",
        "npl_now": "NPL ratio at {month}: {ratio} ({npl} CNY NPL of {out} CNY outstanding).",
        "new_list": "New", "escalated_list": "Escalated to red", "cleared_list": "Left the list",
        "trends": "Last 12 month ends", "tiers_by_month": "Firms listed per month end",
        "npl_trend": "NPL ratio per month end",
        "npl": "NPL by industry and branch", "by_industry": "By industry",
        "by_branch": "By branch (top {n} by NPL)",
        "npl_ratio": "NPL ratio", "outstanding": "Outstanding (CNY)", "npl_principal": "NPL (CNY)",
        "month_end": "Month end", "industry": "Industry", "branch": "Branch",
        "reasons": "Reasons by signal and topic", "by_topic": "By topic", "by_signal": "By signal",
        "firms": "Firms", "topic": "Topic", "signal": "Signal",
        "watchlist": "Watchlist", "no_firms": "No firms on the watchlist.",
        "screening": "Screening of the last month",
        "screening_window": "{n} applications dated {start} to {end}.",
        "decision": "Decision", "applications": "Applications", "main_reasons": "Main reasons",
        "rule": "Rule", "no_applications": "No applications in the window.",
        "backtest": "Back-test on the bank's own outcomes", "more": "more", "none": "none",
        "more_branches": "{n} more branches not shown (no NPL, or smaller).",
        "branch_unknown": "(unknown branch)", "total": "Total",
        "print_note": "One self-contained file: opens offline, prints on A4, reads on a phone.",
        "circles": "Guarantee circles in trouble",
        "circles_note": "{n} guarantee circle(s) at {month} with a member in trouble (in default, "
                        "over 30 days past due, or on the watchlist), most exposure at risk "
                        "first. Arrows run from guarantor to borrower.",
        "circle": "Circle", "state": "State",
        "circle_exposure": "{n} members, {total} CNY outstanding with the bank; {risk} CNY of it "
                           "owed by members not in default, which the called guarantees can reach.",
        "state_default": "in default", "state_red": "red",
        "state_past_due": "over 30 days past due", "state_amber": "amber", "state_ok": "performing",
    },
}

TOPICS_ZH = {
    "loan_arrears": "贷款逾期", "tax_rating": "纳税信用", "fund_use": "资金用途",
    "court": "涉诉与执行", "governance": "治理变动", "revenue": "营收", "electricity": "用电",
    "tax_filings": "纳税申报", "registry_status": "登记状态", "industry": "行业",
    "tax_arrears": "欠税", "utility_payments": "水电气缴费", "maturity": "到期压力",
    "borrowing": "负债", "firm_age": "经营年限", "firm_size": "企业规模",
    "registry_events": "工商事件", "guarantee_network": "担保圈链", "related_parties": "关联方",
}


def word(value: object, lang: str) -> str:
    """A code word (tier, status, decision) in the language; unknown words stay as they are."""
    s = "" if value is None else str(value)
    return WORDS.get(lang, {}).get(s, s)


def label(key: str, lang: str, **kw: object) -> str:
    text = LABELS[lang][key]
    return text.format(**kw) if kw else text


def topic_name(topic: str, lang: str) -> str:
    return TOPICS_ZH.get(topic, topic) if lang == "zh" else topic.replace("_", " ")


def _template_regex(template: str) -> re.Pattern[str]:
    pos, parts, seen = 0, [], set()
    for m in _PLACEHOLDER.finditer(template):
        parts.append(re.escape(template[pos:m.start()]))
        name = m[1]
        parts.append(f"(?P={name})" if name in seen else f"(?P<{name}>.+?)")
        seen.add(name)
        pos = m.end()
    parts.append(re.escape(template[pos:]))
    return re.compile("^" + "".join(parts) + "$")


_TEMPLATES: dict[int, tuple[tuple[re.Pattern[str], str], ...]] = {}


def _reason_templates(catalog: Catalog) -> tuple[tuple[re.Pattern[str], str], ...]:
    """(English template regex, Chinese template), most specific (longest) template first."""
    if id(catalog) in _TEMPLATES:
        return _TEMPLATES[id(catalog)]
    pairs = [(s.reason, s.reason_zh) for s in catalog.signals if s.reason_zh]
    pairs += [(f.reason, f.reason_zh) for f in catalog.feature_reasons.values() if f.reason_zh]
    pairs += [(f.reason_missing, f.reason_missing_zh) for f in catalog.feature_reasons.values()
              if f.reason_missing_zh]
    pairs += [(f.reason_zero, f.reason_zero_zh) for f in catalog.feature_reasons.values()
              if f.reason_zero_zh]
    pairs.sort(key=lambda p: -len(_PLACEHOLDER.sub("", p[0])))
    _TEMPLATES[id(catalog)] = tuple((_template_regex(en), zh) for en, zh in pairs)
    return _TEMPLATES[id(catalog)]


@lru_cache(maxsize=1)
def _default_catalog() -> Catalog:
    return load_catalog()


def _value_zh(value: str) -> str:
    """A value as rendered in English ('down 35%', 'micro') in Chinese words."""
    m = re.fullmatch(r"(down|up) (.+)", value)
    if m:
        return WORDS["zh"][m[1]] + m[2]
    return WORDS["zh"].get(value, value)


#: Reasons the decision marts write themselves (not from the catalog's templates).
_FIXED_ZH = (
    (re.compile(r"^clearing: below the watchlist tiers at (\d+) of (\d+) month ends needed "
                r"to leave$"),
     "观察退出中：已有{0}个月末低于预警标准（连续{1}个月末即退出名单）"),
)


def reason_zh(reason: str, catalog: Catalog | None = None) -> str:
    """The Chinese form of one English reason (unchanged when no template matches)."""
    catalog = catalog or _default_catalog()
    for regex, zh in _FIXED_ZH:
        m = regex.match(reason.strip())
        if m:
            return zh.format(*m.groups())
    for regex, zh in _reason_templates(catalog):
        m = regex.match(reason.strip())
        if m:
            names = _signal_names_zh(catalog)  # a value that names a signal: its name
            values = {k: names.get(v) or _value_zh(v) for k, v in m.groupdict().items()}
            return _PLACEHOLDER.sub(lambda p, v=values: v.get(p[1], p[0]), zh)
    return reason


_NAMES: dict[int, dict[str, str]] = {}


def _signal_names_zh(catalog: Catalog) -> dict[str, str]:
    """Signal id -> its Chinese name: reasons that name another firm's hard trigger carry the
    trigger's id, which a Chinese reader should see as words. Built once per catalog, like
    the templates (a report translates every reason)."""
    if id(catalog) not in _NAMES:
        _NAMES[id(catalog)] = {s.id: s.name_zh for s in catalog.signals if s.name_zh}
    return _NAMES[id(catalog)]


@lru_cache(maxsize=1)
def _screening_templates() -> tuple[tuple[re.Pattern[str], str], ...]:
    """(English template regex, Chinese template) of every access rule with a Chinese text,
    most specific first (`assets/screening/access_rules.yml`)."""
    from assets.screening.rules import load_rules

    rules = load_rules()
    pairs = [(r.reason, r.reason_zh) for r in rules.all_rules if r.reason_zh]
    if rules.enhancement and rules.enhancement.government_fund.reason_zh:
        fund = rules.enhancement.government_fund
        pairs.append((fund.reason, fund.reason_zh))
    pairs.sort(key=lambda p: -len(_PLACEHOLDER.sub("", p[0])))
    return tuple((_template_regex(en), zh) for en, zh in pairs)


def screening_reason_zh(reason: str) -> str:
    """The Chinese form of a screening reason (an access rule's `reason_zh` with the
    application's values; the early-warning refer's quoted signal reasons translated too);
    unchanged when no rule matches."""
    for regex, zh in _screening_templates():
        m = regex.match(reason.strip())
        if m:
            values = {k: _value_zh(v) for k, v in m.groupdict().items()}
            if "early_warning_reasons" in values:
                values["early_warning_reasons"] = "；".join(
                    reason_zh(r) for r in m["early_warning_reasons"].split("; "))
            if "early_warning_tier" in values:
                values["early_warning_tier"] = word(m["early_warning_tier"], "zh")
            if "guarantor_tier" in values:
                values["guarantor_tier"] = word(m["guarantor_tier"], "zh")
            return _PLACEHOLDER.sub(lambda p, v=values: v.get(p[1], p[0]), zh)
    return reason


def reasons_in(reasons: Iterable[str], lang: str, catalog: Catalog | None = None) -> list[str]:
    items = [r for r in reasons if r]
    return [reason_zh(r, catalog) for r in items] if lang == "zh" else items


def action_in(action: object, tier: object, lang: str, catalog: Catalog | None = None) -> str:
    """The recommended action in the language: the catalog's Chinese action of the tier when the
    row carries the catalog's English one, else the row's text."""
    s = "" if action is None else str(action)
    if lang != "zh":
        return s
    catalog = catalog or _default_catalog()
    t = str(tier or "")
    if catalog.recommended_action.get(t) == s or not s:
        return catalog.recommended_action_zh.get(t, s)
    return s


def signal_names(lang: str, catalog: Catalog | None = None) -> dict[str, str]:
    catalog = catalog or _default_catalog()
    if lang == "zh":
        return {s.id: s.name_zh or s.id for s in catalog.signals}
    return {s.id: s.id.replace("_", " ") for s in catalog.signals}
