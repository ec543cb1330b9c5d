-- The edges guarantor -> borrower that lie on a cycle of the union graph: every enterprise
-- guarantee that was open at some month end <= D. An edge lies on a cycle of a month end's
-- graph only if it lies on a cycle of the union, so the per-month-end circles
-- (int_network__guarantee_circles) need only these edges, a small part of the book.
--
-- Two steps keep it linear in practice at 1M firms: first {{ var('network_trim_passes', 8) }}
-- trimming passes drop edges whose guarantor is guaranteed by nobody or whose borrower
-- guarantees nobody (a cycle edge never is such an edge), which removes chains and trees;
-- then reachability over what is left (recursive CTE, set semantics so cycles terminate):
-- an edge u -> v is on a cycle exactly when v reaches u.

{%- set passes = var('network_trim_passes', 8) | int %}

with recursive edges_0 as materialized (

    select distinct
        guarantor_id as src,
        borrower_id  as dst
    from {{ ref('int_network__guarantees_open') }}
    where is_enterprise_edge

),
{% for i in range(1, passes + 1) %}
edges_{{ i }} as materialized (

    select e.src, e.dst
    from edges_{{ i - 1 }} as e
    where
        e.src in (select p.dst from edges_{{ i - 1 }} as p)
        and e.dst in (select c.src from edges_{{ i - 1 }} as c)

),
{% endfor %}
reach (src, dst) as (

    select src, dst from edges_{{ passes }}

    union

    select r.src, e.dst
    from reach as r
    inner join edges_{{ passes }} as e on r.dst = e.src

)

select
    cast(e.src as varchar) as guarantor_id,
    cast(e.dst as varchar) as borrower_id
from edges_{{ passes }} as e
inner join reach as r on e.dst = r.src and e.src = r.dst
