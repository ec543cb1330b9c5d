-- One row per enterprise. Personal data (legal_rep_name, legal_rep_id_number) is dropped:
-- only legal_rep_key is kept, a keyed hash (HMAC-SHA256) of the legal representative's id
-- number computed by the ingestion with a key kept outside the repository and outside dbt
-- (assets/core/secrets.py), so models can tell "same person" (e.g. one person behind several
-- borrowers) without exposing who.
select
    cast(enterprise_id as varchar)               as enterprise_id,
    cast(name as varchar)                        as name,
    cast(industry_code as varchar)               as industry_code,
    cast(region_code as varchar)                 as region_code,
    cast(established_date as date)              as established_date,
    cast(registered_capital as decimal(18, 2))   as registered_capital,
    cast(employees as integer)                   as employees,
    cast(size_class as varchar)                  as size_class,
    cast(status as varchar)                      as status,
    cast(legal_rep_key as varchar)               as legal_rep_key,
    cast(_source_file as varchar)                as _source_file
from {{ source('registry', 'enterprises') }}
