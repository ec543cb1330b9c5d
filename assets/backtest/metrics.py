"""Back-test figures as DuckDB SQL over the staged population (no row reaches Python).

Each function reads the temporary tables that `assets.backtest.run` stages from the bank's own
warehouse (`POP`: population firm-months with decision and outcome; `DEFAULTERS`: firms that
default in the window horizon; `DEFAULTER_ROWS`: their decisions around the default) and
either returns a handful of numbers or creates a small temporary result table. At 24M firm-months
the only row-level work is a few scans and one GROUP BY pd, all inside DuckDB.

The definitions are documented in `assets.backtest.run` (module docstring) and in the marts'
column descriptions (`assets.backtest.run.TABLES`).
"""

from __future__ import annotations

from collections.abc import Sequence

import duckdb

from assets.core.sql import ident, literal, text

POP = "_bt_pop"
PD_GROUPS = "_bt_pd_groups"
LIST_ORDER_GROUPS = "_bt_list_order_groups"
DEFAULTERS = "_bt_defaulters"
DEFAULTER_ROWS = "_bt_defaulter_rows"
LEAD = "_bt_lead"

# Fixed calibration bands on pd: [low, high), the last one closed at 1.
PD_BANDS: tuple[tuple[float, float, str], ...] = (
    (0.0, 0.01, "0-1%"),
    (0.01, 0.02, "1-2%"),
    (0.02, 0.05, "2-5%"),
    (0.05, 0.10, "5-10%"),
    (0.10, 0.20, "10-20%"),
    (0.20, 0.50, "20-50%"),
    (0.50, 1.0, "50-100%"),
)
DEFAULT_CUTOFFS: tuple[float, ...] = (0.01, 0.02, 0.03, 0.05, 0.075, 0.10, 0.15, 0.20, 0.30)
WEAK_LIFT = 1.5
LEAD_TIME_LONG_MONTHS = 7
# The order an officer reads the watchlist in: red, then amber, then the rest, each by pd. A
# hard trigger (a defaulted loan, diversion, a revoked licence) lists a firm red whatever its
# pd, so this order, not pd alone, is what the engine ranks by. pd is in [0, 1), so adding the
# tier's rank keeps the tiers apart; a firm without pd sorts first within its tier.
LIST_ORDER = (
    "(CASE tier WHEN 'red' THEN 2 WHEN 'amber' THEN 1 ELSE 0 END + coalesce(pd, 0))"
)
# Shares below this are floored in PSI so an empty bin gives a large, finite term.
PSI_FLOOR = 1e-4


def within_12m_before(month_end: str, default_date: str) -> str:
    """SQL: month_end is one of the 12 month ends before the default (the same horizon as
    default_within_12m in fct_enterprise_outcomes)."""
    return (
        f"({month_end} < {default_date} "
        f"AND {default_date} <= last_day({month_end} + INTERVAL 12 MONTH))"
    )


def stage_pd_groups(con: duckdb.DuckDBPyConnection) -> None:
    """Firm-months per distinct pd (and per distinct list order) with their 6/12-month
    defaults: AUC, KS and the ROC are sums over these groups, and grouping ties is exactly
    the tie-averaged rank."""
    for table, score, where in (
        (PD_GROUPS, "pd", "pd IS NOT NULL"),
        (LIST_ORDER_GROUPS, LIST_ORDER, "tier IS NOT NULL"),
    ):
        con.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE {table} AS
            SELECT {score} AS pd,
                   count(*) AS n,
                   count(*) FILTER (WHERE default_within_6m) AS pos_6m,
                   count(*) FILTER (WHERE default_within_12m) AS pos_12m
            FROM {POP}
            WHERE {where}
            GROUP BY 1
            """
        )


def auc_ks_sql(groups: str, pos: str) -> str:
    """AUC (Mann-Whitney rank sum, ties averaged) and KS from a (pd, n, pos) group table.

    AUC = sum over pd groups of pos * (negatives with lower pd + half the negatives with the
    same pd) / (P * N), which equals the rank-sum formula with average ranks for ties. KS is
    the largest gap between the cumulative shares of bads and goods after each distinct pd.
    """
    return f"""
        WITH g AS (
            SELECT pd, CAST({pos} AS DOUBLE) AS pos, CAST(n - {pos} AS DOUBLE) AS neg
            FROM {groups}
        ),
        c AS (
            SELECT pos, neg,
                   coalesce(sum(neg) OVER (ORDER BY pd ROWS BETWEEN UNBOUNDED PRECEDING
                                           AND 1 PRECEDING), 0) AS neg_below,
                   sum(pos) OVER (ORDER BY pd ROWS UNBOUNDED PRECEDING) AS cum_pos,
                   sum(neg) OVER (ORDER BY pd ROWS UNBOUNDED PRECEDING) AS cum_neg,
                   sum(pos) OVER () AS p_total,
                   sum(neg) OVER () AS n_total
            FROM g
        )
        SELECT sum(pos * (neg_below + 0.5 * neg)) / nullif(any_value(p_total * n_total), 0),
               CASE WHEN any_value(p_total) > 0 AND any_value(n_total) > 0
                    THEN max(abs(cum_pos / p_total - cum_neg / n_total)) END
        FROM c
    """


def auc_ks(
    con: duckdb.DuckDBPyConnection, pos: str, groups: str = PD_GROUPS
) -> tuple[float | None, float | None]:
    """(AUC, KS) of pd (or, with LIST_ORDER_GROUPS, of the list order) against the outcome
    counted in column `pos` of the groups."""
    auc, ks = con.execute(auc_ks_sql(groups, pos)).fetchone()
    return auc, ks


def roc_sql(groups: str, pos: str, points: int) -> str:
    """`points` + 1 ROC points on an even false-positive-rate grid, computed in SQL.

    Thresholds run from the highest pd down; each distinct pd gives one (fpr, tpr) vertex. The
    vertex is put in grid bucket ceil(fpr * points) (integer arithmetic, no rounding drift)
    and the curve at grid point k/points is the best tpr reached with fpr <= k/points.
    """
    k = literal(int(points))
    return f"""
        WITH g AS (SELECT pd, {pos} AS pos, n - {pos} AS neg FROM {groups}),
        c AS (
            SELECT pd,
                   sum(pos) OVER w AS cum_pos, sum(neg) OVER w AS cum_neg,
                   sum(pos) OVER () AS p_total, sum(neg) OVER () AS n_total
            FROM g
            WINDOW w AS (ORDER BY pd DESC ROWS UNBOUNDED PRECEDING)
        ),
        b AS (
            SELECT CAST((cum_neg * {k} + n_total - 1) // n_total AS BIGINT) AS bucket,
                   max(cum_pos / p_total) AS tpr, min(pd) AS threshold
            FROM c
            WHERE p_total > 0 AND n_total > 0
            GROUP BY 1
        ),
        grid AS (SELECT range AS bucket FROM range(0, {k} + 1))
        SELECT CAST(grid.bucket AS DOUBLE) / {k} AS fpr,
               coalesce(max(b.tpr) OVER (ORDER BY grid.bucket ROWS UNBOUNDED PRECEDING), 0.0)
                   AS tpr,
               min(b.threshold) OVER (ORDER BY grid.bucket ROWS UNBOUNDED PRECEDING)
                   AS threshold
        FROM grid LEFT JOIN b USING (bucket)
        ORDER BY fpr
    """


def population_figures(con: duckdb.DuckDBPyConnection) -> dict[str, object]:
    """Counts, firm-month recall/precision and watchlist shares over the population."""
    cur = con.execute(
        f"""
        SELECT
            count(*) AS population_firm_months,
            count(DISTINCT enterprise_id) AS population_firms,
            count(*) FILTER (WHERE NOT has_decision) AS firm_months_without_decision,
            count(pd) AS scored_firm_months,
            count(*) FILTER (WHERE default_within_6m) AS defaults_6m,
            count(*) FILTER (WHERE default_within_12m) AS defaults_12m,
            count(*) FILTER (WHERE listed) AS listed_firm_months,
            avg(CAST(listed AS DOUBLE)) FILTER (WHERE default_within_6m) AS recall_6m,
            avg(CAST(listed AS DOUBLE)) FILTER (WHERE default_within_12m) AS recall_12m,
            avg(CAST(default_within_6m AS DOUBLE)) FILTER (WHERE listed) AS precision_listed_6m,
            avg(CAST(default_within_6m AS DOUBLE)) FILTER (WHERE tier = 'red')
                AS precision_red_6m,
            avg(CAST(default_within_6m AS DOUBLE)) FILTER (WHERE tier = 'amber')
                AS precision_amber_6m,
            avg(CAST(listed AS DOUBLE)) FILTER (WHERE NOT default_within_12m)
                AS performing_listed_share,
            avg(CAST(listed AS DOUBLE)) AS watchlist_book_share,
            count(*) FILTER (WHERE listed) / nullif(count(DISTINCT month_end), 0)
                AS watchlist_size_mean
        FROM {POP}
        """
    )
    names = [d[0] for d in cur.description]
    return dict(zip(names, cur.fetchone(), strict=True))


def firm_figures(con: duckdb.DuckDBPyConnection) -> dict[str, object]:
    """Firm-level recall, listed-while-current and the lead-time summary over DEFAULTERS."""
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE {LEAD} AS
        SELECT f.enterprise_id, f.default_date, f.listed_in_window,
               CASE WHEN min(r.month_end) FILTER (
                             WHERE r.listed AND {within_12m_before("r.month_end", "f.default_date")}
                         ) IS NOT NULL
                    THEN date_diff('month', min(r.month_end) FILTER (
                             WHERE r.listed AND {within_12m_before("r.month_end", "f.default_date")}
                         ), f.default_date)
                    WHEN coalesce(bool_or(r.listed AND r.month_end >= f.default_date), false)
                    THEN 0
               END AS lead_time_months,
               coalesce(bool_or(r.listed AND r.all_loans_current
                                AND {within_12m_before("r.month_end", "f.default_date")}), false)
                   AS listed_while_current
        FROM {DEFAULTERS} AS f
        LEFT JOIN {DEFAULTER_ROWS} AS r USING (enterprise_id)
        GROUP BY f.enterprise_id, f.default_date, f.listed_in_window
        """
    )
    long = literal(LEAD_TIME_LONG_MONTHS)
    cur = con.execute(
        f"""
        SELECT count(*) AS defaulting_firms,
               avg(CAST(listed_in_window AS DOUBLE)) AS recall_firm,
               avg(CAST(listed_while_current AS DOUBLE)) AS listed_while_current_share,
               count(lead_time_months) AS lead_time_n,
               count(*) FILTER (WHERE lead_time_months IS NULL) AS lead_time_never_listed,
               quantile_cont(lead_time_months, 0.5) AS lead_time_median,
               quantile_cont(lead_time_months, 0.25) AS lead_time_p25,
               quantile_cont(lead_time_months, 0.75) AS lead_time_p75,
               avg(CAST(lead_time_months >= {long} AS DOUBLE)) AS lead_time_share_ge_7m
        FROM {LEAD}
        """
    )
    names = [d[0] for d in cur.description]
    return dict(zip(names, cur.fetchone(), strict=True))


def lead_time_sql() -> str:
    """Distribution of lead times (months; NULL = never listed before default)."""
    return f"""
        SELECT lead_time_months, count(*) AS firms,
               count(*) / sum(count(*)) OVER () AS share_of_defaulters
        FROM {LEAD}
        GROUP BY lead_time_months
        ORDER BY lead_time_months NULLS LAST
    """


def signals_sql(signal_ids: Sequence[str]) -> str:
    """Per signal: hit rates among later defaulters and performing firm-months, lift,
    precision, and the share of defaulting firms on which it was (one of) the first to fire."""
    known = (
        "SELECT unnest([" + ", ".join(text(s) for s in signal_ids) + "]::VARCHAR[]) AS signal_id"
        if signal_ids
        else "SELECT NULL::VARCHAR AS signal_id WHERE false"
    )
    within = within_12m_before("month_end", "default_date")
    return f"""
        WITH fired AS (
            SELECT unnest(list_distinct(signals)) AS signal_id, default_within_12m AS y
            FROM {POP}
            WHERE signals IS NOT NULL
        ),
        agg AS (
            SELECT signal_id, count(*) AS fired_firm_months,
                   count(*) FILTER (WHERE y) AS fired_defaulter_firm_months
            FROM fired
            WHERE signal_id IS NOT NULL
            GROUP BY signal_id
        ),
        tot AS (
            SELECT count(*) FILTER (WHERE default_within_12m) AS d,
                   count(*) FILTER (WHERE NOT default_within_12m) AS p
            FROM {POP}
        ),
        fired_before AS (
            SELECT enterprise_id, month_end, signals
            FROM {DEFAULTER_ROWS}
            WHERE {within} AND len(signals) > 0
        ),
        first_month AS (
            SELECT enterprise_id, min(month_end) AS month_end FROM fired_before GROUP BY 1
        ),
        first_fired AS (
            SELECT signal_id, count(DISTINCT enterprise_id) AS firms
            FROM (
                SELECT b.enterprise_id, unnest(b.signals) AS signal_id
                FROM fired_before AS b JOIN first_month USING (enterprise_id, month_end)
            )
            GROUP BY signal_id
        ),
        ids AS (SELECT signal_id FROM agg UNION SELECT signal_id FROM ({known})),
        rates AS (
            SELECT ids.signal_id,
                   coalesce(agg.fired_firm_months, 0) AS fired_firm_months,
                   coalesce(agg.fired_defaulter_firm_months, 0) AS fired_defaulter_firm_months,
                   coalesce(agg.fired_defaulter_firm_months, 0) / nullif(tot.d, 0)
                       AS hit_rate_defaulters,
                   (coalesce(agg.fired_firm_months, 0)
                    - coalesce(agg.fired_defaulter_firm_months, 0)) / nullif(tot.p, 0)
                       AS hit_rate_performing,
                   agg.fired_defaulter_firm_months / nullif(agg.fired_firm_months, 0)
                       AS precision_12m,
                   coalesce(first_fired.firms, 0) / nullif(
                       (SELECT count(*) FROM {DEFAULTERS}), 0) AS first_fired_share
            FROM ids
            CROSS JOIN tot
            LEFT JOIN agg USING (signal_id)
            LEFT JOIN first_fired USING (signal_id)
        )
        SELECT *,
               hit_rate_defaulters / nullif(hit_rate_performing, 0) AS lift,
               CASE WHEN hit_rate_defaulters IS NULL THEN NULL
                    -- never fired on the population (performing firm-months): no lift to
                    -- judge. Hard triggers about firms already in default (a defaulted loan)
                    -- cannot fire there; a broken signal shows up in silent_signal_ids.
                    WHEN fired_firm_months = 0 THEN NULL
                    WHEN hit_rate_defaulters = 0 THEN true
                    WHEN hit_rate_performing IS NULL OR hit_rate_performing = 0 THEN false
                    ELSE hit_rate_defaulters / hit_rate_performing < {literal(WEAK_LIFT)}
               END AS weak
        FROM rates
        ORDER BY signal_id
    """


def _band_case(expr: str) -> tuple[str, str]:
    """CASE expressions giving the fixed band's order and label for a pd expression."""
    order = ["CASE"]
    label = ["CASE"]
    for i, (low, high, name) in enumerate(PD_BANDS, start=1):
        last = i == len(PD_BANDS)
        cond = f"{expr} >= {literal(low)} AND {expr} {'<=' if last else '<'} {literal(high)}"
        order.append(f"WHEN {cond} THEN {literal(i)}")
        label.append(f"WHEN {cond} THEN {text(name)}")
    return " ".join(order) + " END", " ".join(label) + " END"


def calibration_sql() -> str:
    """Predicted vs observed 12-month default rate by fixed pd band and by pd decile.

    Both come from the pd groups, so no firm-month is sorted: a decile is the tenth of the
    ranked firm-months in which a pd value's first firm-month falls (ties stay together)."""
    order, label = _band_case("pd")
    return f"""
        WITH fixed AS (
            SELECT 'fixed' AS band_kind, {order} AS band_order, {label} AS band,
                   pd, n, pos_12m
            FROM {PD_GROUPS}
        ),
        decile AS (
            SELECT 'decile' AS band_kind,
                   CAST(coalesce(sum(n) OVER (ORDER BY pd ROWS BETWEEN UNBOUNDED PRECEDING
                                              AND 1 PRECEDING), 0) * 10
                        // sum(n) OVER () + 1 AS INTEGER) AS band_order,
                   NULL::VARCHAR AS band, pd, n, pos_12m
            FROM {PD_GROUPS}
        ),
        banded AS (SELECT * FROM fixed UNION ALL SELECT * FROM decile)
        SELECT band_kind, band_order,
               coalesce(any_value(band), 'decile ' || band_order) AS band,
               min(pd) AS pd_min, max(pd) AS pd_max,
               sum(n) AS firm_months,
               sum(pd * n) / sum(n) AS mean_pd,
               sum(pos_12m) AS defaults_12m,
               sum(pos_12m) / sum(n) AS observed_rate_12m
        FROM banded
        WHERE band_order IS NOT NULL
        GROUP BY band_kind, band_order
        ORDER BY band_kind, band_order
    """


def cutoffs_sql(cutoffs: Sequence[float]) -> str:
    """What an amber cut-off on pd alone would have done: one scan buckets every firm-month by
    the highest cut-off it reaches, then each cut-off sums the buckets at or above it."""
    cuts = sorted(set(float(c) for c in cutoffs))
    level = (
        "CASE "
        + " ".join(
            f"WHEN pd >= {literal(c)} THEN {literal(i)}"
            for i, c in reversed(list(enumerate(cuts, start=1)))
        )
        + " ELSE 0 END"
    )
    values = ", ".join(f"({literal(i)}, {literal(c)})" for i, c in enumerate(cuts, start=1))
    return f"""
        WITH b AS (
            SELECT {level} AS level, count(*) AS n,
                   count(*) FILTER (WHERE NOT default_within_12m) AS performing,
                   count(*) FILTER (WHERE default_within_6m) AS pos_6m,
                   count(*) FILTER (WHERE default_within_12m) AS pos_12m
            FROM {POP}
            GROUP BY 1
        ),
        tot AS (
            SELECT sum(n) AS n, sum(performing) AS performing, sum(pos_6m) AS pos_6m,
                   sum(pos_12m) AS pos_12m,
                   (SELECT count(DISTINCT month_end) FROM {POP}) AS month_ends
            FROM b
        ),
        cut(level, cutoff) AS (VALUES {values}),
        listed AS (
            SELECT cut.level, cut.cutoff,
                   coalesce(sum(b.n), 0) AS n, coalesce(sum(b.performing), 0) AS performing,
                   coalesce(sum(b.pos_6m), 0) AS pos_6m, coalesce(sum(b.pos_12m), 0) AS pos_12m
            FROM cut LEFT JOIN b ON b.level >= cut.level
            GROUP BY cut.level, cut.cutoff
        )
        SELECT l.cutoff,
               l.n AS listed_firm_months,
               l.performing / nullif(t.performing, 0) AS performing_listed_share,
               l.pos_6m / nullif(t.pos_6m, 0) AS recall_6m,
               l.pos_12m / nullif(t.pos_12m, 0) AS recall_12m,
               l.pos_6m / nullif(l.n, 0) AS precision_6m,
               l.pos_12m / nullif(l.n, 0) AS precision_12m,
               l.n / nullif(t.n, 0) AS watchlist_book_share,
               l.n / nullif(t.month_ends, 0) AS watchlist_size_mean
        FROM listed AS l CROSS JOIN tot AS t
        ORDER BY l.cutoff
    """


def psi_sql(actual: str, expected: str) -> str:
    """PSI per subject from two (subject, bin, share) relations, bins missing on one side
    counting as PSI_FLOOR: sum((a - e) * ln(a / e))."""
    floor = literal(PSI_FLOOR)
    return f"""
        SELECT subject, sum((a_share - e_share) * ln(a_share / e_share)) AS psi, count(*) AS bins
        FROM (
            SELECT subject,
                   greatest(coalesce(a.share, 0), {floor}) AS a_share,
                   greatest(coalesce(e.share, 0), {floor}) AS e_share
            FROM ({actual}) AS a
            FULL OUTER JOIN ({expected}) AS e USING (subject, bin)
        )
        GROUP BY subject
    """


def feature_psi_sql(decisions: str, bins_table: str, model_version: str) -> str:
    """PSI of each model feature: bin shares of the window population (from feature_points)
    against the scorecard's train_share for the same model version."""
    actual = f"""
        SELECT subject, bin, count(*) / sum(count(*)) OVER (PARTITION BY subject) AS share
        FROM (
            SELECT struct_extract(fp, 'feature') AS subject,
                   CAST(struct_extract(fp, 'bin_id') AS VARCHAR) AS bin
            FROM (
                SELECT unnest(d.feature_points) AS fp
                FROM {decisions} AS d
                JOIN {POP} AS p
                  ON p.enterprise_id = d.enterprise_id AND p.month_end = d.month_end
            )
        )
        WHERE subject IN (SELECT feature FROM {bins_table}
                          WHERE model_version = {text(model_version)})
        GROUP BY subject, bin
    """
    expected = f"""
        SELECT feature AS subject, CAST(bin_id AS VARCHAR) AS bin,
               CAST(train_share AS DOUBLE) AS share
        FROM {bins_table}
        WHERE model_version = {text(model_version)}
    """
    return psi_sql(actual, expected)


def score_bin_case(edges: Sequence[float]) -> str:
    """Bin number of pd given sorted cut edges: bin i holds edge[i-1] < pd <= edge[i]."""
    if not edges:
        return "1"
    whens = " ".join(f"WHEN pd <= {literal(e)} THEN {literal(i)}" for i, e in enumerate(edges))
    return f"CASE {whens} ELSE {literal(len(edges))} END"


def score_psi_sql(reference: str, edges: Sequence[float]) -> str:
    """PSI of pd in the window population against the reference rows, on the reference's
    decile edges."""
    case = score_bin_case(edges)

    def shares(rel: str) -> str:
        return (
            f"SELECT 'pd' AS subject, {case} AS bin, "
            f"count(*) / sum(count(*)) OVER () AS share FROM {rel} WHERE pd IS NOT NULL "
            "GROUP BY 2"
        )

    return psi_sql(shares(POP), shares(reference))


def quoted(name: str) -> str:
    """A schema-qualified name with each part quoted."""
    return ".".join(ident(p) for p in name.split("."))
