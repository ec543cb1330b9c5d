{#- The firms at the other end of an open enterprise guarantee that meet a condition, per
    enterprise and month end: how many, and the one to name (largest guaranteed amount first,
    then the smallest credit code, so ties name the same firm on every build).
    `other`: 'borrower' (the enterprise guarantees their loans) or 'guarantor' (they guarantee
    the enterprise's loans); `others`: a relation of enterprise_id (alias o) meeting it, joined
    to the edge e by `on`; `rank`: what picks the firm named (highest first); `named`: pairs
    (SQL, column) read from that same firm; `columns`: extra aggregates.
    Reads the caller's CTEs `edges` (int_network__guarantee_edges) and `names`
    (int_network__party_labels). -#}
{% macro guarantee_parties(other, others, on, rank='e.amount', named=[], columns=[]) -%}
    {%- set theirs = other ~ '_id' -%}
    {%- set mine = 'guarantor_id' if other == 'borrower' else 'borrower_id' -%}
    select
        e.{{ mine }}                                            as enterprise_id,
        e.month_end,
        count(*)                                                as parties,
        {%- set pick = 'order by ' ~ rank ~ ' desc, e.' ~ theirs ~ ' asc' %}
        first(coalesce(n.label, '(' || e.{{ theirs }} || ')') {{ pick }}) as party
        {%- for expr, name in named %},
        first({{ expr }} {{ pick }}) as {{ name }}
        {%- endfor %}
        {%- for column in columns %},
        {{ column }}
        {%- endfor %}
    from edges as e
    inner join {{ others }} as o on e.{{ theirs }} = o.enterprise_id and {{ on }}
    left join names as n on e.{{ theirs }} = n.enterprise_id
    group by e.{{ mine }}, e.month_end
{%- endmacro %}
