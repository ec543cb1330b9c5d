-- One row per delivered related-party link (contract section 1): "enterprise_id is
-- <relation> related_id". No as-of filter and no deduplication of undirected relations here
-- (intermediate/network/int_network__enterprise_links does that).
select
    cast(enterprise_id as varchar)    as enterprise_id,
    cast(related_id as varchar)       as related_id,
    cast(relation as varchar)         as relation,
    cast(share as decimal(18, 6))     as share,
    cast(valid_from as date)          as valid_from,
    cast(valid_to as date)            as valid_to,
    cast(_source_file as varchar)     as _source_file
from {{ source('registry', 'enterprise_links') }}
