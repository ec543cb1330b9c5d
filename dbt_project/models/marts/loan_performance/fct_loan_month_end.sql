{{ config(materialized=month_end_materialization(), incremental_strategy='replace_from_month_end', on_schema_change='fail') }}
{%- if recompute_nothing() %}
select * from {{ this }}
where false
{%- else %}
-- fct_loan_month_end (contract section 4): one row per loan x month end me with
-- disbursement_date <= me <= D at which outstanding_principal > 0 or dpd > 0, as known on D.
-- A stored row holds only what is fixed at its month end (no as_of_date, no "default day as
-- known on D": that is fct_loan_defaults), so a night changes only the month ends it
-- recomputes; main.published_refresh says which D the published file holds.
--
-- risk_class   = the days-past-due floor (normal 0, special_mention 1-90, substandard
--                91-270, doubtful 271-360, loss > 360), raised to at least substandard for
--                every loan of an enterprise with more than 10% of its outstanding principal
--                (on that month end) non-performing by the floor (whole-borrower rule).
-- ifrs9_stage  = the dpd floor (1: 0-30, 2: 31-90, 3: > 90). Hook: ifrs9_stage_dpd_floor
--                keeps the floor; other evidence (e.g. a red watchlist tier) may only raise
--                ifrs9_stage above it, never lower it. For now ifrs9_stage = the floor.
-- is_default   = the loan's default day (first day dpd > 90) is on or before month_end; a
--                cured loan stays defaulted.

with loan_month_ends as (

    select * from {{ ref('int_loan_month_end__dpd') }}
    {{- recompute_only_enterprises('enterprise_id') }}

),

floors as (

    select
        *,
        case
            when dpd = 0 then 'normal'
            when dpd <= 90 then 'special_mention'
            when dpd <= 270 then 'substandard'
            when dpd <= 360 then 'doubtful'
            else 'loss'
        end as risk_class_dpd_floor,
        cast(case
            when dpd <= 30 then 1
            when dpd <= 90 then 2
            else 3
        end as integer) as ifrs9_stage_dpd_floor
    from loan_month_ends

),

borrower as (

    select
        *,
        sum(outstanding_principal) over (partition by enterprise_id, month_end)
            as enterprise_outstanding_principal,
        sum(case when risk_class_dpd_floor in ('substandard', 'doubtful', 'loss')
                 then outstanding_principal else 0 end)
            over (partition by enterprise_id, month_end)
            as enterprise_npl_principal_dpd_floor
    from floors

),

classified as (

    select
        *,
        coalesce(
            enterprise_npl_principal_dpd_floor > 0.10 * enterprise_outstanding_principal,
            false
        ) as is_borrower_rule_applied
    from borrower

)

select
    cast(loan_id as varchar)                                   as loan_id,
    cast(enterprise_id as varchar)                             as enterprise_id,
    cast(month_end as date)                                    as month_end,
    cast(outstanding_principal as decimal(18, 2))              as outstanding_principal,
    cast(dpd as integer)                                       as dpd,
    cast(case
        when is_borrower_rule_applied
         and risk_class_dpd_floor in ('normal', 'special_mention')
            then 'substandard'
        else risk_class_dpd_floor
    end as varchar)                                            as risk_class,
    cast(ifrs9_stage_dpd_floor as integer)                     as ifrs9_stage,
    cast(is_default as boolean)                                as is_default,
    cast(branch_id as varchar)                                 as branch_id,
    cast(product as varchar)                                   as product,
    cast(disbursement_date as date)                            as disbursement_date,
    cast(maturity_date as date)                                as maturity_date,
    cast(maturity_date - month_end as integer)                 as days_to_maturity,
    cast(oldest_unsettled_due_date as date)                    as oldest_unsettled_due_date,
    cast(risk_class_dpd_floor as varchar)                      as risk_class_dpd_floor,
    cast(is_borrower_rule_applied as boolean)                  as is_borrower_rule_applied,
    cast(ifrs9_stage_dpd_floor as integer)                     as ifrs9_stage_dpd_floor,
    cast(enterprise_outstanding_principal as decimal(18, 2))   as enterprise_outstanding_principal,
    cast(enterprise_npl_principal_dpd_floor as decimal(18, 2)) as enterprise_npl_principal_dpd_floor
from classified
{%- endif %}
