{#- Another firm on red by its PD, per enterprise x month end <= D (only rows with something
    to say): the firms whose loans it guarantees, that guarantee its loans, or related to it
    (links valid at the month end, either direction) whose 12-month PD from the champion PD
    scorecard, applied to that firm's own feature row at the same month end, reaches the red
    tier's cut-off, while that firm is neither in default (counted in the *_in_default
    features) nor on red by a hard trigger (counted in the *_on_red features of
    int_enterprise_month__network, so one firm is not counted twice).

    The champion is the one stored in the warehouse when the dbt step starts, i.e. the model
    in use, fitted before this build: the Dagster step stores its scoring SQL
    (assets.scorecard.fit.champion_pd_sql, the same score_sql the engine uses) in
    main.dbt_pd_champion (macro pd_champion_sql), and passes the red cut-off (catalog
    pd_tiers.red) as the var `red_pd_cutoff`, so no threshold and no second scoring lives
    here. The scorecard's tables are therefore read
    directly, not as a dbt source: a source would order this model after this run's fit.
    No champion (cold start, first build): the SQL is empty and this model has no rows.

    Not circular: the scorecard never takes these columns as candidates (its spec rejects
    them) and scores only fct_enterprise_month_end and its trends, which do not read this
    model. The engine and the back-test read this model beside the feature marts
    (assets.signals.decisions.features_sql), so both see the same values at every month end.

    Incremental (scope `network` of macros/incremental.sql): a night recomputes the month
    ends the facts recompute, and every month end of the firms the facts recompute whole and
    of their neighbours (a firm's row reads its neighbours' features); every row after a new
    champion. Only the edges and links with an end in that scope are read, so only the
    neighbours they name are scored; the strategy keeps the rows in scope. -#}
{{ config(materialized=month_end_materialization(),
          incremental_strategy='replace_network_month_end', on_schema_change='fail') }}
-- the lineage does not depend on whether a champion is stored:
-- depends_on: {{ ref('fct_enterprise_month_end') }}
-- depends_on: {{ ref('fct_enterprise_month_end_trends') }}
-- depends_on: {{ ref('int_network__default_dates') }}
{%- set pd_sql = pd_champion_sql() %}
{%- set red_triggers = var('red_hard_triggers', {}) %}
{%- set cutoff = var('red_pd_cutoff', 1) %}

{%- if recompute_nothing('network') %}
select * from {{ this }}
where false
{%- else %}
{%- set partial = incremental_run() %}
with month_ends as (

    select month_end from {{ ref('int_calendar__month_ends') }}

),

names as (

    select * from {{ ref('int_network__party_labels') }}

),

edges as (

    select e.* from {{ ref('int_network__guarantee_edges') }} as e
    {%- if partial %}
    where {{ recompute_condition('e.month_end', 'e.borrower_id', 'network') }}
        or {{ recompute_condition('e.month_end', 'e.guarantor_id', 'network') }}
    {%- endif %}

),

links as (

    select distinct l.enterprise_id, l.related_id, m.month_end
    from {{ ref('int_network__related_parties') }} as l
    inner join month_ends as m
        on l.valid_from <= m.month_end and (l.valid_to is null or l.valid_to > m.month_end)
    {%- if partial %}
    where {{ recompute_condition('m.month_end', 'l.enterprise_id', 'network') }}
    {%- endif %}

),

red_by_pd as (
{%- if pd_sql %}

    -- the firms whose PD someone around them reads, at the month ends they are read
    with others as (
        select borrower_id as enterprise_id, month_end from edges
        union
        select guarantor_id as enterprise_id, month_end from edges
        union
        select related_id as enterprise_id, month_end from links
    ),

    -- their own feature rows, point in time (the scorecard's relation: both feature marts)
    champion_features as (
        select f.*, t.* exclude (enterprise_id, month_end)
        from {{ ref('fct_enterprise_month_end') }} as f
        inner join others as o on f.enterprise_id = o.enterprise_id and f.month_end = o.month_end
        left join {{ ref('fct_enterprise_month_end_trends') }} as t
            on f.enterprise_id = t.enterprise_id and f.month_end = t.month_end
    ),

    defaults as (
        select * from {{ ref('int_network__default_dates') }}
    ),

    scored as (
        {{ pd_sql }}  -- noqa: PRS
    )

    select s.enterprise_id, s.month_end, s.pd, s.model_version
    from scored as s
    inner join champion_features as f
        on s.enterprise_id = f.enterprise_id and s.month_end = f.month_end
    left join defaults as d on s.enterprise_id = d.enterprise_id and d.default_date <= s.month_end
    where s.pd >= {{ cutoff }}
        and d.enterprise_id is null
    {%- for signal_id, predicate in (red_triggers.items() if red_triggers is mapping else []) %}
        and not {{ predicate }}
    {%- endfor %}
{%- else %}

    -- no champion PD scorecard stored before this build (cold start, or dbt by hand)
    select
        cast(null as varchar) as enterprise_id,
        cast(null as date) as month_end,
        cast(null as double) as pd,
        cast(null as varchar) as model_version
    where false
{%- endif %}

),

guaranteed_red as (

    {{ guarantee_parties('borrower', 'red_by_pd', 'o.month_end = e.month_end',
                         rank='(e.amount, o.pd)',
                         named=[('o.pd', 'party_pd')],
                         columns=['any_value(o.model_version) as model_version']) }}

),

guarantor_red as (

    {{ guarantee_parties('guarantor', 'red_by_pd', 'o.month_end = e.month_end',
                         rank='(e.amount, o.pd)',
                         named=[('o.pd', 'party_pd')],
                         columns=['any_value(o.model_version) as model_version']) }}

),

related_red as (

    select
        l.enterprise_id,
        l.month_end,
        count(distinct l.related_id)                                        as parties,
        first(coalesce(n.label, '(' || l.related_id || ')') order by r.pd desc, l.related_id asc)
                                                                            as party,
        max(r.pd)                                                           as party_pd,
        any_value(r.model_version)                                          as model_version
    from links as l
    inner join red_by_pd as r on l.related_id = r.enterprise_id and l.month_end = r.month_end
    left join names as n on l.related_id = n.enterprise_id
    group by l.enterprise_id, l.month_end

),

keys as (

    select enterprise_id, month_end from guaranteed_red
    union
    select enterprise_id, month_end from guarantor_red
    union
    select enterprise_id, month_end from related_red

)

select
    cast(k.enterprise_id as varchar)                                as enterprise_id,
    cast(k.month_end as date)                                       as month_end,
    cast(coalesce(gr.parties, 0) as integer)                        as guaranteed_parties_red_by_pd,
    cast(gr.party as varchar)                                       as guaranteed_party_red_by_pd,
    cast(gr.party_pd as double)                                     as guaranteed_party_pd,
    cast(coalesce(og.parties, 0) as integer)                        as own_guarantors_red_by_pd,
    cast(og.party as varchar)                                       as own_guarantor_red_by_pd,
    cast(og.party_pd as double)                                     as own_guarantor_pd,
    cast(coalesce(rr.parties, 0) as integer)                        as related_parties_red_by_pd,
    cast(rr.party as varchar)                                       as related_party_red_by_pd,
    cast(rr.party_pd as double)                                     as related_party_pd,
    cast({{ cutoff }} as double)                                    as red_pd_cutoff,
    cast(coalesce(gr.model_version, og.model_version, rr.model_version) as varchar)
        as pd_model_version
from keys as k
left join guaranteed_red as gr on k.enterprise_id = gr.enterprise_id and k.month_end = gr.month_end
left join guarantor_red as og on k.enterprise_id = og.enterprise_id and k.month_end = og.month_end
left join related_red as rr on k.enterprise_id = rr.enterprise_id and k.month_end = rr.month_end
{%- endif %}
