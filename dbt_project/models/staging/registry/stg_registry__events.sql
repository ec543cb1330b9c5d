-- One row per registry/court/administrative event. No as-of filter here.
select
    cast(event_id as varchar)          as event_id,
    cast(enterprise_id as varchar)     as enterprise_id,
    cast(event_date as date)           as event_date,
    cast(event_type as varchar)        as event_type,
    cast(amount as decimal(18, 2))     as amount,
    cast(description as varchar)       as description,
    cast(_source_file as varchar)      as _source_file
from {{ source('registry', 'registry_events') }}
