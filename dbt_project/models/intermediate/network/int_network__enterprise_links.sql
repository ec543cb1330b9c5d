-- One row per related-party link (contract section 1), a link delivered twice being one
-- link: same_legal_rep and same_controller are undirected, so a link and its reverse are
-- kept once, read from the smaller enterprise_id to the larger (the earliest valid_from and
-- the latest end of the deliveries). Self-links are dropped. No as-of filter here: a link
-- counts on D when valid_from <= D and valid_to is null or after D.

with links as (

    select
        case when relation in ('same_legal_rep', 'same_controller')
            then least(enterprise_id, related_id) else enterprise_id end  as enterprise_id,
        case when relation in ('same_legal_rep', 'same_controller')
            then greatest(enterprise_id, related_id) else related_id end  as related_id,
        relation,
        share,
        valid_from,
        valid_to
    from {{ ref('stg_registry__enterprise_links') }}
    where enterprise_id <> related_id

)

select
    cast(enterprise_id as varchar)                                    as enterprise_id,
    cast(related_id as varchar)                                       as related_id,
    cast(relation as varchar)                                         as relation,
    cast(max(share) as decimal(18, 6))                                as share,
    cast(min(valid_from) as date)                                     as valid_from,
    cast(case when count(valid_to) < count(*) then null else max(valid_to) end as date)
        as valid_to,
    cast(relation in ('same_legal_rep', 'same_controller') as boolean) as is_undirected
from links
group by enterprise_id, related_id, relation
