{#- Spark spells the models' `varchar` (DuckDB's and standard SQL's unbounded text type) as
    `string`: Spark's own VARCHAR needs a length. These overrides of dbt-spark's macros
    (dbt's dispatch looks in the root project first) translate that one type name in the SQL
    a Spark run executes, so the models and their YAML contracts keep one spelling. Only
    `varchar` without a length is rewritten, and only on Spark; the DuckDB target never
    renders these macros. -#}

{% macro spark_type_names(sql) -%}
  {{ return(modules.re.sub('(?i)\\bvarchar\\b(?!\\s*\\()', 'string', sql)) }}
{%- endmacro %}

{#- Models materialized as tables (and the contract check, which runs the same SQL). -#}
{% macro spark__create_table_as(temporary, relation, compiled_code, language='sql') -%}
  {%- if language == 'sql' -%}
    {%- set compiled_code = spark_type_names(compiled_code) -%}
  {%- endif -%}
  {{ return(dbt.spark__create_table_as(temporary, relation, compiled_code, language)) }}
{%- endmacro %}

{#- Models materialized as views (staging). -#}
{% macro spark__create_view_as(relation, sql) -%}
  {{ return(dbt.spark__create_view_as(relation, spark_type_names(sql))) }}
{%- endmacro %}

{#- Casts that dbt writes itself: the contract's columns (`data_type: varchar`), unit-test
    fixtures. -#}
{% macro spark__cast(field, type) -%}
  {{ return(dbt.default__cast(field, spark_type_names(type))) }}
{%- endmacro %}

{#- Seeds: the seed's `column_types` (branches: varchar). -#}
{% macro spark__create_csv_table(model, agate_table) -%}
  {%- set column_types = model['config'].get('column_types') or {} -%}
  {%- for name, type in column_types.items() -%}
    {%- do column_types.update({name: spark_type_names(type)}) -%}
  {%- endfor -%}
  {{ return(dbt.spark__create_csv_table(model, agate_table)) }}
{%- endmacro %}

{#- dbt-spark adds a contract's not-null constraints with ALTER COLUMN, which only Delta
    tables support, and takes a model without `file_format` for Delta; a local session
    writes Parquet. Constraints are added only where file_format delta is configured (a
    cluster with Delta Lake); the data tests check not-null either way. -#}
{% macro spark__persist_constraints(relation, model) -%}
  {%- if config.get('file_format') == 'delta' -%}
    {{ return(dbt.spark__persist_constraints(relation, model)) }}
  {%- endif -%}
{%- endmacro %}
