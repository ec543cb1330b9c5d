{#- Tax features per enterprise per month end. At month end me only tax rows whose period
    ended on or before me (and D) are used; the rating is the latest of a year before
    year(me). Windows are ROWS frames over the dense month spine (n rows = n months). -#}
{{ config(materialized=month_end_materialization(), incremental_strategy='replace_from_month_end', on_schema_change='fail') }}
{%- if recompute_nothing() %}
select * from {{ this }}
where false
{%- else %}
with spine as (
    select enterprise_id, enterprise_key, month_end from {{ ref('int_enterprise__month_spine') }}
    {{- recompute_only_enterprises('enterprise_id') }}
),

-- the enterprises this build computes, with their integer key (int_enterprise__keys): the
-- sources are keyed by it from here to the window, which is far faster than the credit code
keys as (
    select enterprise_id, enterprise_key from {{ ref('int_enterprise__keys') }}
    {{- recompute_only_enterprises('enterprise_id') }}
),

filings as (
    select k.enterprise_key, f.period_end, f.tax_type, f.taxable_revenue, f.tax_payable, f.tax_paid
    from {{ ref('stg_tax__filings') }} as f
    inner join keys as k on k.enterprise_id = f.enterprise_id
    where f.period_end <= {{ as_of_date() }}
),

vat as (
    select enterprise_key, period_end as month_end, sum(taxable_revenue) as revenue
    from filings
    where tax_type = 'vat'
    group by 1, 2
),

first_vat as (
    select enterprise_key, min(month_end) as first_vat_month_end
    from vat
    group by 1
),

-- per period: the arrears it adds, and its quarterly corporate income tax filing (nothing
-- payable means no taxable profit that quarter)
period_totals as (
    select
        enterprise_key,
        period_end                                   as month_end,
        sum(tax_payable - tax_paid)                  as arrears_delta,
        max(case when tax_type = 'cit' then 1 else 0 end) as cit_filed,
        max(case when tax_type = 'cit' then case when tax_payable = 0 then 1 else 0 end end)
                                                     as cit_nil_payable
    from filings
    group by 1, 2
),

base as (
    select
        s.enterprise_key,
        s.enterprise_id,
        s.month_end,
        v.revenue                                    as revenue_1m,
        case when month(s.month_end) not in (1, 2) then v.revenue end as revenue_1m_xcny,
        cast(v.enterprise_key is not null as integer) as vat_filed,
        -- an expected VAT filing is missing: filed for an earlier period, none for this one
        case when v.enterprise_key is null and s.month_end > f.first_vat_month_end
            then 1 else 0 end                        as vat_missing,
        coalesce(a.arrears_delta, 0)                 as arrears_delta,
        coalesce(a.cit_filed, 0)                     as cit_filed,
        a.cit_nil_payable
    from spine as s
    left join vat as v
        on v.enterprise_key = s.enterprise_key and v.month_end = s.month_end
    left join first_vat as f
        on f.enterprise_key = s.enterprise_key
    left join period_totals as a
        on a.enterprise_key = s.enterprise_key and a.month_end = s.month_end
),

-- one window pass: frames "n preceding" over the dense spine are "n months back";
-- "14 preceding .. 12 preceding" is the same 3-month window a year earlier
w3 as (
    select
        enterprise_key,
        enterprise_id,
        month_end,
        revenue_1m,
        sum(revenue_1m) over (wk rows between 2 preceding and current row)   as revenue_3m,
        sum(revenue_1m) over (wk rows between 5 preceding and current row)   as revenue_6m,
        sum(revenue_1m) over (wk rows between 11 preceding and current row)  as revenue_12m,
        sum(vat_filed) over (wk rows between 11 preceding and current row)   as vat_filed_12m,
        sum(revenue_1m) over (wk rows between 12 preceding and 12 preceding) as revenue_1m_py,
        sum(revenue_1m) over (wk rows between 14 preceding and 12 preceding) as revenue_3m_py,
        sum(revenue_1m) over (wk rows between 17 preceding and 12 preceding) as revenue_6m_py,
        sum(revenue_1m) over (wk rows between 23 preceding and 12 preceding) as revenue_12m_py,
        sum(vat_filed) over (wk rows between 14 preceding and 12 preceding)  as vat_filed_3m_py,
        sum(revenue_1m_xcny) over (wk rows between 2 preceding and current row)    as revenue_3m_xcny,
        sum(revenue_1m_xcny) over (wk rows between 14 preceding and 12 preceding)  as revenue_3m_xcny_py,
        count(revenue_1m_xcny) over (wk rows between 14 preceding and 12 preceding) as vat_filed_3m_xcny_py,
        sum(vat_filed) over (wk rows between 17 preceding and 12 preceding)  as vat_filed_6m_py,
        sum(vat_filed) over (wk rows between 23 preceding and 12 preceding)  as vat_filed_12m_py,
        sum(vat_missing) over (wk rows between 2 preceding and current row)  as vat_missing_3m,
        sum(vat_missing) over (wk rows between 5 preceding and current row)  as vat_missing_6m,
        sum(vat_missing) over (wk rows between 11 preceding and current row) as vat_missing_12m,
        sum(cit_filed) over (wk rows between 11 preceding and current row)   as cit_filed_12m,
        sum(cit_nil_payable) over (wk rows between 11 preceding and current row) as cit_nil_payable_12m,
        max(cit_nil_payable) over (wk rows between 2 preceding and current row) as cit_nil_payable_3m,
        sum(arrears_delta) over (wk rows between unbounded preceding and current row) as tax_arrears,
        sum(arrears_delta) over (wk rows between unbounded preceding and 3 preceding) as tax_arrears_3m_ago,
        count(*) over (wk rows between unbounded preceding and current row)  as months_so_far
    from base
    window wk as (partition by enterprise_key order by month_end)
),

ratings as (
    select
        k.enterprise_key,
        r.year,
        r.rating,
        r.rating_rank,
        lag(r.year) over (partition by k.enterprise_key order by r.year)        as prev_year,
        lag(r.rating) over (partition by k.enterprise_key order by r.year)      as prev_rating,
        lag(r.rating_rank) over (partition by k.enterprise_key order by r.year) as prev_rating_rank
    from {{ ref('stg_tax__ratings') }} as r
    inner join keys as k on k.enterprise_id = r.enterprise_id
    where r.year < year({{ as_of_date() }})
),

-- each rating is the latest "of a year before" for month ends in years year+1 .. next rating's
-- year (at most D's year): expanded to one row per such year, then an equi-join
rating_years as (
    select
        r.enterprise_key,
        cast(y.y as integer) as month_end_year,
        r.year          as tax_rating_year,
        r.rating        as tax_rating,
        r.prev_rating   as tax_rating_prev,
        r.rating_rank > r.prev_rating_rank as tax_rating_downgraded
    from (
        select *, lead(year) over (partition by enterprise_key order by year) as next_year
        from ratings
    ) as r
    cross join lateral (
        select unnest(generate_series(
            r.year + 1, least(coalesce(r.next_year, 9999), year({{ as_of_date() }})))) as y
    ) as y
),

rated as (
    select
        s.enterprise_key, s.month_end, ry.tax_rating_year, ry.tax_rating, ry.tax_rating_prev,
        ry.tax_rating_downgraded
    from spine as s
    inner join rating_years as ry
        on ry.enterprise_key = s.enterprise_key and ry.month_end_year = year(s.month_end)
)

select
    w.enterprise_id,
    w.month_end,
    cast(w.revenue_1m as decimal(18, 2))    as revenue_1m,
    cast(w.revenue_3m as decimal(18, 2))    as revenue_3m,
    cast(w.revenue_6m as decimal(18, 2))    as revenue_6m,
    cast(w.revenue_12m as decimal(18, 2))   as revenue_12m,
    cast(w.revenue_3m_py as decimal(18, 2)) as revenue_3m_py,
    cast(w.revenue_12m_py as decimal(18, 2)) as revenue_12m_py,
    {{ ef_growth('w.revenue_1m', 'w.revenue_1m_py') }}                             as revenue_1m_yoy,
    {{ ef_growth('w.revenue_3m', 'w.revenue_3m_py', 'w.vat_filed_3m_py = 3') }}    as revenue_3m_yoy,
    {{ ef_growth('w.revenue_3m_xcny', 'w.revenue_3m_xcny_py',
                 'w.vat_filed_3m_xcny_py = ' ~ ef_non_cny_months_3m('w.month_end')) }} as revenue_3m_yoy_ex_cny,
    {{ ef_growth('w.revenue_6m', 'w.revenue_6m_py', 'w.vat_filed_6m_py = 6') }}    as revenue_6m_yoy,
    {{ ef_growth('w.revenue_12m', 'w.revenue_12m_py', 'w.vat_filed_12m_py = 12') }} as revenue_12m_yoy,
    cast(w.vat_filed_12m as integer)        as vat_filings_12m,
    cast(w.vat_missing_3m as integer)       as vat_filings_missing_3m,
    cast(w.vat_missing_6m as integer)       as vat_filings_missing_6m,
    cast(w.vat_missing_12m as integer)      as vat_filings_missing_12m,
    cast(w.tax_arrears as decimal(18, 2))   as tax_arrears,
    cast(case when w.months_so_far > 3 then w.tax_arrears - coalesce(w.tax_arrears_3m_ago, 0) end
        as decimal(18, 2))                  as tax_arrears_change_3m,
    {{ ef_growth('w.tax_arrears', 'w.tax_arrears_3m_ago', 'w.months_so_far > 3') }} as tax_arrears_growth_3m,
    cast(w.cit_filed_12m as integer)        as cit_filings_12m,
    cast(coalesce(w.cit_nil_payable_12m, 0) as integer) as cit_nil_payable_filings_12m,
    cast(w.cit_nil_payable_3m as integer)   as cit_nil_payable_3m,
    r.tax_rating_year,
    r.tax_rating,
    r.tax_rating_prev,
    coalesce(r.tax_rating_downgraded, false) as tax_rating_downgraded
from w3 as w
left join rated as r
    on r.enterprise_key = w.enterprise_key and r.month_end = w.month_end
{%- endif %}
