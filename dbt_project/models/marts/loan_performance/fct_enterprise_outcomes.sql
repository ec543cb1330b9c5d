{#- What happened to each borrower after each month end, read from the loan mart itself (no
    outside ground truth): the outcome side of back-tests and of the PD scorecard's training.

    One row per enterprise x month end at which it had a loan row in fct_loan_month_end. The
    enterprise's default date is the earliest default date of its loans (fct_loan_defaults;
    contract section 3:
    an enterprise defaults when any of its loans does; a loan stays defaulted). Outcomes count
    events after month_end and within 6 / 12 months; `outcome_observed_6m` / `_12m` say
    whether the window had fully passed on D, so a back-test or a fit dated T uses a row only
    when its window ended on or before T.

    Incremental (DuckDB): a row reads its enterprise's loan rows, default date and D, so a
    night recomputes whole the enterprises it can change (macro outcome_enterprises): those
    whose loan rows it recomputed, those of the loans it settled again, and those with a
    month end whose 6- or 12-month window D's move has closed. -#}
{{ config(materialized=month_end_materialization(), incremental_strategy='replace_outcomes',
          on_schema_change='fail') }}
{%- set some_enterprises = previous_as_of_known() %}
-- depends_on: {{ ref('stg_core_banking__loans') }}
-- depends_on: {{ ref('stg_core_banking__repayments') }}
-- depends_on: {{ ref('stg_core_banking__installments') }}

with loan_rows as (

    select enterprise_id, month_end, outstanding_principal, dpd
    from {{ ref('fct_loan_month_end') }}
    {%- if some_enterprises %}
    where enterprise_id in ({{ outcome_enterprises() }})
    {%- endif %}

),

enterprise_default as (

    select enterprise_id, min(default_date) as default_date
    from {{ ref('fct_loan_defaults') }}
    {%- if some_enterprises %}
    where enterprise_id in (select lr.enterprise_id from loan_rows as lr)
    {%- endif %}
    group by enterprise_id

),

enterprise_month as (

    select
        enterprise_id,
        month_end,
        sum(outstanding_principal)  as outstanding_principal,
        max(dpd)                    as dpd_max
    from loan_rows
    group by enterprise_id, month_end

),

with_next as (

    select
        *,
        -- the first later month end at which some loan was more than 30 days past due
        min(case when dpd_max > 30 then month_end end) over (
            partition by enterprise_id order by month_end
            rows between 1 following and unbounded following
        ) as next_dpd30_month_end
    from enterprise_month

)

select
    cast(m.enterprise_id as varchar)                                   as enterprise_id,
    cast(m.month_end as date)                                          as month_end,
    cast(m.outstanding_principal as decimal(18, 2))                    as outstanding_principal,
    cast(m.dpd_max as integer)                                         as dpd_max,
    -- sticky: once any loan defaulted the enterprise stays in default, even after that loan
    -- was recovered and has no row any more (contract section 3)
    cast(coalesce(d.default_date <= m.month_end, false) as boolean)   as in_default,
    cast(m.dpd_max = 0 as boolean)                                     as all_loans_current,
    cast(case when d.default_date > m.month_end then d.default_date end as date)
                                                                       as next_default_date,
    cast(coalesce(d.default_date > m.month_end
        and d.default_date <= last_day(m.month_end + interval 6 month), false) as boolean)
                                                                       as default_within_6m,
    cast(coalesce(d.default_date > m.month_end
        and d.default_date <= last_day(m.month_end + interval 12 month), false) as boolean)
                                                                       as default_within_12m,
    cast(coalesce(m.next_dpd30_month_end <= last_day(m.month_end + interval 12 month)
        or (d.default_date > m.month_end
            and d.default_date <= last_day(m.month_end + interval 12 month)), false) as boolean)
                                                                       as dpd30_within_12m,
    cast(last_day(m.month_end + interval 6 month) <= {{ as_of_date() }} as boolean)
                                                                       as outcome_observed_6m,
    cast(last_day(m.month_end + interval 12 month) <= {{ as_of_date() }} as boolean)
                                                                       as outcome_observed_12m
from with_next as m
left join enterprise_default as d using (enterprise_id)
