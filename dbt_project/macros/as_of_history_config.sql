{#- The config every per-as-of-date history model shares (watchlist_history,
    watchlist_refreshes, loan_ifrs9_stage_history): re-running D replaces D's rows only,
    --full-refresh never wipes the history, and tag `as_of_history` puts the model in the
    partitioned dbt step (assets/dbt_assets.py). -#}
{% macro as_of_history_config() -%}
  {{ config(
      materialized='incremental',
      unique_key='as_of_date',
      incremental_strategy='delete+insert',
      full_refresh=false,
      on_schema_change='append_new_columns',
      tags=['as_of_history'],
  ) }}
{%- endmacro %}
