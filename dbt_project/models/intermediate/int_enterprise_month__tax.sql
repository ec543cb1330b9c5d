{#- Tax features per enterprise per month end. At month end me only tax rows whose period
    ended on or before me (and D) are used; the rating is the latest of a year before
    year(me). Windows are ROWS frames over the dense month spine (n rows = n months). -#}
with spine as (
    select enterprise_id, month_end from {{ ref('int_enterprise__month_spine') }}
),

filings as (
    select * from {{ ref('stg_tax__filings') }}
    where period_end <= {{ as_of_date() }}
),

vat as (
    select enterprise_id, period_end as month_end, sum(taxable_revenue) as revenue
    from filings
    where tax_type = 'vat'
    group by 1, 2
),

arrears_delta as (
    select enterprise_id, period_end as month_end, sum(tax_payable - tax_paid) as arrears_delta
    from filings
    group by 1, 2
),

base as (
    select
        s.enterprise_id,
        s.month_end,
        v.revenue                                   as revenue_1m,
        cast(v.enterprise_id is not null as integer) as vat_filed,
        coalesce(a.arrears_delta, 0)                as arrears_delta
    from spine as s
    left join vat as v
        on v.enterprise_id = s.enterprise_id and v.month_end = s.month_end
    left join arrears_delta as a
        on a.enterprise_id = s.enterprise_id and a.month_end = s.month_end
),

w1 as (
    select
        *,
        sum(revenue_1m) over w3                     as revenue_3m,
        sum(revenue_1m) over w6                     as revenue_6m,
        sum(revenue_1m) over w12                    as revenue_12m,
        sum(vat_filed) over w3                      as vat_filed_3m,
        sum(vat_filed) over w6                      as vat_filed_6m,
        sum(vat_filed) over w12                     as vat_filed_12m,
        coalesce(sum(vat_filed) over (
            partition by enterprise_id order by month_end
            rows between unbounded preceding and 1 preceding), 0) > 0 as filed_before,
        sum(arrears_delta) over (
            partition by enterprise_id order by month_end
            rows between unbounded preceding and current row) as tax_arrears
    from base
    window
        w3 as (partition by enterprise_id order by month_end rows between 2 preceding and current row),
        w6 as (partition by enterprise_id order by month_end rows between 5 preceding and current row),
        w12 as (partition by enterprise_id order by month_end rows between 11 preceding and current row)
),

w2 as (
    select
        *,
        case when filed_before and vat_filed = 0 then 1 else 0 end as vat_missing,
        lag(revenue_1m, 12) over wp     as revenue_1m_py,
        lag(revenue_3m, 12) over wp     as revenue_3m_py,
        lag(revenue_6m, 12) over wp     as revenue_6m_py,
        lag(revenue_12m, 12) over wp    as revenue_12m_py,
        lag(vat_filed_3m, 12) over wp   as vat_filed_3m_py,
        lag(vat_filed_6m, 12) over wp   as vat_filed_6m_py,
        lag(vat_filed_12m, 12) over wp  as vat_filed_12m_py,
        lag(tax_arrears, 3) over wp     as tax_arrears_3m_ago
    from w1
    window wp as (partition by enterprise_id order by month_end)
),

w3 as (
    select
        *,
        sum(vat_missing) over (partition by enterprise_id order by month_end
            rows between 2 preceding and current row)  as vat_missing_3m,
        sum(vat_missing) over (partition by enterprise_id order by month_end
            rows between 5 preceding and current row)  as vat_missing_6m,
        sum(vat_missing) over (partition by enterprise_id order by month_end
            rows between 11 preceding and current row) as vat_missing_12m
    from w2
),

ratings as (
    select
        enterprise_id,
        year,
        rating,
        rating_rank,
        lag(year) over (partition by enterprise_id order by year)        as prev_year,
        lag(rating) over (partition by enterprise_id order by year)      as prev_rating,
        lag(rating_rank) over (partition by enterprise_id order by year) as prev_rating_rank
    from {{ ref('stg_tax__ratings') }}
    where year < year({{ as_of_date() }})
),

spine_years as (
    select enterprise_id, month_end, cast(year(month_end) - 1 as integer) as max_rating_year
    from spine
),

rated as (
    select
        s.enterprise_id,
        s.month_end,
        r.year          as tax_rating_year,
        r.rating        as tax_rating,
        r.prev_rating   as tax_rating_prev,
        r.rating_rank > r.prev_rating_rank as tax_rating_downgraded
    from spine_years as s
    asof left join ratings as r
        on r.enterprise_id = s.enterprise_id and s.max_rating_year >= r.year
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
    {{ ef_growth('w.revenue_6m', 'w.revenue_6m_py', 'w.vat_filed_6m_py = 6') }}    as revenue_6m_yoy,
    {{ ef_growth('w.revenue_12m', 'w.revenue_12m_py', 'w.vat_filed_12m_py = 12') }} as revenue_12m_yoy,
    cast(w.vat_filed_12m as integer)        as vat_filings_12m,
    cast(w.vat_missing_3m as integer)       as vat_filings_missing_3m,
    cast(w.vat_missing_6m as integer)       as vat_filings_missing_6m,
    cast(w.vat_missing_12m as integer)      as vat_filings_missing_12m,
    cast(w.tax_arrears as decimal(18, 2))   as tax_arrears,
    cast(w.tax_arrears - w.tax_arrears_3m_ago as decimal(18, 2)) as tax_arrears_change_3m,
    {{ ef_growth('w.tax_arrears', 'w.tax_arrears_3m_ago') }}     as tax_arrears_growth_3m,
    r.tax_rating_year,
    r.tax_rating,
    r.tax_rating_prev,
    coalesce(r.tax_rating_downgraded, false) as tax_rating_downgraded
from w3 as w
left join rated as r
    on r.enterprise_id = w.enterprise_id and r.month_end = w.month_end
