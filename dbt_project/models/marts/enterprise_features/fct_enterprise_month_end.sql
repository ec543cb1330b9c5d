{#- Enterprise early-warning features: one row per enterprise per month end of the calendar
    (int_calendar__month_ends, month ends <= D), from the enterprise's first data month on.
    Every value at month_end uses only what was known at that month end (and at D). No
    as_of_date column: a stored row changes only when its month end is recomputed.
    Definitions: _marts__enterprise_models.yml. -#}
{%- set n_buckets = var('enterprise_buckets', 16) | int -%}
{%- set hooks = [] -%}
{%- for b in range(1, n_buckets) -%}
  {%- do hooks.append(
        'insert into {{ this }} by name {{ ef_enterprise_month_end_select(' ~ b ~ ', '
        ~ n_buckets ~ ') }}') -%}
{%- endfor -%}
{{ config(post_hook=hooks, materialized=month_end_materialization(),
          incremental_strategy='replace_from_month_end', on_schema_change='fail') }}

{{ ef_enterprise_month_end_select(0, n_buckets) }}
