-- Guarantee circles per month end: the strongly connected components (more than one member)
-- of the directed graph guarantor -> borrower of the enterprise guarantees open at that
-- month end (contract section 4, guarantee_exposure). Only the union graph's cycle edges
-- (int_network__guarantee_cycle_edges) can lie on a month end's cycle, so reachability is
-- computed over those alone, per month end (recursive CTE, set semantics). A firm is in a
-- circle when it reaches itself; its circle is the set of firms it reaches that reach it
-- back; circle_id is the smallest enterprise_id of that set.

with recursive month_edges as materialized (

    select distinct
        o.month_end,
        o.guarantor_id as src,
        o.borrower_id  as dst
    from {{ ref('int_network__guarantees_open') }} as o
    inner join {{ ref('int_network__guarantee_cycle_edges') }} as c
        on o.guarantor_id = c.guarantor_id and o.borrower_id = c.borrower_id
    where o.is_enterprise_edge

),

reach (month_end, src, dst) as (

    select month_end, src, dst from month_edges

    union

    select r.month_end, r.src, e.dst
    from reach as r
    inner join month_edges as e on r.month_end = e.month_end and r.dst = e.src

),

members as (

    -- (month_end, member, other member of its circle), the member itself included
    select a.month_end, a.src as enterprise_id, a.dst as other_id
    from reach as a
    inner join reach as b on a.month_end = b.month_end and a.src = b.dst and a.dst = b.src

)

select
    cast(month_end as date)        as month_end,
    cast(enterprise_id as varchar) as enterprise_id,
    cast(min(other_id) as varchar) as circle_id,
    cast(count(*) as integer)      as circle_members
from members
group by month_end, enterprise_id
