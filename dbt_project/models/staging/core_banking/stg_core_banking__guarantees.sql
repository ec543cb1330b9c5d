-- One row per guarantee of a loan (contract section 1). No as-of filter here: a guarantee
-- counts on D when start_date <= D and end_date is null or after D (intermediate/network).
select
    cast(guarantee_id as varchar)             as guarantee_id,
    cast(loan_id as varchar)                  as loan_id,
    cast(guarantor_type as varchar)           as guarantor_type,
    cast(guarantor_id as varchar)             as guarantor_id,
    cast(guaranteed_amount as decimal(18, 2)) as guaranteed_amount,
    cast(start_date as date)                  as start_date,
    cast(end_date as date)                    as end_date,
    cast(_source_file as varchar)             as _source_file
from {{ source('core_banking', 'guarantees') }}
