{#- The watchlist: the history's rows of the latest refreshed as-of date (watchlist_refreshes
    knows it even when nobody was listed that day), red first, riskiest first. A run for a
    past date writes that date's history rows and leaves this as it is. -#}

select
    as_of_date,
    enterprise_id,
    tier,
    risk_score,
    signals,
    reasons,
    first_flagged_date,
    status,
    recommended_action,
    clearing,
    clear_month_ends,
    catalog_version,
    pd,
    engine,
    decision_month_end,
    reason_list
from {{ ref('watchlist_history') }}
where as_of_date = (select max(r.as_of_date) from {{ ref('watchlist_refreshes') }} as r)
order by tier = 'red' desc, risk_score desc, enterprise_id asc
