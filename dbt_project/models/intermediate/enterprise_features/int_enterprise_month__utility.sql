{#- Utility features per enterprise per month end. At month end me: bills whose period ended
    on or before me; a bill counts as paid only from its paid_date (<= me, <= D). Due date of
    a bill (contract silent): period_end + 20 days; it is late when unpaid at the due date,
    which is known from due + 1 day (month end of period_end + 21). -#}
{{ config(materialized=month_end_materialization(), incremental_strategy='replace_from_month_end', on_schema_change='fail') }}
{%- if recompute_nothing() %}
select * from {{ this }}
where false
{%- else %}
{%- set utilities = ['electricity', 'water', 'gas'] -%}
with spine as (
    select enterprise_id, enterprise_key, month_end, month_index from {{ ref('int_enterprise__month_spine') }}
    {{- recompute_only_enterprises('enterprise_id') }}
),

-- the enterprises this build computes, with their integer key (int_enterprise__keys): the
-- sources are keyed by it from here to the window, which is far faster than the credit code
keys as (
    select enterprise_id, enterprise_key from {{ ref('int_enterprise__keys') }}
    {{- recompute_only_enterprises('enterprise_id') }}
),

bills as (
    select
        k.enterprise_key, b.period_end, b.utility, b.consumption, b.amount_billed, b.amount_paid,
        b.paid_date
    from {{ ref('stg_utility__bills') }} as b
    inner join keys as k on k.enterprise_id = b.enterprise_id
    where b.period_end <= {{ as_of_date() }}
),

billed as (
    select
        enterprise_key,
        period_end as month_end,
        {%- for u in utilities %}
        sum(case when utility = '{{ u }}' then consumption end) as {{ u }}_1m,
        {%- endfor %}
        sum(amount_billed) as billed
    from bills
    group by 1, 2
),

paid as (
    select
        enterprise_key,
        greatest(period_end, {{ ef_month_end('paid_date') }}) as month_end,
        sum(amount_paid) as paid
    from bills
    where paid_date is not null and paid_date <= {{ as_of_date() }}
    group by 1, 2
),

-- overdue: a bill enters once its due date (period_end + 20) has passed, i.e. at the month end
-- of period_end + 21; its payment counts from then or from the month end of paid_date
overdue_billed as (
    select enterprise_key, {{ ef_month_end('period_end + 21') }} as month_end,
        sum(amount_billed) as billed
    from bills
    group by 1, 2
),

overdue_paid as (
    select
        enterprise_key,
        greatest({{ ef_month_end('period_end + 21') }}, {{ ef_month_end('paid_date') }}) as month_end,
        sum(amount_paid) as paid
    from bills
    where paid_date is not null and paid_date <= {{ as_of_date() }}
    group by 1, 2
),

late as (
    select
        enterprise_key,
        {{ ef_month_end('period_end + 21') }} as month_end,
        count(*) as late_bills
    from bills
    where amount_billed > 0
      and (paid_date is null or paid_date > period_end + 20)
      and period_end + 21 <= {{ as_of_date() }}
    group by 1, 2
),

base as (
    select
        s.enterprise_id,
        s.enterprise_key,
        s.month_end,
        s.month_index,
        {%- for u in utilities %}
        b.{{ u }}_1m,
        {%- endfor %}
        case when month(s.month_end) not in (1, 2) then b.electricity_1m end as electricity_1m_xcny,
        coalesce(b.billed, 0)     as billed,
        coalesce(p.paid, 0)       as paid,
        coalesce(l.late_bills, 0) as late_bills,
        coalesce(ob.billed, 0) - coalesce(op.paid, 0) as overdue_delta
    from spine as s
    left join billed as b on b.enterprise_key = s.enterprise_key and b.month_end = s.month_end
    left join paid as p on p.enterprise_key = s.enterprise_key and p.month_end = s.month_end
    left join late as l on l.enterprise_key = s.enterprise_key and l.month_end = s.month_end
    left join overdue_billed as ob on ob.enterprise_key = s.enterprise_key and ob.month_end = s.month_end
    left join overdue_paid as op on op.enterprise_key = s.enterprise_key and op.month_end = s.month_end
),

-- one window pass: frames "n preceding" over the dense spine are "n months back";
-- "14 preceding .. 12 preceding" is the same 3-month window a year earlier
w1 as (
    select
        *,
        {%- for u in utilities %}
        sum({{ u }}_1m) over (wk rows between 2 preceding and current row)    as {{ u }}_3m,
        count({{ u }}_1m) over (wk rows between 2 preceding and current row)  as {{ u }}_n3,
        sum({{ u }}_1m) over (wk rows between 14 preceding and 12 preceding)  as {{ u }}_3m_py,
        count({{ u }}_1m) over (wk rows between 14 preceding and 12 preceding) as {{ u }}_n3_py,
        avg({{ u }}_1m) over (wk rows between 2 preceding and current row)    as {{ u }}_avg3,
        avg({{ u }}_1m) over (wk rows between 11 preceding and current row)   as {{ u }}_avg12,
        count({{ u }}_1m) over (wk rows between 11 preceding and current row) as {{ u }}_n12,
        {%- endfor %}
        sum(electricity_1m) over (wk rows between 12 preceding and 12 preceding) as electricity_1m_py,
        sum(electricity_1m_xcny) over (wk rows between 2 preceding and current row)    as electricity_3m_xcny,
        count(electricity_1m_xcny) over (wk rows between 2 preceding and current row)  as electricity_n3_xcny,
        sum(electricity_1m_xcny) over (wk rows between 14 preceding and 12 preceding)  as electricity_3m_xcny_py,
        count(electricity_1m_xcny) over (wk rows between 14 preceding and 12 preceding) as electricity_n3_xcny_py,
        sum(billed - paid) over (wk rows between unbounded preceding and current row) as utility_arrears,
        sum(overdue_delta) over (wk rows between unbounded preceding and current row) as utility_arrears_overdue,
        sum(late_bills) over (wk rows between 5 preceding and current row)  as utility_late_payments_6m
    from base
    window wk as (partition by enterprise_key order by month_end)
),

-- consecutive months of electricity YoY decline ending at the month end: months since the
-- last month that was not a decline (the first 12 spine months never are: no prior year)
w2 as (
    select
        *,
        month_index - max(case when electricity_1m < electricity_1m_py then null else month_index end)
            over (partition by enterprise_key order by month_end
                  rows between unbounded preceding and current row) as elec_yoy_decline_streak
    from w1
)

select
    enterprise_id,
    month_end,
    {%- for u in utilities %}
    cast({{ u }}_3m as decimal(18, 6))    as {{ u }}_3m,
    cast({{ u }}_3m_py as decimal(18, 6)) as {{ u }}_3m_py,
    {{ ef_growth(u ~ '_3m', u ~ '_3m_py', u ~ '_n3 = 3 and ' ~ u ~ '_n3_py = 3') }} as {{ u }}_3m_yoy,
    case when {{ u }}_n3 = 3 and {{ u }}_n12 = 12
        then {{ ef_ratio(u ~ '_avg3', u ~ '_avg12') }} end                       as {{ u }}_3m_vs_12m_avg,
    {%- endfor %}
    {{ ef_growth('electricity_3m_xcny', 'electricity_3m_xcny_py',
                 'electricity_n3_xcny = ' ~ ef_non_cny_months_3m('month_end')
                 ~ ' and electricity_n3_xcny_py = ' ~ ef_non_cny_months_3m('month_end')) }} as electricity_3m_yoy_ex_cny,
    cast(elec_yoy_decline_streak as integer)  as electricity_yoy_decline_months,
    cast(utility_arrears as decimal(18, 2))   as utility_arrears,
    cast(utility_arrears_overdue as decimal(18, 2)) as utility_arrears_overdue,
    cast(utility_late_payments_6m as integer) as utility_late_payments_6m
from w2
{%- endif %}
