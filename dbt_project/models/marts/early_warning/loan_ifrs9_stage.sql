{#- IFRS 9 stage per loan as of the latest refreshed as-of date: that date's rows of
    loan_ifrs9_stage_history (where the stage is decided). A run for a past date writes that
    date's history rows and leaves this as it is. -#}

select
    loan_id,
    enterprise_id,
    as_of_date,
    month_end,
    ifrs9_stage_dpd_floor,
    ifrs9_stage,
    stage_reason
from {{ ref('loan_ifrs9_stage_history') }}
where as_of_date = (select max(r.as_of_date) from {{ ref('watchlist_refreshes') }} as r)
order by loan_id
