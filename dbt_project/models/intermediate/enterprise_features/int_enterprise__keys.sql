{#- One integer key per enterprise, for the enterprise-month models: their group-bys, joins
    and window partitions on a 4-byte key instead of the 18-character credit code run about
    a third faster and spill far less (the code is too long for DuckDB to keep inline).
    A run's own numbering: never stored in an incremental model, which may keep rows built
    on another night. -#}
select
    enterprise_id,
    cast(row_number() over (order by enterprise_id) as integer) as enterprise_key
from {{ ref('stg_registry__enterprises') }}
