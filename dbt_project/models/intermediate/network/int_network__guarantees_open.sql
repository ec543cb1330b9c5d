-- One row per guarantee x month end at which it is open (contract section 2): start_date on
-- or before the month end and end_date null or after it; only month ends <= D, so only
-- guarantees that had started by D. The borrower is the guaranteed loan's enterprise.

-- Kept as stored on a night that recomputes no month end (macro month_ends_unchanged).
{{ config(materialized=month_end_materialization(), incremental_strategy='replace_all_month_ends', on_schema_change='fail') }}
{%- if month_ends_unchanged() %}
select * from {{ this }}
where false
{%- else %}
with month_ends as (

    select month_end from {{ ref('int_calendar__month_ends') }}

),

guarantees as (

    select
        g.guarantee_id,
        g.loan_id,
        l.enterprise_id as borrower_id,
        g.guarantor_type,
        g.guarantor_id,
        g.guaranteed_amount,
        g.start_date,
        g.end_date
    from {{ ref('stg_core_banking__guarantees') }} as g
    inner join {{ ref('stg_core_banking__loans') }} as l using (loan_id)
    where g.start_date <= {{ as_of_date() }}

)

select
    cast(m.month_end as date)                   as month_end,
    cast(g.guarantee_id as varchar)             as guarantee_id,
    cast(g.loan_id as varchar)                  as loan_id,
    cast(g.borrower_id as varchar)              as borrower_id,
    cast(g.guarantor_type as varchar)           as guarantor_type,
    cast(g.guarantor_id as varchar)             as guarantor_id,
    cast(g.guaranteed_amount as decimal(18, 2)) as guaranteed_amount,
    -- an enterprise guaranteeing another's loan: an edge guarantor -> borrower
    coalesce(g.guarantor_type = 'enterprise' and g.guarantor_id <> g.borrower_id, false)
        as is_enterprise_edge
from guarantees as g
inner join month_ends as m
    on g.start_date <= m.month_end
    and (g.end_date is null or g.end_date > m.month_end)
{%- endif %}
