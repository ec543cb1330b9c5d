{#- Risk that travels, per enterprise x month end <= D (only rows with something to say):
    the guarantees a firm gives, and the firms around it (whose loans it guarantees, that
    guarantee its loans, in its guarantee circle, related parties) in default, past due over
    30 days, or on red at that month end. Point in time: guarantees open at the month end
    (int_network__guarantees_open), links valid at it, defaults on or before it, dpd at it.

    "On red" of another firm: it meets one of the catalog's red hard triggers (var
    `red_hard_triggers`: {signal id: SQL predicate over its feature row `f`}, passed by the
    Dagster step from assets/signals/catalog.yml, so no threshold lives here) on its own facts
    at the month end, and is not in default (those count as in default). A hard trigger lists
    a firm red whatever its PD or signal tier, so this is "red" under either engine without
    reading any decision: the features of a month end never depend on earlier decisions and
    the back-test stays one pass. The facts are the columns of the intermediates that feed
    fct_enterprise_month_end (loans, registry events, fund use), read for network firms only.

    The other firm is named by a label "name (credit code)" (enterprise names are not
    personal data), the one with the largest amount at stake (then the smallest code) when
    there are several.

    Incremental like the month-end facts it feeds (macros/incremental.sql, scope `facts`): a
    night writes the month ends from recompute_from on and every month end of the enterprises
    recomputed whole. A row outside that scope reads only inputs dated on or before its month
    end, and the "on red" facts of firms one guarantee or link away; those change before
    recompute_from only for firms recomputed whole, whose neighbours are in the scope
    (refresh_plan). So a night reads the "on red" facts (the costly part: 37M rows at 1M
    firms) of its month ends and of the scope's neighbours only. -#}
{{ config(materialized=month_end_materialization(), incremental_strategy='replace_from_month_end',
          on_schema_change='fail') }}
{%- set red_triggers = var('red_hard_triggers', {}) %}
{%- set partial = incremental_run() %}
{%- if recompute_nothing() %}
select * from {{ this }}
where false
{%- else %}

with month_ends as (

    select month_end from {{ ref('int_calendar__month_ends') }}

),

names as (

    select * from {{ ref('int_network__party_labels') }}

),

defaults as (

    select * from {{ ref('int_network__default_dates') }}

),

-- firms past due over 30 days at a month end and not (yet) in default
past_due as (

    select l.enterprise_id, l.month_end, max(l.dpd) as dpd_max
    from {{ ref('fct_loan_month_end') }} as l
    left join defaults as d
        on l.enterprise_id = d.enterprise_id and d.default_date <= l.month_end
    where l.month_end <= {{ as_of_date() }} and l.dpd > 30 and d.enterprise_id is null
    group by l.enterprise_id, l.month_end

),

edges as (

    select * from {{ ref('int_network__guarantee_edges') }}

),

given as (

    select enterprise_id, month_end, guarantees_given
    from {{ ref('int_network__guarantees_given') }}

),

-- the firm guarantees a defaulted firm's loans (its guarantee is likely to be called)
guaranteed_default as (

    {{ guarantee_parties('borrower', 'defaults', 'o.default_date <= e.month_end',
                         columns=['sum(e.amount) as amount']) }}

),

guaranteed_past_due as (

    {{ guarantee_parties('borrower', 'past_due', 'o.month_end = e.month_end') }}

),

-- a firm guaranteeing this firm's loans is in default (the credit enhancement is weak)
guarantor_default as (

    {{ guarantee_parties('guarantor', 'defaults', 'o.default_date <= e.month_end') }}

),

circles as (

    select month_end, enterprise_id, circle_id, circle_members
    from {{ ref('int_network__guarantee_circles') }}

),

circle_default as (

    select
        c.enterprise_id,
        c.month_end,
        count(*)                                                as parties,
        arg_min(coalesce(n.label, '(' || o.enterprise_id || ')'), o.enterprise_id) as party
    from circles as c
    inner join circles as o
        on c.month_end = o.month_end and c.circle_id = o.circle_id
            and c.enterprise_id <> o.enterprise_id
    inner join defaults as d on o.enterprise_id = d.enterprise_id and d.default_date <= c.month_end
    left join names as n on o.enterprise_id = n.enterprise_id
    group by c.enterprise_id, c.month_end

),

-- related parties, both directions of every link, at the month ends it is valid
links as (

    select * from {{ ref('int_network__related_parties') }}

),

-- other firms (of a guarantee or a link) meeting a red hard trigger at a month end, not in
-- default
on_red as (
{%- if red_triggers is mapping and red_triggers %}

    with network_firms as (
        select borrower_id as enterprise_id from edges
        union
        select guarantor_id as enterprise_id from edges
        union
        select related_id as enterprise_id from links
    ),
    {%- if partial %}

    -- the firms one guarantee or link away from those recomputed whole: their rows read these
    scope_neighbours as (
        select e.guarantor_id as enterprise_id
        from edges as e
        where e.borrower_id in (select re.enterprise_id from {{ recompute_scope()[1] }} as re)
        union
        select e.borrower_id
        from edges as e
        where e.guarantor_id in (select re.enterprise_id from {{ recompute_scope()[1] }} as re)
        union
        select l.related_id
        from links as l
        where l.enterprise_id in (select re.enterprise_id from {{ recompute_scope()[1] }} as re)
    ),
    {%- endif %}

    {#- every input read for network firms only: at 1M firms the facts are 37M rows each;
        an incremental night reads its scope and the scope's neighbours only #}
    {%- set in_network = 'enterprise_id in (select enterprise_id from network_firms)' %}
    {%- if partial %}
    {%- set in_network = in_network ~ ' and (' ~ recompute_condition('month_end', 'enterprise_id')
          ~ ' or enterprise_id in (select enterprise_id from scope_neighbours))' %}
    {%- endif %}
    facts as (
        select
            s.enterprise_id,
            s.month_end,
            l.* exclude (enterprise_id, month_end),
            ev.* exclude (enterprise_id, month_end),
            fu.* exclude (enterprise_id, month_end)
        from (select enterprise_id, month_end from {{ ref('int_enterprise__month_spine') }}
              where {{ in_network }}) as s
        inner join month_ends as m on s.month_end = m.month_end
        left join (select * from {{ ref('int_enterprise_month__loans') }}
                   where {{ in_network }}) as l
            on s.enterprise_id = l.enterprise_id and s.month_end = l.month_end
        left join (select * from {{ ref('int_enterprise_month__registry_events') }}
                   where {{ in_network }}) as ev
            on s.enterprise_id = ev.enterprise_id and s.month_end = ev.month_end
        left join (select * from {{ ref('int_enterprise_month__fund_use') }}
                   where {{ in_network }}) as fu
            on s.enterprise_id = fu.enterprise_id and s.month_end = fu.month_end
    )

    select f.enterprise_id, f.month_end, f.red_trigger
    from (
        select
            f.enterprise_id,
            f.month_end,
            coalesce(
                {%- for signal_id, predicate in red_triggers.items() %}
                case when {{ predicate }} then '{{ signal_id }}' end{{ ',' if not loop.last }}
                {%- endfor %}
            ) as red_trigger
        from facts as f
    ) as f
    left join defaults as d on f.enterprise_id = d.enterprise_id and d.default_date <= f.month_end
    where f.red_trigger is not null and d.enterprise_id is null
{%- else %}

    -- no red hard triggers given (dbt run by hand without the catalog's vars)
    select
        cast(null as varchar) as enterprise_id,
        cast(null as date) as month_end,
        cast(null as varchar) as red_trigger
    where false
{%- endif %}

),

guaranteed_on_red as (

    {{ guarantee_parties('borrower', 'on_red', 'o.month_end = e.month_end',
                         named=[('o.red_trigger', 'red_trigger')]) }}

),

guarantor_on_red as (

    {{ guarantee_parties('guarantor', 'on_red', 'o.month_end = e.month_end',
                         named=[('o.red_trigger', 'red_trigger')]) }}

),

related_on_red as (

    select
        l.enterprise_id,
        r.month_end,
        count(distinct l.related_id)                            as parties,
        arg_min(coalesce(n.label, '(' || l.related_id || ')'), l.related_id) as party,
        arg_min(r.red_trigger, l.related_id)                    as red_trigger
    from links as l
    inner join on_red as r
        on l.related_id = r.enterprise_id and l.valid_from <= r.month_end
            and (l.valid_to is null or l.valid_to > r.month_end)
    left join names as n on l.related_id = n.enterprise_id
    group by l.enterprise_id, r.month_end

),

related_default as (

    select
        l.enterprise_id,
        m.month_end,
        count(distinct l.related_id)                            as parties,
        arg_min(coalesce(n.label, '(' || l.related_id || ')'), l.related_id) as party
    from links as l
    inner join defaults as d on l.related_id = d.enterprise_id
    inner join month_ends as m
        on d.default_date <= m.month_end and l.valid_from <= m.month_end
            and (l.valid_to is null or l.valid_to > m.month_end)
    left join names as n on l.related_id = n.enterprise_id
    group by l.enterprise_id, m.month_end

),

related_past_due as (

    select
        l.enterprise_id,
        p.month_end,
        count(distinct l.related_id)                            as parties,
        arg_min(coalesce(n.label, '(' || l.related_id || ')'), l.related_id) as party
    from links as l
    inner join past_due as p
        on l.related_id = p.enterprise_id and l.valid_from <= p.month_end
            and (l.valid_to is null or l.valid_to > p.month_end)
    left join names as n on l.related_id = n.enterprise_id
    group by l.enterprise_id, p.month_end

),

keys as (

    select enterprise_id, month_end from given
    union
    select enterprise_id, month_end from guarantor_default
    union
    select enterprise_id, month_end from circles
    union
    select enterprise_id, month_end from related_default
    union
    select enterprise_id, month_end from related_past_due
    union
    select enterprise_id, month_end from guarantor_on_red
    union
    select enterprise_id, month_end from related_on_red

)
{%- if partial %}

, keys_in_scope as (

    select * from keys
    where {{ recompute_condition('month_end', 'enterprise_id') }}

)
{%- endif %}

select
    cast(k.enterprise_id as varchar)                          as enterprise_id,
    cast(k.month_end as date)                                 as month_end,
    cast(coalesce(g.guarantees_given, 0) as decimal(18, 2))   as guarantees_given,
    cast(coalesce(gd.parties, 0) as integer)                  as guaranteed_parties_in_default,
    cast(gd.party as varchar)                                 as guaranteed_party_in_default,
    cast(coalesce(gd.amount, 0) as decimal(18, 2))            as guarantees_given_in_default,
    cast(coalesce(gp.parties, 0) as integer)                  as guaranteed_parties_past_due,
    cast(gp.party as varchar)                                 as guaranteed_party_past_due,
    cast(coalesce(od.parties, 0) as integer)                  as own_guarantors_in_default,
    cast(od.party as varchar)                                 as own_guarantor_in_default,
    cast(c.circle_id as varchar)                              as guarantee_circle_id,
    cast(coalesce(c.circle_members, 0) as integer)            as guarantee_circle_members,
    cast(coalesce(cd.parties, 0) as integer)                  as circle_members_in_default,
    cast(cd.party as varchar)                                 as circle_member_in_default,
    cast(coalesce(rd.parties, 0) as integer)                  as related_parties_in_default,
    cast(rd.party as varchar)                                 as related_party_in_default,
    cast(coalesce(rp.parties, 0) as integer)                  as related_parties_past_due,
    cast(rp.party as varchar)                                 as related_party_past_due,
    cast(coalesce(gr.parties, 0) as integer)                  as guaranteed_parties_on_red,
    cast(gr.party as varchar)                                 as guaranteed_party_on_red,
    cast(gr.red_trigger as varchar)                           as guaranteed_party_red_trigger,
    cast(coalesce(orr.parties, 0) as integer)                 as own_guarantors_on_red,
    cast(orr.party as varchar)                                as own_guarantor_on_red,
    cast(orr.red_trigger as varchar)                          as own_guarantor_red_trigger,
    cast(coalesce(rr.parties, 0) as integer)                  as related_parties_on_red,
    cast(rr.party as varchar)                                 as related_party_on_red,
    cast(rr.red_trigger as varchar)                           as related_party_red_trigger
from {{ 'keys_in_scope' if partial else 'keys' }} as k
left join given as g on k.enterprise_id = g.enterprise_id and k.month_end = g.month_end
left join guaranteed_default as gd
    on k.enterprise_id = gd.enterprise_id and k.month_end = gd.month_end
left join guaranteed_past_due as gp
    on k.enterprise_id = gp.enterprise_id and k.month_end = gp.month_end
left join guarantor_default as od
    on k.enterprise_id = od.enterprise_id and k.month_end = od.month_end
left join circles as c on k.enterprise_id = c.enterprise_id and k.month_end = c.month_end
left join circle_default as cd
    on k.enterprise_id = cd.enterprise_id and k.month_end = cd.month_end
left join related_default as rd
    on k.enterprise_id = rd.enterprise_id and k.month_end = rd.month_end
left join related_past_due as rp
    on k.enterprise_id = rp.enterprise_id and k.month_end = rp.month_end
left join guaranteed_on_red as gr
    on k.enterprise_id = gr.enterprise_id and k.month_end = gr.month_end
left join guarantor_on_red as orr
    on k.enterprise_id = orr.enterprise_id and k.month_end = orr.month_end
left join related_on_red as rr
    on k.enterprise_id = rr.enterprise_id and k.month_end = rr.month_end
{%- endif %}
