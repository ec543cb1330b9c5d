{#- Fails for every (enterprise_id, month_end) that occurs more than once: the key of a
    month-end fact mart. Grouped on the two columns (not a concatenated string: 37M rows at
    1M enterprises). On a night that recomputed part of an incremental mart only the keys it
    recomputed are read: a key is recomputed whole or not at all, so every row of a repeated
    key is among them, and the kept rows were checked on the night they were written. A full
    build reads every row (its run context recomputes from the first month end). -#}
{% test unique_enterprise_month_end(model) %}

select
    enterprise_id,
    month_end,
    count(*) as n_rows
from {{ model }}
{%- if recompute_context_exists() %}
where {{ recompute_condition('month_end', 'enterprise_id') }}
{%- endif %}
group by enterprise_id, month_end
having count(*) > 1

{% endtest %}
