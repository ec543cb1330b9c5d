{#- The select of marts.fct_enterprise_month_end for one bucket of enterprises.

    At 1M enterprises the mart joins six 37M-row intermediates on (enterprise, month end);
    their hash tables do not fit in memory at once. Building the mart bucket by bucket
    (hash of enterprise_id) bounds memory to 1/n of that; the model inserts bucket 0 and its
    post-hooks the rest: one bucket per `enterprises_per_bucket` (var, 62,500) enterprises in
    the registry, at most `enterprise_buckets` (var, 16). At 1M enterprises that is 16 and a
    bucket fits the 9GB default memory cap; a smaller book uses fewer, since every bucket
    scans all six intermediates again (100k, full build: 16 buckets 29.8 s, 2 buckets 17.1 s
    at 4.1 GB peak; the hooks past the count insert nothing). An incremental build reads
    only the rows it recomputes of the per-enterprise-month intermediates too (the same
    condition as the spine's, on the join keys), not every row of each. A night that
    recomputes only some enterprises whole (no month end) builds them in bucket 0 alone: the
    other buckets would scan every intermediate again for nothing.
    The firm's and its industry's columns are joined to the spine first, in a materialized
    CTE: left to the optimizer, whose estimates the bucket filters shrink, those two small
    tables became the probe side of hash joins built over the wide joined rows (at 200k
    enterprises, 14 of a bucket's 35 CPU seconds and its memory peak). -#}
{% macro ef_enterprise_month_end_select(bucket, n_buckets) %}
{%- if recompute_nothing() %}{% set n_buckets = 0 %}
{%- elif only_some_enterprises() %}{% set n_buckets = 1 %}
{%- else %}{% set n_buckets = ef_bucket_count(n_buckets) %}
{%- endif %}
{%- if bucket | int >= n_buckets | int %}
select * from {{ this }}
where false
{%- else %}
with spine as {{ materialized_cte() }} (
    select
        s.enterprise_id, s.industry_code, s.month_end,
        e.region_code, e.size_class, e.registered_capital,
        i.industry_peer_count, i.industry_revenue_3m_yoy_median,
        i.industry_revenue_3m_yoy_aggregate, i.industry_revenue_3m_yoy_ex_cny_median
    from {{ ref('int_enterprise__month_spine') }} as s
    left join {{ ref('stg_registry__enterprises') }} as e on e.enterprise_id = s.enterprise_id
    left join {{ ref('int_enterprise_month__industry') }} as i
        on i.industry_code = s.industry_code and i.month_end = s.month_end
    where s.month_end in (select month_end from {{ ref('int_calendar__month_ends') }})
      and {{ ef_in_bucket('s.enterprise_id', bucket, n_buckets) }}
      {{- recompute_filter('s.month_end', 's.enterprise_id') }}
)

select
    s.enterprise_id,
    cast(s.month_end as date)                 as month_end,
    s.industry_code,
    s.region_code,
    s.size_class,
    ev.status_at_month_end,

    -- tax: revenue
    t.revenue_1m,
    t.revenue_3m,
    t.revenue_6m,
    t.revenue_12m,
    t.revenue_1m_yoy,
    t.revenue_3m_yoy,
    t.revenue_3m_yoy_ex_cny,
    t.revenue_6m_yoy,
    t.revenue_12m_yoy,
    t.vat_filings_12m,
    t.vat_filings_missing_3m,
    t.vat_filings_missing_6m,
    t.vat_filings_missing_12m,
    -- tax: arrears and rating
    t.tax_arrears,
    t.tax_arrears_change_3m,
    t.tax_arrears_growth_3m,
    -- tax: quarterly corporate income tax (profit)
    t.cit_filings_12m,
    t.cit_nil_payable_filings_12m,
    t.cit_nil_payable_3m,
    t.tax_rating_year,
    t.tax_rating,
    t.tax_rating_prev,
    t.tax_rating_downgraded,

    -- industry
    s.industry_peer_count,
    s.industry_revenue_3m_yoy_median,
    s.industry_revenue_3m_yoy_aggregate,
    s.industry_revenue_3m_yoy_ex_cny_median,
    t.revenue_3m_yoy - s.industry_revenue_3m_yoy_median as revenue_3m_yoy_vs_industry,

    -- utilities
    u.electricity_3m,
    u.electricity_3m_yoy,
    u.electricity_3m_yoy_ex_cny,
    u.electricity_3m_vs_12m_avg,
    u.electricity_yoy_decline_months,
    u.water_3m,
    u.water_3m_yoy,
    u.water_3m_vs_12m_avg,
    u.gas_3m,
    u.gas_3m_yoy,
    u.gas_3m_vs_12m_avg,
    u.utility_arrears,
    u.utility_arrears_overdue,
    u.utility_late_payments_6m,

    -- registry events
    {%- for w in [3, 6, 12] %}
    {%- for c in ['court_judgment_defendant', 'enforcement_listed', 'dishonest_debtor_listed',
                  'abnormal_operation_listed', 'legal_rep_change', 'shareholder_change',
                  'equity_pledge', 'admin_penalty', 'high_severity_events',
                  'medium_severity_events', 'low_severity_events'] %}
    ev.{{ c }}_{{ w }}m,
    {%- endfor %}
    {%- endfor %}
    ev.status_changes_12m,
    ev.court_enforcement_amount_12m,
    ev.abnormal_operation_currently_listed,

    -- loan-fund use
    f.fund_diversion_max_share,
    f.fund_diversion_max_loan_amount,
    coalesce(f.fund_diversion_amount, 0)      as fund_diversion_amount,

    -- borrowing burden
    l.outstanding_principal,
    {{ ef_ratio('l.outstanding_principal', 't.revenue_12m') }} as outstanding_to_revenue_12m,
    l.principal_due_next_90d,
    {{ ef_ratio('l.principal_due_next_90d', 't.revenue_12m / 12') }} as principal_due_90d_to_avg_monthly_revenue,
    l.bullet_principal_due_next_180d,
    {{ ef_ratio('l.bullet_principal_due_next_180d', 't.revenue_12m / 12') }} as bullet_due_180d_to_avg_monthly_revenue,
    l.loans_outstanding,
    l.dpd_max,
    l.dpd_max_12m,
    l.is_default,

    -- risk that travels: guarantees given and the firms around it (int_enterprise_month__network)
    coalesce(n.guarantees_given, 0)           as guarantees_given,
    {{ ef_ratio('coalesce(n.guarantees_given, 0)', 't.revenue_12m') }} as guarantees_given_to_revenue_12m,
    {{ ef_ratio('coalesce(n.guarantees_given, 0)', 's.registered_capital') }} as guarantees_given_to_registered_capital,
    {%- for c in ['guaranteed_parties_in_default', 'guaranteed_parties_past_due',
                  'own_guarantors_in_default', 'guarantee_circle_members',
                  'circle_members_in_default', 'related_parties_in_default',
                  'related_parties_past_due', 'guaranteed_parties_on_red',
                  'own_guarantors_on_red', 'related_parties_on_red'] %}
    coalesce(n.{{ c }}, 0)                    as {{ c }},
    {%- endfor %}
    coalesce(n.guarantees_given_in_default, 0) as guarantees_given_in_default,
    n.guaranteed_party_in_default,
    n.guaranteed_party_past_due,
    n.own_guarantor_in_default,
    n.guarantee_circle_id,
    n.circle_member_in_default,
    n.related_party_in_default,
    n.related_party_past_due,
    {%- for c in ['guaranteed_party', 'own_guarantor', 'related_party'] %}
    n.{{ c }}_on_red,
    n.{{ c }}_red_trigger{{ ',' if not loop.last }}
    {%- endfor %}
from spine as s
{%- for model, alias in [
      ('int_enterprise_month__tax', 't'),
      ('int_enterprise_month__utility', 'u'),
      ('int_enterprise_month__registry_events', 'ev'),
      ('int_enterprise_month__fund_use', 'f'),
      ('int_enterprise_month__loans', 'l'),
      ('int_enterprise_month__network', 'n')] %}
left join (select * from {{ ref(model) }}
           where {{ ef_in_bucket('enterprise_id', bucket, n_buckets) }}
           {{- recompute_filter('month_end', 'enterprise_id') }}) as {{ alias }}
    on {{ alias }}.enterprise_id = s.enterprise_id and {{ alias }}.month_end = s.month_end
{%- endfor %}
{%- endif %}
{% endmacro %}


{#- Buckets for this build: one per `enterprises_per_bucket` registry enterprises, between
    1 and `max_buckets` (the hooks the model was parsed with). -#}
{% macro ef_bucket_count(max_buckets) -%}
  {%- if not execute -%}{{- return(max_buckets | int) -}}{%- endif -%}
  {%- set per_bucket = var('enterprises_per_bucket', 62500) | int -%}
  {%- set n = run_query(
        'select count(*) from ' ~ ref('stg_registry__enterprises')).columns[0].values()[0] -%}
  {{- return([[((n | int) + per_bucket - 1) // per_bucket, 1] | max, max_buckets | int] | min) -}}
{%- endmacro %}


{% macro ef_in_bucket(column, bucket, n_buckets) -%}
  {%- if n_buckets | int > 1 -%} hash({{ column }}) % {{ n_buckets }} = {{ bucket }}
  {%- else -%} true {%- endif -%}
{%- endmacro %}
