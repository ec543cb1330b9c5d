{#- One row per enterprise per month end, point in time as of D.
    Starts at the month end of the enterprise's first data known by D (tax or utility period,
    registry event, loan disbursement or application; the establishment month when there is
    none), but no earlier than 24 months before the first calendar month end (enough history
    for the year-on-year windows of the first mart month). Ends at the last month end <= D.
    Dense (no gaps), so ROWS window frames and lag(n) mean "n months". -#}
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
        where period_end <= d
        union all
        select enterprise_id, period_end
        from {{ ref('stg_utility__bills') }}, as_of
        where period_end <= d
        union all
        select enterprise_id, {{ ef_month_end('event_date') }}
        from {{ ref('stg_registry__events') }}, as_of
        where event_date <= d
        union all
        select enterprise_id, {{ ef_month_end('disbursement_date') }}
        from {{ ref('stg_core_banking__loans') }}, as_of
        where disbursement_date <= d
        union all
        select enterprise_id, {{ ef_month_end('application_date') }}
        from {{ ref('stg_core_banking__loan_applications') }}, as_of
        where application_date <= d
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
        cast(date_trunc('month', s.start_month_end) as timestamp),
        cast(date_trunc('month', a.last_month_end) as timestamp),
        interval 1 month
    )) as m
) as m
where s.start_month_end <= a.last_month_end
