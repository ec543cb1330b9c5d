{#- IFRS 9 stage per loan per as-of date D, persisted like watchlist_history: re-running D
    replaces D's rows only, --full-refresh never wipes it. For the loans at D's last month
    end: the days-past-due floor, raised to 2 when the borrower's tier at D is red (contract
    section 3: other evidence may only raise the stage, never lower it). -#}
{{ as_of_history_config() }}

with loans as (

    select *
    from {{ ref('fct_loan_month_end') }}
    where month_end = {{ ef_last_month_end() }}

),

profile as (

    select enterprise_id, tier, signals
    from {{ source('early_warning', 'enterprise_risk_profile_history') }}
    where as_of_date = {{ as_of_date() }}

)

select
    cast(l.loan_id as varchar)                          as loan_id,
    cast(l.enterprise_id as varchar)                    as enterprise_id,
    cast({{ as_of_date() }} as date)                    as as_of_date,
    cast(l.month_end as date)                           as month_end,
    cast(l.ifrs9_stage_dpd_floor as integer)            as ifrs9_stage_dpd_floor,
    cast(greatest(
        l.ifrs9_stage_dpd_floor,
        case when p.tier = 'red' then 2 else 1 end
    ) as integer)                                       as ifrs9_stage,
    cast(case
        when p.tier = 'red' and l.ifrs9_stage_dpd_floor < 2
            then 'raised to 2: red watchlist tier (' || array_to_string(p.signals, ', ') || ')'
        else 'days past due floor (' || l.dpd || ' dpd)'
    end as varchar)                                     as stage_reason
from loans as l
left join profile as p using (enterprise_id)
order by l.loan_id
