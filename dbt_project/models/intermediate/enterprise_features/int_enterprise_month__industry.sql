{#- The industry's own revenue index. Grain: industry_code x month_end (not per enterprise).
    Over the enterprises of the industry (GB/T 4754 section) with a trailing-3-month VAT
    revenue YoY at that month end (the enterprise itself included): the median YoY and the
    aggregate YoY (sum of revenue_3m / sum of revenue_3m a year earlier - 1). -#}
-- Kept as stored on a night that recomputes no month end (macro month_ends_unchanged): the
-- firms' revenue figures at stored month ends cannot change then.
{{ config(materialized=month_end_materialization(), incremental_strategy='replace_all_month_ends', on_schema_change='fail') }}
{%- if month_ends_unchanged() %}
select * from {{ this }}
where false
{%- else %}
with firm as (
    select e.industry_code, t.month_end, t.revenue_3m, t.revenue_3m_py, t.revenue_3m_yoy, t.revenue_3m_yoy_ex_cny
    from {{ ref('int_enterprise_month__tax') }} as t
    inner join {{ ref('stg_registry__enterprises') }} as e on e.enterprise_id = t.enterprise_id
    where t.revenue_3m_yoy is not null or t.revenue_3m_yoy_ex_cny is not null
)

select
    industry_code,
    month_end,
    cast(count(revenue_3m_yoy) as integer)           as industry_peer_count,
    cast(median(revenue_3m_yoy) as double)           as industry_revenue_3m_yoy_median,
    {{ ef_growth('sum(revenue_3m) filter (where revenue_3m_yoy is not null)',
                 'sum(revenue_3m_py) filter (where revenue_3m_yoy is not null)') }}
                                                     as industry_revenue_3m_yoy_aggregate,
    cast(median(revenue_3m_yoy_ex_cny) as double)    as industry_revenue_3m_yoy_ex_cny_median
from firm
group by 1, 2
{%- endif %}
