-- One row per loan that had defaulted by the as-of date D: its default day (contract
-- section 3: the first day its days past due exceeded 90, the earliest due_date + 91 over
-- installments not settled by that day). Known on D, not at a month end: a loan that
-- defaults tomorrow gets its row tomorrow, while the month ends of fct_loan_month_end before
-- that day stay as stored (their is_default is already false). Small: one row per defaulted
-- loan, rebuilt every night.

with defaults as (

    select loan_id, min(default_trigger_date) as default_date
    from {{ ref('int_loan_installments__settled') }}
    where default_trigger_date is not null
    group by loan_id

)

select
    cast(d.loan_id as varchar)         as loan_id,
    cast(l.enterprise_id as varchar)   as enterprise_id,
    cast(l.branch_id as varchar)       as branch_id,
    cast(l.product as varchar)         as product,
    cast(d.default_date as date)       as default_date
from defaults as d
inner join {{ ref('stg_core_banking__loans') }} as l on l.loan_id = d.loan_id
