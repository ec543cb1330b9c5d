{#- SQL that differs between engines, behind adapter.dispatch (namespace sme_risk).

    The models run on DuckDB (the warehouse) and on Apache Spark (dbt-spark, `make
    test-spark`). Each macro below has a `duckdb__` form, which renders exactly the SQL the
    models had before it existed (so DuckDB results stay byte-identical), a `default__` form
    in portable SQL, and a `spark__` form where Spark needs its own spelling.

    sqlfluff's jinja templater has no `adapter`: there the dispatchers render the DuckDB form,
    which is the dialect the linter checks. -#}


{#- Start of a 'YYYY-MM' period, as a date expression. -#}
{% macro period_start(period) -%}
  {%- if adapter is defined -%}
    {{ return(adapter.dispatch('period_start', 'sme_risk')(period)) }}
  {%- else -%}
    {{ return(duckdb__period_start(period)) }}
  {%- endif -%}
{%- endmacro %}

{% macro default__period_start(period) -%}
  cast({{ period }} || '-01' as date)
{%- endmacro %}

{% macro duckdb__period_start(period) -%}
  strptime({{ period }} || '-01', '%Y-%m-%d')
{%- endmacro %}

{% macro spark__period_start(period) -%}
  to_date({{ period }} || '-01', 'yyyy-MM-dd')
{%- endmacro %}


{#- A date as its 'YYYY-MM' period text. -#}
{% macro format_period(date_expr) -%}
  {%- if adapter is defined -%}
    {{ return(adapter.dispatch('format_period', 'sme_risk')(date_expr)) }}
  {%- else -%}
    {{ return(duckdb__format_period(date_expr)) }}
  {%- endif -%}
{%- endmacro %}

{% macro default__format_period(date_expr) -%}
  substring(cast({{ date_expr }} as varchar), 1, 7)
{%- endmacro %}

{% macro duckdb__format_period(date_expr) -%}
  strftime({{ date_expr }}, '%Y-%m')
{%- endmacro %}

{% macro spark__format_period(date_expr) -%}
  date_format({{ date_expr }}, 'yyyy-MM')
{%- endmacro %}


{#- Whole days from `earlier` to `later` (both DATE), as an integer expression (negative when
    `later` is before `earlier`). DuckDB's date - date is already an integer; Spark's is an
    INTERVAL DAY, which does not mix with integers in a CASE. -#}
{% macro days_between(later, earlier) -%}
  {%- if adapter is defined -%}
    {{ return(adapter.dispatch('days_between', 'sme_risk')(later, earlier)) }}
  {%- else -%}
    {{ return(duckdb__days_between(later, earlier)) }}
  {%- endif -%}
{%- endmacro %}

{% macro default__days_between(later, earlier) -%}
  {{ later }} - {{ earlier }}
{%- endmacro %}

{% macro duckdb__days_between(later, earlier) -%}
  {{ later }} - {{ earlier }}
{%- endmacro %}

{% macro spark__days_between(later, earlier) -%}
  datediff({{ later }}, {{ earlier }})
{%- endmacro %}


{#- A FROM item with one row per month start from `first_month` to `last_month` (DATE
    expressions, first days of months), both included: `<alias>(month_start)`. It may refer to
    columns of the FROM items before it (written after a comma). -#}
{% macro month_starts(first_month, last_month, alias) -%}
  {%- if adapter is defined -%}
    {{ return(adapter.dispatch('month_starts', 'sme_risk')(first_month, last_month, alias)) }}
  {%- else -%}
    {{ return(duckdb__month_starts(first_month, last_month, alias)) }}
  {%- endif -%}
{%- endmacro %}

{% macro default__month_starts(first_month, last_month, alias) -%}
  {#- PostgreSQL's set-returning generate_series, called in FROM (implicitly lateral). -#}
  generate_series(
            cast({{ first_month }} as timestamp),
            cast({{ last_month }} as timestamp),
            interval '1 month'
        ) as {{ alias }}(month_start)
{%- endmacro %}

{% macro duckdb__month_starts(first_month, last_month, alias) -%}
  unnest(generate_series(
            cast({{ first_month }} as timestamp),
            cast({{ last_month }} as timestamp),
            interval 1 month
        )) as {{ alias }}(month_start)
{%- endmacro %}

{% macro spark__month_starts(first_month, last_month, alias) -%}
  lateral (
            select explode(sequence(
                cast({{ first_month }} as date),
                cast({{ last_month }} as date),
                interval 1 month
            )) as month_start
        ) as {{ alias }}
{%- endmacro %}


{#- `left_rel AS left_alias ASOF LEFT JOIN right_rel AS right_alias`, on equal `by` columns
    and `left_alias.left_key <op> right_alias.right_key`, where op is '<' or '<=': each left
    row meets the right row of the same `by` with the smallest right_key above (or, for '<=',
    at or above) its left_key, or no row. Renders the FROM clause's join (no leading FROM).

    DuckDB has ASOF joins. The portable form ranks the keys of both sides per `by` in one
    sorted pass (no per-row range join, so it scales like the ASOF join) and joins the right
    row back on its key: right_key must be unique within `by` (the callers' keys are: a
    loan's cumulative payments grow with every payment, amounts > 0; settlement dates are
    grouped). -#}
{% macro asof_left_join(left_rel, left_alias, right_rel, right_alias, by, left_key, op, right_key) -%}
  {%- if op not in ('<', '<=') -%}
    {{ exceptions.raise_compiler_error("asof_left_join: op must be '<' or '<=', not " ~ op) }}
  {%- endif -%}
  {%- if adapter is defined -%}
    {{ return(adapter.dispatch('asof_left_join', 'sme_risk')(
        left_rel, left_alias, right_rel, right_alias, by, left_key, op, right_key)) }}
  {%- else -%}
    {{ return(duckdb__asof_left_join(
        left_rel, left_alias, right_rel, right_alias, by, left_key, op, right_key)) }}
  {%- endif -%}
{%- endmacro %}

{% macro duckdb__asof_left_join(left_rel, left_alias, right_rel, right_alias, by, left_key, op, right_key) -%}
  {{ left_rel }} as {{ left_alias }}
    asof left join {{ right_rel }} as {{ right_alias }}
        on {{ left_alias }}.{{ by }} = {{ right_alias }}.{{ by }}
        and {{ left_alias }}.{{ left_key }} {{ op }} {{ right_alias }}.{{ right_key }}
{%- endmacro %}

{% macro default__asof_left_join(left_rel, left_alias, right_rel, right_alias, by, left_key, op, right_key) -%}
  {#- In key order, a right key equal to a left key sorts after it for '<=' (it matches) and
      before it for '<' (it does not); each left key takes the smallest right key after it. -#}
  {%- set right_first = 0 if op == '<' else 1 -%}
  {{ left_rel }} as {{ left_alias }}
    left join (
        select asof_keys.asof_by, asof_keys.asof_key, asof_keys.asof_next_key
        from (
            select
                asof_keys.asof_by,
                asof_keys.asof_key,
                asof_keys.asof_is_left,
                min(case when asof_keys.asof_is_left = 0 then asof_keys.asof_key end) over (
                    partition by asof_keys.asof_by
                    order by asof_keys.asof_key, asof_keys.asof_sort
                    rows between current row and unbounded following
                ) as asof_next_key
            from (
                select distinct {{ by }} as asof_by, {{ left_key }} as asof_key,
                    1 as asof_is_left, {{ 1 - right_first }} as asof_sort
                from {{ left_rel }}
                union all
                select {{ by }} as asof_by, {{ right_key }} as asof_key,
                    0 as asof_is_left, {{ right_first }} as asof_sort
                from {{ right_rel }}
            ) as asof_keys
        ) as asof_keys
        where asof_keys.asof_is_left = 1
    ) as {{ left_alias }}_asof
        on {{ left_alias }}_asof.asof_by = {{ left_alias }}.{{ by }}
        and {{ left_alias }}_asof.asof_key = {{ left_alias }}.{{ left_key }}
    left join {{ right_rel }} as {{ right_alias }}
        on {{ right_alias }}.{{ by }} = {{ left_alias }}.{{ by }}
        and {{ right_alias }}.{{ right_key }} = {{ left_alias }}_asof.asof_next_key
{%- endmacro %}


{#- The `value` of the row with the greatest `keys` (a list of expressions, compared in order)
    in the group. -#}
{% macro arg_max_by(value, keys) -%}
  {%- if adapter is defined -%}
    {{ return(adapter.dispatch('arg_max_by', 'sme_risk')(value, keys)) }}
  {%- else -%}
    {{ return(duckdb__arg_max_by(value, keys)) }}
  {%- endif -%}
{%- endmacro %}

{% macro default__arg_max_by(value, keys) -%}
  {{ exceptions.raise_compiler_error("arg_max_by: no portable SQL; add " ~ adapter.type() ~ "__arg_max_by") }}
{%- endmacro %}

{% macro duckdb__arg_max_by(value, keys) -%}
  arg_max({{ value }}, ({{ keys | join(', ') }}))
{%- endmacro %}

{% macro spark__arg_max_by(value, keys) -%}
  max_by({{ value }}, struct({{ keys | join(', ') }}))
{%- endmacro %}


{#- `materialized` in `with x as materialized (...)`: DuckDB computes the CTE once before the
    joins that read it (its optimizer would otherwise reorder them); other engines plan the
    CTE as they see fit. -#}
{% macro materialized_cte() -%}
  {%- if adapter is defined -%}
    {{ return(adapter.dispatch('materialized_cte', 'sme_risk')()) }}
  {%- else -%}
    {{ return(duckdb__materialized_cte()) }}
  {%- endif -%}
{%- endmacro %}

{% macro default__materialized_cte() -%}
{%- endmacro %}

{% macro duckdb__materialized_cte() -%}
  materialized
{%- endmacro %}
