{{ config(materialized='ephemeral') }}
-- How the network's reasons name another firm: "name (credit code)", or "(credit code)"
-- when the registry has no name.
select enterprise_id, coalesce(name || ' ', '') || '(' || enterprise_id || ')' as label
from {{ ref('stg_registry__enterprises') }}
