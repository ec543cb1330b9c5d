-- One row per installment of a loan disbursed on or before D, with the date it was settled
-- using only payments dated on or before D (contract sections 2 and 3).
--
-- Payments are applied to installments in due-date order (installment_no breaks ties): an
-- installment is settled by the first payment (ordered by payment_date, payment_id) at which
-- the loan's cumulative payments reach the installment's cumulative due. One ASOF join per
-- loan finds it: the payment with the smallest cumulative paid >= the cumulative due.
-- All amounts stay DECIMAL (exact to the fen).
--
-- Incremental (DuckDB): a night settles again only the loans it can change (macro
-- previous_as_of_known): rows changed since the publish, and loans that D's move from the
-- as-of date the table was built for reaches (disbursed, paid, or a due date 91 days past in
-- between); every other loan's rows read no payment and no date that moved.
{{ config(materialized=month_end_materialization(), incremental_strategy='replace_loans',
          on_schema_change='fail') }}
{%- set some_loans = previous_as_of_known() %}

with loans as (

    select loan_id, disbursement_date
    from {{ ref('stg_core_banking__loans') }}
    where disbursement_date <= {{ as_of_date() }}
    {%- if some_loans %}
      and loan_id in ({{ loans_settled_again() }})
    {%- endif %}

),

installments as (

    select
        i.loan_id,
        i.installment_no,
        i.due_date,
        i.principal_due,
        i.interest_due,
        i.amount_due,
        l.disbursement_date,
        sum(i.amount_due) over (
            partition by i.loan_id
            order by i.due_date, i.installment_no
            rows between unbounded preceding and current row
        ) as cumulative_due
    from {{ ref('stg_core_banking__installments') }} as i
    inner join loans as l on l.loan_id = i.loan_id

),

payments as (

    select
        p.loan_id,
        p.payment_id,
        p.payment_date,
        sum(p.amount) over (
            partition by p.loan_id
            order by p.payment_date, p.payment_id
            rows between unbounded preceding and current row
        ) as cumulative_paid
    from {{ ref('stg_core_banking__repayments') }} as p
    where p.payment_date <= {{ as_of_date() }}
      and p.loan_id in (select loan_id from loans)

),

matched as (

    select
        i.*,
        p.payment_id      as settling_payment_id,
        p.payment_date    as settling_payment_date
    from {{ asof_left_join('installments', 'i', 'payments', 'p',
                           'loan_id', 'cumulative_due', '<=', 'cumulative_paid') }}

),

final as (

    select
        loan_id,
        installment_no,
        due_date,
        principal_due,
        interest_due,
        amount_due,
        cast(cumulative_due as decimal(18, 2)) as cumulative_due,
        -- Nothing due yet (leading zero installments): settled from the start.
        case when cumulative_due <= 0 then null else settling_payment_id end as settling_payment_id,
        case
            when cumulative_due <= 0 then least(due_date, disbursement_date)
            else settling_payment_date
        end as settled_date
    from matched

)

select
    *,
    -- Days from due date to settlement (negative = paid early); null while unsettled at D.
    cast(settled_date - due_date as integer) as days_settled_after_due,
    -- The loan defaults on due_date + 91 when this installment is still unsettled that day
    -- (dpd > 90). Only a day on or before D can be known.
    case
        when due_date + 91 <= {{ as_of_date() }}
         and (settled_date is null or settled_date > due_date + 91)
            then cast(due_date + 91 as date)
    end as default_trigger_date
from final
