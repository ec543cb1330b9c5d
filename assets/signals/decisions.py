"""Early-warning decisions per enterprise x month end: PD, tier, hard triggers and reasons.

One function decides for any set of month ends, so tonight's watchlist (the latest month end
on or before D) and the back-test (every month end of a window, in one pass) cannot drift
apart (docs: ../shared design notes, "two clocks"). Everything runs as DuckDB SQL over the
point-in-time feature marts; nothing row-level comes into Python.

- With a champion PD scorecard (`assets/scorecard/`): tier by the catalog's `pd_tiers` on the
  12-month PD, raised by `hard_triggers` (a defaulted loan, a dishonest-debtor listing, a
  revoked or cancelled licence, confirmed fund diversion) whatever the PD.
- Cold start (no champion: too few defaults in the bank's history): the catalog's expert tier
  rules on the signals, raised by the same hard triggers; `engine` says so on every row.
- Reasons: the scorecard features that add most to the firm's log-odds of default (in plain
  words with its own values), its hard triggers and its signals, one per topic (the strongest
  kept: "a loan has defaulted" and "a loan is 296 days past due" are one reason), at most
  `max_reasons`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import duckdb

from assets.core.metadata import table_exists
from assets.core.sql import date_literal, ident, text
from assets.signals.catalog import (
    _PLACEHOLDER,
    DIMENSIONS,
    FEATURE_MART,
    Catalog,
    dimension_score_sql,
    risk_score_sql,
    signal_predicate_sql,
    signal_reason_sql,
    tier_sql,
)

TRENDS_MART = "marts.fct_enterprise_month_end_trends"
NETWORK_PD_MART = "marts.fct_enterprise_month_end_network_pd"
#: Its columns besides the keys (the dbt model's contract; tests/test_network_pd.py checks)
NETWORK_PD_COLUMNS = {
    "guaranteed_parties_red_by_pd": "integer", "guaranteed_party_red_by_pd": "varchar",
    "guaranteed_party_pd": "double", "own_guarantors_red_by_pd": "integer",
    "own_guarantor_red_by_pd": "varchar", "own_guarantor_pd": "double",
    "related_parties_red_by_pd": "integer", "related_party_red_by_pd": "varchar",
    "related_party_pd": "double", "red_pd_cutoff": "double", "pd_model_version": "varchar",
}
SEVERITY_RANK = {"high": 0, "medium": 1, "low": 2}
EXPERT_ENGINE = "expert_catalog"


@dataclass(frozen=True)
class Engine:
    """Which engine decides: a champion scorecard (its version and features) or cold start."""

    model_version: str | None = None
    features: tuple = ()  # FeatureSpec of the model's features
    note: str = ""

    @property
    def name(self) -> str:
        if self.model_version:
            return f"pd_scorecard {self.model_version}"
        note = self.note.removeprefix("cold start:").strip()
        return f"{EXPERT_ENGINE} (cold start{': ' + note if note else ''})"


def current_engine(con: duckdb.DuckDBPyConnection) -> Engine:
    """The champion scorecard if one exists, else the expert catalog (cold start)."""
    from assets.scorecard.fit import current_model

    model = current_model(con) if table_exists(con, "marts", "pd_scorecard_models") else None
    if model is None:
        note = "no champion PD scorecard yet"
        if table_exists(con, "marts", "pd_scorecard_models"):
            row = con.execute(
                "select notes from marts.pd_scorecard_models where status = 'cold_start' "
                "order by fitted_at desc limit 1"
            ).fetchone()
            if row and row[0]:
                note = row[0]
        return Engine(note=note)
    return Engine(model_version=model.model_version, features=tuple(model.feature_specs))


# ---------------------------------------------------------------------------------------------
# Features


def features_sql(
    con: duckdb.DuckDBPyConnection,
    catalog: Catalog,
    *,
    end: date,
    start: date | None = None,
    latest_only: bool = False,
    enterprises_sql: str | None = None,
) -> str:
    """Feature rows (both feature marts side by side, and the other firms on red by their PD)
    for month ends in [start, end], or each firm's latest row on or before `end`, with the
    catalog's change columns (`<feature>_chg_<N>m`, the value minus the value N month ends
    earlier)."""
    changes = catalog.change_columns
    restrict = f"and f.enterprise_id in ({enterprises_sql})" if enterprises_sql else ""
    joins, cols = "", ""
    if table_exists(con, "marts", "fct_enterprise_month_end_trends"):
        joins = (
            f"left join {TRENDS_MART} as t "
            "on t.enterprise_id = f.enterprise_id and t.month_end = f.month_end"
        )
        cols = ", t.* exclude (enterprise_id, month_end)"
    if table_exists(con, "marts", "fct_enterprise_month_end_network_pd"):
        # other firms on red by their PD (the champion in use before the build): read beside
        # the features, never a scorecard candidate
        joins += (
            f" left join {NETWORK_PD_MART} as npd "
            "on npd.enterprise_id = f.enterprise_id and npd.month_end = f.month_end"
        )
        cols += ", npd.* exclude (enterprise_id, month_end)"
    else:  # not built (a warehouse of fact marts only): nobody is on red by a PD
        cols += "".join(f", cast(null as {t}) as {ident(c)}" for c, t in NETWORK_PD_COLUMNS.items())
    if changes:
        # the changes from a window over the key and the changed features only (a window
        # sorts every column it carries: over the whole row it took 20% longer at 1M)
        lookback = max(n for _, n in changes)
        lag_lower = (
            f"and f.month_end >= last_day({date_literal(start)} - interval {lookback} month)"
            if start is not None
            else ""
        )
        changed = "".join(f", f.{ident(feat)}" for feat in sorted({feat for feat, _ in changes}))
        lags = "".join(
            f", case when lag(month_end, {n}) over w = last_day(month_end - interval {n} month) "
            f"then {ident(feat)} - lag({ident(feat)}, {n}) over w end "
            f"as {ident(f'{feat}_chg_{n}m')}"
            for feat, n in changes
        )
        joins += f"""
            left join (
                select enterprise_id, month_end{lags}
                from (
                    select f.enterprise_id, f.month_end{changed}
                    from {FEATURE_MART} as f
                    where f.month_end <= {date_literal(end)} {lag_lower} {restrict}
                )
                window w as (partition by enterprise_id order by month_end)
            ) as chg on chg.enterprise_id = f.enterprise_id and chg.month_end = f.month_end"""
        cols += "".join(f", chg.{ident(f'{feat}_chg_{n}m')}" for feat, n in changes)
    lower = f"and f.month_end >= {date_literal(start)}" if start is not None else ""
    keep = (
        "qualify row_number() over (partition by f.enterprise_id order by f.month_end desc) = 1"
        if latest_only
        else ""
    )
    return f"""
        select f.*{cols}
        from {FEATURE_MART} as f {joins}
        where f.month_end <= {date_literal(end)} {lower} {restrict}
        {keep}"""


# ---------------------------------------------------------------------------------------------
# Signals per row


def signal_hits_rows_sql(catalog: Catalog, relation: str) -> str:
    """Every signal that fires on a row of `relation`: enterprise_id, month_end, signal_id,
    dimension, severity, stage, topic, reason, hard_tier (red/amber/NULL)."""
    parts = []
    for s in catalog.signals:
        hard = catalog.hard_triggers.get(s.id)
        parts.append(
            f"select f.enterprise_id, f.month_end, {text(s.id)} as signal_id, "
            f"{text(s.dimension)} as dimension, {text(s.severity)} as severity, "
            f"{text(s.stage)} as stage, {text(catalog.topic(s.id))} as topic, "
            f"{signal_reason_sql(s, 'f')} as reason, "
            f"{text(hard) if hard else 'cast(null as varchar)'} as hard_tier "
            f"from {relation} as f where {signal_predicate_sql(s, 'f')}"
        )
    return "\nunion all\n".join(parts)


# ---------------------------------------------------------------------------------------------
# Feature reasons


def _template_sql(template: str, value: str) -> str:
    """A feature reason template rendered with the firm's value (VARCHAR SQL)."""
    num = f"try_cast({value} as double)"
    pct = f"format('{{:.0f}}', abs({num}) * 100)"
    shown = (
        f"case when {num} is null then coalesce({value}, 'n/a') "
        f"when abs({num}) >= 1000 then format('{{:,.0f}}', {num}) "
        f"when {num} = round({num}) then format('{{:.0f}}', {num}) "
        f"else format('{{:.2f}}', {num}) end"
    )
    render = {
        "value": shown,
        "value_pct": pct,
        "value_change": f"case when {num} < 0 then 'down ' else 'up ' end || {pct} || '%'",
    }
    parts, pos = [], 0
    for m in _PLACEHOLDER.finditer(template):
        if m.start() > pos:
            parts.append(text(template[pos : m.start()]))
        parts.append(render[m.group(1)])
        pos = m.end()
    if pos < len(template):
        parts.append(text(template[pos:]))
    return "concat(" + ", ".join(parts) + ")"


def feature_reason_sql(catalog: Catalog, feature: str, value: str) -> tuple[str, str]:
    """(topic SQL, reason SQL) for a scorecard feature term; unknown features read generically."""
    whens_topic, whens_text = [], []
    for name, fr in catalog.feature_reasons.items():
        whens_topic.append(f"when {text(name)} then {text(fr.topic)}")
        shown = _template_sql(fr.reason, value)
        if fr.reason_zero:
            shown = (f"case when try_cast({value} as double) = 0 then {text(fr.reason_zero)} "
                     f"else {shown} end")
        if fr.reason_missing:
            shown = f"case when {value} is null then {text(fr.reason_missing)} else {shown} end"
        whens_text.append(f"when {text(name)} then {shown}")
    generic = f"concat(replace({feature}, '_', ' '), ' is ', coalesce({value}, 'missing'))"
    topic = f"case {feature} {' '.join(whens_topic)} else {feature} end"
    reason = f"case {feature} {' '.join(whens_text)} else {generic} end"
    return topic, reason


# ---------------------------------------------------------------------------------------------
# Decisions


def decisions_sql(
    con: duckdb.DuckDBPyConnection, catalog: Catalog, engine: Engine, features: str, hits: str
) -> str:
    """One decision per row of `features` (a relation), from its signal hits `hits` (a
    relation of `signal_hits_rows_sql`): enterprise_id, month_end, engine, model_version, pd,
    tier, listed, hard_triggers, signals, n_high/n_medium/n_low, the five dimension scores,
    risk_score (0-100, higher = riskier), reasons (text) and reason_list."""
    sev = "case h.severity when 'high' then 0 when 'medium' then 1 else 2 end"
    dims = ",\n".join(
        f"{dimension_score_sql(catalog, d, 'h.dimension', 'h.severity')} as {d}_score"
        for d in DIMENSIONS
    )
    signal_agg = f"""
        select f.enterprise_id, f.month_end,
            {dims},
            count(h.signal_id) filter (where h.severity = 'high')   as n_high,
            count(h.signal_id) filter (where h.severity = 'medium') as n_medium,
            count(h.signal_id) filter (where h.severity = 'low')    as n_low,
            coalesce(list(h.signal_id order by {sev}, h.signal_id)
                filter (where h.signal_id is not null), []::varchar[]) as signals,
            coalesce(list(h.signal_id order by h.signal_id)
                filter (where h.hard_tier is not null), []::varchar[]) as hard_triggers,
            max(case h.hard_tier when 'red' then 2 when 'amber' then 1 else 0 end) as hard_rank,
            list({{'rank': case when h.hard_tier is not null then 0.0 else 2.0 + {sev} end,
                   'topic': h.topic, 'text': h.reason}})
                filter (where h.signal_id is not null) as signal_reasons
        from {features} as f
        left join {hits} as h on h.enterprise_id = f.enterprise_id and h.month_end = f.month_end
        group by f.enterprise_id, f.month_end"""
    dim_cols = {d: f"s.{d}_score" for d in DIMENSIONS}
    if engine.model_version:
        from assets.scorecard.sql import score_sql

        scored = score_sql(
            con, engine.model_version, f"select * from {features}", engine.features,
            points_from_logit=catalog.min_reason_logit,
        )
        topic, reason = feature_reason_sql(catalog, "fp.feature", "fp.value")
        # feature_points come riskiest first: filter and word them in place (an unnest and a
        # GROUP BY back to the firm-month took 3.5 times as long at 1M)
        model_reasons = f"""
            select sc.enterprise_id, sc.month_end,
                list_transform(
                    list_filter(sc.feature_points,
                                lambda fp: fp.logit_contribution >= {catalog.min_reason_logit}),
                    lambda fp: {{'rank': 1.0 - fp.logit_contribution / 100.0,
                                 'topic': {topic}, 'text': {reason}}}) as model_reasons
            from scored as sc"""
        pd = "sc.pd"
        tier = (
            f"case when s.hard_rank = 2 or sc.pd >= {catalog.pd_tiers.red} then 'red' "
            f"when s.hard_rank = 1 or sc.pd >= {catalog.pd_tiers.amber} then 'amber' "
            "else 'green' end"
        )
        risk = "cast(least(100, greatest(0, round(100 * sc.pd))) as integer)"
        joins = (
            "left join scored as sc using (enterprise_id, month_end) "
            "left join model_reasons as mr using (enterprise_id, month_end)"
        )
        ctes = f"scored as ({scored}), model_reasons as ({model_reasons}),"
        all_reasons = "list_concat(coalesce(mr.model_reasons, []), coalesce(s.signal_reasons, []))"
    else:
        pd = "cast(null as double)"
        expert = tier_sql(catalog, "s.n_high", "s.n_medium", "s.n_low", "s.signals")
        tier = (
            f"case when s.hard_rank = 2 then 'red' when s.hard_rank = 1 and ({expert}) = 'green' "
            f"then 'amber' else {expert} end"
        )
        risk = risk_score_sql(catalog, dim_cols)
        joins, ctes = "", ""
        all_reasons = "coalesce(s.signal_reasons, [])"
    engine_name = text(engine.name)
    version = text(engine.model_version) if engine.model_version else "cast(null as varchar)"
    # One reason per topic: the best-ranked (hard trigger, then scorecard terms by weight,
    # then signals by severity), at most max_reasons, best first.
    merged = f"""
        list_transform(
            list_slice(
                list_sort(
                    list_transform(
                        list_distinct(list_transform({all_reasons}, lambda r: r.topic)),
                        lambda t: list_sort(list_filter({all_reasons}, lambda r: r.topic = t),
                                       'ASC')[1]
                    ), 'ASC'
                ), 1, {catalog.max_reasons}
            ), lambda r: r.text)"""
    return f"""
        with signal_agg as ({signal_agg}),
        {ctes}
        decided as (
            select s.enterprise_id, s.month_end,
                {engine_name} as engine, {version} as model_version,
                {pd} as pd, {tier} as tier,
                s.hard_triggers, s.signals, s.n_high, s.n_medium, s.n_low,
                {", ".join(f"cast(s.{d}_score as integer) as {d}_score" for d in DIMENSIONS)},
                {risk} as risk_score,
                {merged} as reason_list
            from signal_agg as s {joins}
        )
        select *, tier in ('red', 'amber') as listed,
            array_to_string(reason_list, '; ') as reasons
        from decided"""



#: Firm-month ends decided in one pass. The feature rows of a pass (with their look-back
#: rows and change windows) stay well inside the memory cap at this size; a bigger population
#: is decided in passes over buckets of firms (a decision reads only its own firm's rows).
DECISION_ROWS_PER_PASS = 1_000_000


def build_decision_history(
    con: duckdb.DuckDBPyConnection,
    catalog: Catalog,
    engine: Engine,
    *,
    start: date,
    end: date,
    population_sql: str | None = None,
    rows_per_pass: int | None = None,
) -> str:
    """Decide for every month end in [start, end] in one pass (the back-test); returns the
    name of a temp table with one decision per (enterprise_id, month_end) of the population
    (default: firms with a loan row at that month end, per marts.fct_enterprise_outcomes).
    Only the population's firms' features are read. Past `rows_per_pass` rows the firms are
    decided bucket by bucket (hash of enterprise_id), so memory stays bounded at any book
    size (`DECISION_ROWS_PER_PASS`)."""
    pop = population_sql or (
        "select enterprise_id, month_end from marts.fct_enterprise_outcomes "
        f"where month_end between {date_literal(start)} and {date_literal(end)}"
    )
    con.execute(
        "create or replace temp table _hist_population as "
        f"select distinct enterprise_id, month_end from ({pop}) where enterprise_id is not null"
    )
    (rows,) = con.execute("select count(*) from _hist_population").fetchone()
    per_pass = max(1, rows_per_pass or DECISION_ROWS_PER_PASS)
    passes = max(1, -(-rows // per_pass))
    con.execute("drop table if exists _hist_decisions")
    for bucket in range(passes):
        in_bucket = f"hash(enterprise_id) % {passes} = {bucket}" if passes > 1 else "true"
        feats = features_sql(
            con, catalog, end=end, start=start,
            enterprises_sql="select distinct enterprise_id from _hist_population "
            f"where {in_bucket}",
        )
        con.execute(
            "create or replace temp table _hist_features as "
            f"select f.* from ({feats}) as f semi join "
            f"(select * from _hist_population where {in_bucket}) as p "
            "on p.enterprise_id = f.enterprise_id and p.month_end = f.month_end"
        )
        con.execute(
            "create or replace temp table _hist_hits as "
            + signal_hits_rows_sql(catalog, "_hist_features")
        )
        decided = decisions_sql(con, catalog, engine, "_hist_features", "_hist_hits")
        con.execute(
            f"create temp table _hist_decisions as {decided}" if bucket == 0
            else f"insert into _hist_decisions by name {decided}"
        )
    con.execute("drop table if exists _hist_features; drop table if exists _hist_hits; "
                "drop table if exists _hist_population")
    return "_hist_decisions"
