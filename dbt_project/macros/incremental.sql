{#- Incremental nights: the month-end facts keep the rows of month ends before the earliest
    month end a night's changes touch (recompute_from) and rebuild the rest.

    Python (assets/refresh_plan.py: recompute_from) derives that month end from the dates of
    the rows that changed since the publish and writes it into main.dbt_run_context; dbt by
    hand (no value written) recomputes everything. A full build (`--full-refresh`, a new
    warehouse, a target other than DuckDB) builds the whole table as before.

    A row kept from an earlier night is left as it is: these models store nothing that
    changes with D alone (no as_of_date, no "as known on D" column), so a night changes
    only the rows it recomputes and the publish can keep or patch the rest. -#}

{#- DuckDB only: dbt-spark has no delete+insert, so on Spark the facts stay full tables. -#}
{% macro month_end_materialization() -%}
  {{- 'table' if target is defined and target.type != 'duckdb' else 'incremental' -}}
{%- endmacro %}

{#- What a scope of incremental models recomputes tonight: (run-context column of its
    earliest month end, table of its enterprises recomputed whole). `facts`: the month-end
    facts; `network`: the network PD facts, which also recompute the neighbours of those
    enterprises, and everything when the champion PD scorecard changed. -#}
{% macro recompute_scope(scope='facts') -%}
  {%- set scopes = {
        'facts': ('recompute_from', 'main.dbt_recompute_enterprises'),
        'network': ('network_recompute_from', 'main.dbt_recompute_network_enterprises'),
      } -%}
  {{- return(scopes[scope]) -}}
{%- endmacro %}

{#- The earliest month end to recompute, as a date literal: date '9999-12-31' when nothing
    changed (no row to recompute), date '0001-01-01' when no refresh wrote one. Read once at
    execution (a literal lets DuckDB skip row groups by month_end). -#}
{% macro recompute_from(scope='facts') -%}
  {%- if not execute -%} date '0001-01-01'
  {%- else -%}
    {%- set rows = run_query(
          "select coalesce(max(" ~ recompute_scope(scope)[0] ~ "), date '0001-01-01')"
          ~ " from main.dbt_run_context"
        ).rows -%}
    date '{{ rows[0][0] }}'
  {%- endif -%}
{%- endmacro %}

{#- An incremental build of an existing table (not a full build, a parse or a dbt unit test,
    which has no relation of its own). -#}
{% macro incremental_run() -%}
  {{- return(execute and this is not none and model.resource_type == 'model'
             and is_incremental()) -}}
{%- endmacro %}

{#- (no month end to recompute, number of enterprises to recompute whole) of this night. -#}
{% macro recompute_state(scope='facts') -%}
  {%- set column, table = recompute_scope(scope) -%}
  {%- set rows = run_query(
        "select coalesce(max(" ~ column ~ "), date '0001-01-01') = date '9999-12-31',"
        ~ " (select count(*) from " ~ table ~ ") from main.dbt_run_context"
      ).rows -%}
  {{- return((rows[0][0], rows[0][1])) -}}
{%- endmacro %}

{#- True when this build of an incremental model has nothing to recompute: the model then
    selects no rows (and computes nothing). -#}
{% macro recompute_nothing(scope='facts') -%}
  {%- if incremental_run() -%}
    {%- set state = recompute_state(scope) -%}
    {{- return(state[0] and state[1] == 0) -}}
  {%- endif -%}
  {{- return(false) -}}
{%- endmacro %}

{#- The rows an incremental build replaces: month ends from recompute_from on, and every
    month end of the scope's enterprises recomputed whole (facts: a status change also sets
    the status shown before it). -#}
{% macro recompute_condition(month_column, enterprise_column, scope='facts') -%}
  ({{ month_column }} >= {{ recompute_from(scope) }} or {{ enterprise_column }} in
      (select re.enterprise_id from {{ recompute_scope(scope)[1] }} as re))
{%- endmacro %}

{#- True when this DuckDB build has a run context (written by the Dagster step before every
    dbt build; absent when dbt runs by hand on a fresh file or on another engine). -#}
{% macro recompute_context_exists() -%}
  {%- if not execute or target.type != 'duckdb' -%}{{ return(false) }}{%- endif -%}
  {%- set rows = run_query(
        "select count(*) from duckdb_tables() where database_name = current_database()"
        ~ " and schema_name = 'main' and table_name in"
        ~ " ('dbt_run_context', 'dbt_recompute_enterprises')"
      ).rows -%}
  {{- return(rows[0][0] == 2) -}}
{%- endmacro %}

{#- The filter of an incremental build (empty in a full build). -#}
{% macro recompute_filter(month_column, enterprise_column='enterprise_id', scope='facts') -%}
  {%- if incremental_run() %} and {{ recompute_condition(month_column, enterprise_column, scope) }}
  {%- endif -%}
{%- endmacro %}

{#- For models whose every value is computed per enterprise (windows partitioned by
    enterprise): when no month end is recomputed, only the enterprises to recompute whole
    are read (` where ...`, or ` and ...` after a where of the caller's; empty otherwise). -#}
{% macro recompute_only_enterprises(enterprise_column, keyword='where') -%}
  {%- if only_some_enterprises() %}
    {{ keyword }} {{ enterprise_column }} in (select re.enterprise_id from main.dbt_recompute_enterprises as re)
  {%- endif -%}
{%- endmacro %}

{#- True when this incremental build recomputes no month end, only some enterprises whole. -#}
{% macro only_some_enterprises() -%}
  {{- return(incremental_run() and recompute_state()[0]) -}}
{%- endmacro %}

{#- Strategy `replace_from_month_end` (config incremental_strategy): delete the rows being
    recomputed, insert the new ones (a model may compute more: its windows need the
    history). Month ends before recompute_from stay as built. -#}
{% macro get_incremental_replace_from_month_end_sql(arg_dict, scope='facts') -%}
  {%- set cols = get_quoted_csv(arg_dict['dest_columns'] | map(attribute='name')) -%}
  delete from {{ arg_dict['target_relation'] }}
  where {{ recompute_condition('month_end', 'enterprise_id', scope) }};
  insert into {{ arg_dict['target_relation'] }} ({{ cols }})
  select {{ cols }} from {{ arg_dict['temp_relation'] }}
  where {{ recompute_condition('month_end', 'enterprise_id', scope) }}
{%- endmacro %}

{#- Strategy `replace_network_month_end`: the same for the network PD facts, by the
    `network` scope (a night's firms and their neighbours; all after a new champion). A
    strategy of its own, so a night that recomputes no month-end fact still runs its tests. -#}
{% macro get_incremental_replace_network_month_end_sql(arg_dict) -%}
  {{- get_incremental_replace_from_month_end_sql(arg_dict, 'network') -}}
{%- endmacro %}

{#- int_enterprise__month_spine: the first month end generated for enterprise row `s`: its
    start, or in an incremental build that recomputes month ends, no earlier than
    recompute_from unless the enterprise is recomputed whole (the rows before stay as
    stored). -#}
{% macro spine_first_month_end(s) -%}
  {%- if incremental_run() -%}
    case when {{ s }}.enterprise_id in (select re.enterprise_id from {{ recompute_scope()[1] }} as re)
         then {{ s }}.start_month_end
         else greatest({{ s }}.start_month_end, {{ recompute_from() }}) end
  {%- else -%} {{ s }}.start_month_end
  {%- endif -%}
{%- endmacro %}

{#- Loans (int_loan_installments__settled): a night settles again the loans whose landing rows
    changed (main.dbt_recompute_loans, from refresh_plan) and those that D's move from the
    as-of date the table was built for (run context previous_as_of) reaches. Everything when
    that date is unknown (dbt by hand, a first build) or later than D. -#}
{% macro previous_as_of_known() -%}
  {%- if not incremental_run() -%}{{ return(false) }}{%- endif -%}
  {%- set rows = run_query(
        "select count(*) from main.dbt_run_context"
        ~ " where previous_as_of is not null and previous_as_of <= as_of_date"
      ).rows -%}
  {{- return(rows[0][0] > 0) -}}
{%- endmacro %}

{% macro previous_as_of() -%}
  (select max(rc.previous_as_of) from main.dbt_run_context as rc)
{%- endmacro %}

{#- The loans a night settles again: rows changed since the publish, and loans disbursed,
    paid, or 91 days past a due date between previous_as_of and D. -#}
{% macro loans_settled_again() -%}
    select rl.loan_id from main.dbt_recompute_loans as rl
    union
    select ln.loan_id from {{ ref('stg_core_banking__loans') }} as ln
    where ln.disbursement_date > {{ previous_as_of() }}
      and ln.disbursement_date <= {{ as_of_date() }}
    union
    select rp.loan_id from {{ ref('stg_core_banking__repayments') }} as rp
    where rp.payment_date > {{ previous_as_of() }} and rp.payment_date <= {{ as_of_date() }}
    union
    select it.loan_id from {{ ref('stg_core_banking__installments') }} as it
    where it.due_date + 91 > {{ previous_as_of() }} and it.due_date + 91 <= {{ as_of_date() }}
{%- endmacro %}

{#- Strategy `replace_loans`: delete every row of the loans settled again (those the model
    computed, and changed loans that now have no row: a schedule or disbursement moved), then
    insert what the model computed; everything when previous_as_of is unknown. -#}
{% macro get_incremental_replace_loans_sql(arg_dict) -%}
  {{- delete_then_insert_sql(arg_dict,
        "loan_id in (select t.loan_id from " ~ arg_dict['temp_relation'] ~ " as t)"
        ~ " or loan_id in (select rl.loan_id from main.dbt_recompute_loans as rl)"
        if previous_as_of_known() else none) -}}
{%- endmacro %}

{#- The strategies below: delete the stored rows matching `delete_where` (every row when it
    is none), then insert every row the model computed. -#}
{% macro delete_then_insert_sql(arg_dict, delete_where=none) -%}
  {%- set cols = get_quoted_csv(arg_dict['dest_columns'] | map(attribute='name')) -%}
  delete from {{ arg_dict['target_relation'] }}
  {%- if delete_where is not none %}
  where {{ delete_where }}
  {%- endif %};
  insert into {{ arg_dict['target_relation'] }} ({{ cols }})
  select {{ cols }} from {{ arg_dict['temp_relation'] }}
{%- endmacro %}

{#- fct_enterprise_outcomes: the enterprises a night recomputes whole. Their loan rows changed
    (fct_loan_month_end's recompute condition, in its new version and in the stored outcomes),
    their default date may have (a loan settled again), or D's move from previous_as_of closed
    the 6- or 12-month window of one of their month ends. -#}
{% macro outcome_enterprises() -%}
    select re.enterprise_id from main.dbt_recompute_enterprises as re
    union
    select lm.enterprise_id from {{ ref('fct_loan_month_end') }} as lm
    where lm.month_end >= {{ recompute_from() }}
    union
    select st.enterprise_id from {{ this }} as st
    where st.month_end >= {{ recompute_from() }}
       or (last_day(st.month_end + interval 6 month) > {{ previous_as_of() }}
           and last_day(st.month_end + interval 6 month) <= {{ as_of_date() }})
       or (last_day(st.month_end + interval 12 month) > {{ previous_as_of() }}
           and last_day(st.month_end + interval 12 month) <= {{ as_of_date() }})
    union
    select ln.enterprise_id from {{ ref('stg_core_banking__loans') }} as ln
    where ln.loan_id in ({{ loans_settled_again() }})
{%- endmacro %}

{#- Strategy `replace_outcomes`: delete the rows of the enterprises recomputed (an enterprise
    left without loan rows has rows only from recompute_from on, or is recomputed whole), then
    insert what the model computed; everything when previous_as_of is unknown. -#}
{% macro get_incremental_replace_outcomes_sql(arg_dict) -%}
  {{- delete_then_insert_sql(arg_dict,
        "enterprise_id in (select t.enterprise_id from " ~ arg_dict['temp_relation'] ~ " as t)"
        ~ " or month_end >= " ~ recompute_from()
        ~ " or enterprise_id in (select re.enterprise_id"
        ~ " from main.dbt_recompute_enterprises as re)"
        if previous_as_of_known() else none) -}}
{%- endmacro %}

{#- Tables of every month end <= D that read no enterprise's status and nothing dated after the
    last month end (guarantee_exposure, int_network__guarantees_open): a night that recomputes
    no month end cannot change them (a default known tonight is dated after every stored month
    end; guarantees, loans and the registry have no narrower reach and recompute every month
    end). True when this incremental build recomputes no month end: the model then selects
    nothing and the table is kept as stored. -#}
{% macro month_ends_unchanged() -%}
  {{- return(incremental_run() and recompute_state()[0]) -}}
{%- endmacro %}

{#- Strategy `replace_all_month_ends`: a night that recomputes no month end keeps the table;
    any other build replaces every row. -#}
{% macro get_incremental_replace_all_month_ends_sql(arg_dict) -%}
  {{- delete_then_insert_sql(arg_dict, 'false' if month_ends_unchanged() else none) -}}
{%- endmacro %}
