{#- Helpers for the enterprise feature models (prefix ef_). -#}

{#- The last month end on or before the as-of date D. -#}
{% macro ef_last_month_end() -%}
  cast(date_trunc('month', {{ as_of_date() }} + interval 1 day) - interval 1 day as date)
{%- endmacro %}

{#- Month end of a date expression, as DATE. -#}
{% macro ef_month_end(expr) -%}
  cast(last_day({{ expr }}) as date)
{%- endmacro %}

{#- x / y - 1 as DOUBLE, NULL unless y > 0 (and the optional extra condition holds). -#}
{% macro ef_growth(x, y, cond='true') -%}
  case when ({{ cond }}) and {{ y }} > 0 then cast({{ x }} as double) / cast({{ y }} as double) - 1 end
{%- endmacro %}

{#- x / y as DOUBLE, NULL unless y > 0. -#}
{% macro ef_ratio(x, y) -%}
  case when {{ y }} > 0 then cast({{ x }} as double) / cast({{ y }} as double) end
{%- endmacro %}

{#- Months of the 3-month window ending at month end `me` that are not January or February
    (the Chinese New Year season, which moves between the two with the lunar calendar). -#}
{% macro ef_non_cny_months_3m(me) -%}
  (case month({{ me }}) when 1 then 2 when 2 then 1 when 3 then 1 when 4 then 2 else 3 end)
{%- endmacro %}
