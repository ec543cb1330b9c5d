{#- One row per enterprise per month end, point in time as of D.
    Starts at the month end of the enterprise's first data known by D (tax or utility period,
    registry event, loan disbursement or application; the establishment month when there is
    none), but no earlier than 24 months before the first calendar month end (enough history
    for the year-on-year windows of the first mart month). Ends at the last month end <= D.
    Dense (no gaps), so ROWS window frames and lag(n) mean "n months".
    Incremental like the month-end facts (macros/incremental.sql): a night writes the month
    ends from recompute_from on and every month end of the enterprises recomputed whole; a
    night with neither reads only those enterprises. The stored enterprise_key stays right:
    the keys change only with the registry's enterprises, and such a night recomputes every
    month end (refresh_plan.AFFECTED_FROM). -#}
{{ config(materialized=month_end_materialization(), incremental_strategy='replace_from_month_end', on_schema_change='fail') }}
{%- if recompute_nothing() %}
select * from {{ this }}
where false
{%- else %}
with as_of as (
    select {{ as_of_date() }} as d, {{ ef_last_month_end() }} as last_month_end
),

calendar as (
    select min(month_end) as cal_start from {{ ref('int_calendar__month_ends') }}
),

first_data as (
    select enterprise_id, min(month_end) as first_month_end
    from (
        select enterprise_id, period_end as month_end
        from {{ ref('stg_tax__filings') }}, as_of
        where period_end <= d{{ recompute_only_enterprises('enterprise_id', 'and') }}
        union all
        select enterprise_id, period_end
        from {{ ref('stg_utility__bills') }}, as_of
        where period_end <= d{{ recompute_only_enterprises('enterprise_id', 'and') }}
        union all
        select enterprise_id, {{ ef_month_end('event_date') }}
        from {{ ref('stg_registry__events') }}, as_of
        where event_date <= d{{ recompute_only_enterprises('enterprise_id', 'and') }}
        union all
        select enterprise_id, {{ ef_month_end('disbursement_date') }}
        from {{ ref('stg_core_banking__loans') }}, as_of
        where disbursement_date <= d{{ recompute_only_enterprises('enterprise_id', 'and') }}
        union all
        select enterprise_id, {{ ef_month_end('application_date') }}
        from {{ ref('stg_core_banking__loan_applications') }}, as_of
        where application_date <= d{{ recompute_only_enterprises('enterprise_id', 'and') }}
    ) as x
    group by enterprise_id
),

starts as (
    select
        e.enterprise_id,
        k.enterprise_key,
        e.industry_code,
        greatest(
            coalesce(f.first_month_end, {{ ef_month_end('e.established_date') }}),
            coalesce({{ ef_month_end('c.cal_start - interval 24 month') }}, date '1900-01-31')
        ) as start_month_end
    from {{ ref('stg_registry__enterprises') }} as e
    inner join {{ ref('int_enterprise__keys') }} as k on k.enterprise_id = e.enterprise_id
    left join first_data as f on f.enterprise_id = e.enterprise_id
    cross join calendar as c
    {{- recompute_only_enterprises('e.enterprise_id') }}
)

select
    s.enterprise_id,
    s.enterprise_key,
    s.industry_code,
    cast(last_day(m.m) as date) as month_end,
    cast(year(m.m) * 12 + month(m.m) as integer) as month_index
from starts as s
cross join as_of as a
cross join lateral (
    select unnest(generate_series(
        cast(date_trunc('month', {{ spine_first_month_end('s') }}) as timestamp),
        cast(date_trunc('month', a.last_month_end) as timestamp),
        interval 1 month
    )) as m
) as m
where s.start_month_end <= a.last_month_end
{%- endif %}
