{#- The watchlist as of D: this refresh's rows of the history, red first, riskiest first. -#}

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
    clear_refreshes,
    catalog_version
from {{ ref('watchlist_history') }}
where as_of_date = {{ as_of_date() }}
order by tier = 'red' desc, risk_score desc, enterprise_id asc
