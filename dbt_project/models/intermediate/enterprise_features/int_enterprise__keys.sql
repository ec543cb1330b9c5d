{#- One integer key per enterprise, for the enterprise-month models: their group-bys, joins
    and window partitions on a 4-byte key instead of the 18-character credit code run about
    a third faster and spill far less (the code is too long for DuckDB to keep inline).
    A build's own numbering, stored only in int_enterprise__month_spine: it changes only
    with the registry's enterprises, and a night that delivers those recomputes every month
    end (refresh_plan.AFFECTED_FROM), so no kept spine row holds another numbering. No other
    incremental model stores it. -#}
select
    enterprise_id,
    cast(row_number() over (order by enterprise_id) as integer) as enterprise_key
from {{ ref('stg_registry__enterprises') }}
