-- guarantee_circles: one row per guarantee circle x month end <= D (the strongly connected
-- components of int_network__guarantee_circles), with its members, their outstanding
-- principal at the bank and how many of them are in default on that month end.

with members as (

    select
        c.month_end,
        c.circle_id,
        c.enterprise_id,
        x.outstanding_principal,
        x.is_default
    from {{ ref('int_network__guarantee_circles') }} as c
    left join {{ ref('guarantee_exposure') }} as x
        on c.enterprise_id = x.enterprise_id and c.month_end = x.month_end

),

edges as (

    select
        o.month_end,
        c.circle_id,
        sum(o.guaranteed_amount) as guarantees_within,
        list(distinct o.guarantor_id || '>' || o.borrower_id) as guarantee_edges
    from {{ ref('int_network__guarantees_open') }} as o
    inner join {{ ref('int_network__guarantee_circles') }} as c
        on o.month_end = c.month_end and o.guarantor_id = c.enterprise_id
    inner join {{ ref('int_network__guarantee_circles') }} as b
        on o.month_end = b.month_end and o.borrower_id = b.enterprise_id
            and c.circle_id = b.circle_id
    where o.is_enterprise_edge
    group by o.month_end, c.circle_id

)

select
    cast(m.month_end as date)                                           as month_end,
    cast(m.circle_id as varchar)                                        as circle_id,
    cast(count(*) as integer)                                           as members,
    cast(list(m.enterprise_id order by m.enterprise_id) as varchar [])  as member_ids,
    cast(coalesce(sum(m.outstanding_principal), 0) as decimal(18, 2))   as total_exposure,
    cast(count(*) filter (where m.is_default) as integer)               as members_in_default,
    cast(coalesce(any_value(e.guarantees_within), 0) as decimal(18, 2)) as guarantees_within,
    cast(list_sort(any_value(e.guarantee_edges)) as varchar [])         as guarantee_edges
from members as m
left join edges as e on m.month_end = e.month_end and m.circle_id = e.circle_id
group by m.month_end, m.circle_id
