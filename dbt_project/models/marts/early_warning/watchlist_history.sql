-- depends_on: {{ ref('watchlist_refreshes') }}
{#- Watchlist history: one row per listed firm per refresh (as-of date D), persisted across
    refreshes. Re-running D replaces D's rows; --full-refresh never wipes it.

    Status against the previous refresh (the latest as-of date < D in watchlist_refreshes):
    new, escalated (amber -> red) or continuing. A listed firm that is now green stays listed
    (clearing, with its previous tier) until it has been clear for
    `watchlist_exit_after_clear_refreshes` refreshes running; first_flagged_date starts the
    episode. Tiers, reasons and the catalog values come from the early-warning engine. -#}
{{ config(
    materialized='incremental',
    unique_key='as_of_date',
    incremental_strategy='delete+insert',
    full_refresh=false,
    on_schema_change='fail',
) }}

{%- set n_exit = var('watchlist_exit_after_clear_refreshes') | int %}

with

{% if is_incremental() %}
prev as (

    select *
    from {{ this }}
    where as_of_date = (
        select max(as_of_date)
        from {{ ref('watchlist_refreshes') }}
        where as_of_date < {{ as_of_date() }}
    )

),
{% else %}
prev as (

    select
        cast(null as varchar) as enterprise_id,
        cast(null as varchar) as tier,
        cast(null as date)    as first_flagged_date,
        cast(null as integer) as clear_refreshes
    where false

),
{% endif %}

cur as (

    select *
    from {{ source('early_warning', 'enterprise_risk_profile') }}
    where as_of_date = {{ as_of_date() }}

),

listed as (

    select
        c.enterprise_id,
        c.tier,
        c.risk_score,
        c.signals,
        c.reasons,
        coalesce(p.first_flagged_date, {{ as_of_date() }}) as first_flagged_date,
        case
            when p.enterprise_id is null then 'new'
            when p.tier = 'amber' and c.tier = 'red' then 'escalated'
            else 'continuing'
        end                                                 as status,
        false                                               as clearing,
        0                                                   as clear_refreshes
    from cur as c
    left join prev as p using (enterprise_id)
    where c.tier in ('red', 'amber')

),

clearing as (

    select
        p.enterprise_id,
        p.tier,
        coalesce(c.risk_score, 0)                           as risk_score,
        coalesce(c.signals, []::varchar[])                  as signals,
        concat(
            'clearing: below the amber rule for ', p.clear_refreshes + 1, ' of ',
            {{ n_exit }}, ' refreshes needed to leave the watchlist',
            case when coalesce(c.reasons, '') <> '' then '; ' || c.reasons end
        )                                                   as reasons,
        p.first_flagged_date,
        'continuing'                                        as status,
        true                                                as clearing,
        p.clear_refreshes + 1                               as clear_refreshes
    from prev as p
    left join cur as c using (enterprise_id)
    where coalesce(c.tier, 'green') = 'green'
      and p.clear_refreshes + 1 < {{ n_exit }}

),

all_rows as (

    select * from listed
    union all by name
    select * from clearing

)

select
    cast({{ as_of_date() }} as date)                    as as_of_date,
    cast(enterprise_id as varchar)                      as enterprise_id,
    cast(tier as varchar)                               as tier,
    cast(risk_score as integer)                         as risk_score,
    cast(signals as varchar[])                          as signals,
    cast(reasons as varchar)                            as reasons,
    cast(first_flagged_date as date)                    as first_flagged_date,
    cast(status as varchar)                             as status,
    cast(case tier
        when 'red' then '{{ var("action_red") | replace("'", "''") }}'
        else '{{ var("action_amber") | replace("'", "''") }}'
    end as varchar)                                     as recommended_action,
    cast(clearing as boolean)                           as clearing,
    cast(clear_refreshes as integer)                    as clear_refreshes,
    cast('{{ var("catalog_version") | replace("'", "''") }}' as varchar) as catalog_version
from all_rows
