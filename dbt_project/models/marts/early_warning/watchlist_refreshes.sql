-- depends_on: {{ source('early_warning', 'enterprise_risk_profile_history') }}
{#- One row per refresh (as-of date), listed firms or not: the calendar of refreshes.
    Incremental and never rebuilt by --full-refresh. -#}
{{ as_of_history_config() }}

select
    cast({{ as_of_date() }} as date)          as as_of_date,
    cast('{{ var("catalog_version") | replace("'", "''") }}' as varchar) as catalog_version,
    cast(current_timestamp as timestamptz)    as refreshed_at
