{#- The as-of date D (contract section 2): dbt var `as_of_date`, else env RISK_AS_OF, else
    today. Every model filters "known on or before D" through this one macro. -#}
{% macro as_of_date() -%}
  {%- set v = var('as_of_date', '') or env_var('RISK_AS_OF', '') -%}
  {%- if v -%} cast('{{ v }}' as date) {%- else -%} current_date {%- endif -%}
{%- endmacro %}
