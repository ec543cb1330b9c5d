{#- Fails for every row where `expression` is not true (NULL counts as failing unless the
    expression handles it). Optional `where` narrows the rows checked. -#}
{% test expression_is_true(model, expression, column_name=none, where_clause=none) %}

select *
from {{ model }}
where not coalesce(({{ expression }}), false)
{%- if where_clause %}
  and ({{ where_clause }})
{%- endif %}

{% endtest %}
