{#- The as-of date D (contract section 2): dbt var `as_of_date` (unit tests, dbt by hand), else
    the one row of main.dbt_run_context that Python writes before each run
    (assets/core/dbt_project.py: write_run_context), else today (the on-run-start hook creates
    the table with current_date when it is missing). Read from a table, not a var, so the
    nightly date does not change dbt's parse inputs and partial parsing survives from night to
    night. Every model filters "known on or before D" through this one macro. -#}
{% macro as_of_date() -%}
  {%- set v = var('as_of_date', '') -%}
  {%- if v -%} cast('{{ v }}' as date)
  {%- else -%} (select max(rc.as_of_date) from main.dbt_run_context as rc)
  {%- endif -%}
{%- endmacro %}

{#- on-run-start: the run context table exists (today) when no one wrote it. DuckDB runs the
    statements of one hook together; Spark runs one statement per hook and has no `main`
    database until the first hook creates it. -#}
{% macro ensure_run_context_schema() -%}
  create schema if not exists main
{%- endmacro %}

{% macro ensure_run_context() -%}
  create table if not exists main.dbt_run_context as select current_date as as_of_date
  {%- if target.type == 'duckdb' -%}
  ; alter table main.dbt_run_context add column if not exists recompute_from date
  ; alter table main.dbt_run_context add column if not exists network_recompute_from date
  ; alter table main.dbt_run_context add column if not exists previous_as_of date
  ; create table if not exists main.dbt_recompute_enterprises (enterprise_id varchar)
  ; create table if not exists main.dbt_recompute_network_enterprises (enterprise_id varchar)
  ; create table if not exists main.dbt_recompute_loans (loan_id varchar)
  ; create table if not exists main.dbt_pd_champion (score_sql varchar)
  {%- endif -%}
{%- endmacro %}

{#- The SQL scoring the champion PD scorecard in use, which the Dagster step stores before
    each dbt build (assets/core/dbt_project.py: write_pd_champion, from
    assets.scorecard.fit.champion_pd_sql): '' with no champion, at parse time, on another
    engine, and when no step stored one (dbt by hand on a fresh file). Read from a table at
    execution, not from a var, so a newly promoted champion leaves dbt's parse inputs, and
    with them the partial parse, unchanged. -#}
{% macro pd_champion_sql() -%}
  {%- if not execute or target.type != 'duckdb' -%}{{ return('') }}{%- endif -%}
  {%- set rows = run_query(
        "select coalesce(max(score_sql), '') from main.dbt_pd_champion").rows -%}
  {{- return(rows[0][0]) -}}
{%- endmacro %}
