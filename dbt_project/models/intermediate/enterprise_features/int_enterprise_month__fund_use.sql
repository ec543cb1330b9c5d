{#- Loan-fund use per enterprise per month end. A loan's diverted amount: its fund flows to
    disallowed counterparties (securities, real_estate, related_party, other_loan_repayment,
    cash) dated within [disbursement_date, disbursement_date + 90 days], counted from the
    month end of the flow (point in time). Share = diverted amount / principal. Each loan's
    diverted amount only grows, so the enterprise's max over loans at me is a running max. -#}
{{ config(materialized=month_end_materialization(), incremental_strategy='replace_from_month_end', on_schema_change='fail') }}
{%- if recompute_nothing() %}
select * from {{ this }}
where false
{%- else %}
with spine as (
    select enterprise_id, enterprise_key, month_end from {{ ref('int_enterprise__month_spine') }}
    {{- recompute_only_enterprises('enterprise_id') }}
),

loans as (
    select loan_id, enterprise_id, disbursement_date, principal
    from {{ ref('stg_core_banking__loans') }}
    where disbursement_date <= {{ as_of_date() }}
),

diverted as (
    select f.loan_id, {{ ef_month_end('f.txn_date') }} as month_end, sum(f.amount) as amount
    from {{ ref('stg_core_banking__fund_flows') }} as f
    inner join loans as l on l.loan_id = f.loan_id
    where f.counterparty_type in ('securities', 'real_estate', 'related_party', 'other_loan_repayment', 'cash')
      and f.txn_date >= l.disbursement_date
      and f.txn_date <= l.disbursement_date + 90
      and f.txn_date <= {{ as_of_date() }}
    group by 1, 2
),

loan_events as (
    select loan_id, {{ ef_month_end('disbursement_date') }} as month_end, cast(0 as decimal(18, 2)) as amount
    from loans
    union all
    select loan_id, month_end, amount from diverted
),

loan_months as (
    select
        e.loan_id,
        l.enterprise_id,
        l.principal,
        e.month_end,
        sum(e.amount) as amount
    from loan_events as e
    inner join loans as l on l.loan_id = e.loan_id
    group by all
),

loan_cum as (
    select
        *,
        sum(amount) over (partition by loan_id order by month_end
            rows between unbounded preceding and current row) as diverted_to_date
    from loan_months
),

ent_months as (
    select
        enterprise_id,
        month_end,
        max({{ ef_ratio('diverted_to_date', 'principal') }}) as max_share,
        max(diverted_to_date) as max_loan_amount,
        sum(amount)           as amount
    from loan_cum
    group by 1, 2
)

select
    s.enterprise_id,
    s.month_end,
    max(m.max_share) over wr as fund_diversion_max_share,
    cast(max(m.max_loan_amount) over wr as decimal(18, 2)) as fund_diversion_max_loan_amount,
    cast(sum(m.amount) over wr as decimal(18, 2)) as fund_diversion_amount
from spine as s
left join ent_months as m on m.enterprise_id = s.enterprise_id and m.month_end = s.month_end
window wr as (partition by s.enterprise_key order by s.month_end
    rows between unbounded preceding and current row)
{%- endif %}
