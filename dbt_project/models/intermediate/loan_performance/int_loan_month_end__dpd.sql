{{ config(materialized=month_end_materialization(), incremental_strategy='replace_from_month_end', on_schema_change='fail') }}
{%- if recompute_nothing() %}
select * from {{ this }}
where false
{%- else %}
-- One row per loan x month end me with disbursement_date <= me <= D at which the loan has
-- outstanding principal or days past due (contract sections 3 and 4), as known on D.
-- Every column is a property of the loan at its month end (nothing "as known on D" that a
-- later night could change without a change at or before that month end): an incremental
-- night keeps these rows as they are.
--
-- Scale: no per-day expansion. Installments are grouped by their settlement date (the
-- "settle key"; unsettled at D = 9999-12-31). For a month end me, the installments not
-- settled by me are exactly those of the groups with settle key > me, so one ASOF join
-- (smallest settle key > me) gives both:
--   * principal settled by me    = principal of all groups with a smaller settle key,
--   * oldest unsettled due date  = min due date over that group and all later groups.
-- The loan x month-end grid stops at the month end before the loan was fully settled.

with loans as (

    select
        loan_id,
        enterprise_id,
        branch_id,
        product,
        disbursement_date,
        maturity_date,
        principal
    from {{ ref('stg_core_banking__loans') }}
    where disbursement_date <= {{ as_of_date() }}
    {{- recompute_only_enterprises('enterprise_id', 'and') }}

),

installments as (

    select * from {{ ref('int_loan_installments__settled') }}
    {%- if only_some_enterprises() %}
    where loan_id in (select loan_id from loans)
    {%- endif %}

),

settle_groups as (

    select
        loan_id,
        coalesce(settled_date, date '9999-12-31') as settle_key,
        min(due_date)                              as min_due_date,
        sum(principal_due)                         as group_principal_due
    from installments
    group by 1, 2

),

settle_groups_cumulative as (

    select
        loan_id,
        settle_key,
        coalesce(sum(group_principal_due) over (
            partition by loan_id order by settle_key
            rows between unbounded preceding and 1 preceding
        ), 0) as principal_settled_before,
        min(min_due_date) over (
            partition by loan_id order by settle_key desc
            rows between unbounded preceding and current row
        ) as oldest_unsettled_due_date
    from settle_groups

),

loan_summary as (

    select
        loan_id,
        sum(principal_due)               as total_principal_due,
        bool_and(settled_date is not null) as all_settled,
        max(settled_date)                as last_settled_date,
        min(default_trigger_date)        as default_date
    from installments
    group by 1

),

loan_bounds as (

    select
        l.*,
        coalesce(s.total_principal_due, 0) as total_principal_due,
        s.default_date,
        -- From this day on the loan has no dpd and no outstanding principal: no more rows.
        case
            when s.all_settled and l.principal - s.total_principal_due <= 0
                then s.last_settled_date
        end as fully_settled_date
    from loans as l
    left join loan_summary as s on s.loan_id = l.loan_id

),

grid as (

    select
        b.*,
        c.month_end
    from loan_bounds as b
    inner join {{ ref('int_calendar__month_ends') }} as c
        on c.month_end >= b.disbursement_date
        and c.month_end < coalesce(b.fully_settled_date, date '9999-12-31')

),

measured as (

    select
        g.loan_id,
        g.enterprise_id,
        g.branch_id,
        g.product,
        g.disbursement_date,
        g.maturity_date,
        g.principal,
        g.month_end,
        cast(
            g.principal - coalesce(s.principal_settled_before, g.total_principal_due)
            as decimal(18, 2)
        ) as outstanding_principal,
        cast(case
            when s.oldest_unsettled_due_date < g.month_end
                then {{ days_between('g.month_end', 's.oldest_unsettled_due_date') }}
            else 0
        end as integer) as dpd,
        s.oldest_unsettled_due_date,
        g.default_date
    from {{ asof_left_join('grid', 'g', 'settle_groups_cumulative', 's',
                           'loan_id', 'month_end', '<', 'settle_key') }}

)

select
    loan_id,
    enterprise_id,
    branch_id,
    product,
    disbursement_date,
    maturity_date,
    principal,
    month_end,
    outstanding_principal,
    dpd,
    case when dpd > 0 then oldest_unsettled_due_date end as oldest_unsettled_due_date,
    -- the default day itself lives in fct_loan_defaults (it is known on D, not at month_end)
    coalesce(default_date <= month_end, false) as is_default
from measured
where outstanding_principal > 0 or dpd > 0
{%- endif %}
