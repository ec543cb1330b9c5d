{{ config(materialized='ephemeral') }}
-- Related parties in both directions of every link, with the link's validity
-- (valid_from <= a day < valid_to, open-ended when valid_to is null).
select enterprise_id, related_id, valid_from, valid_to
from {{ ref('int_network__enterprise_links') }}

union all

select related_id as enterprise_id, enterprise_id as related_id, valid_from, valid_to
from {{ ref('int_network__enterprise_links') }}
