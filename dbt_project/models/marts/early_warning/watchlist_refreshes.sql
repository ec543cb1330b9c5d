-- depends_on: {{ source('early_warning', 'enterprise_risk_profile_history') }}
{#- One row per refresh (as-of date), listed firms or not: the calendar of refreshes.
    Incremental and never rebuilt by --full-refresh. -#}
{{ config(
    materialized='incremental',
    unique_key='as_of_date',
    incremental_strategy='delete+insert',
    full_refresh=false,
    on_schema_change='append_new_columns',
    tags=['as_of_history'],
) }}

select
    cast({{ as_of_date() }} as date)          as as_of_date,
    cast('{{ var("catalog_version") | replace("'", "''") }}' as varchar) as catalog_version,
    cast(current_timestamp as timestamptz)    as refreshed_at
