-- One row per loan application. No as-of filter here.
select
    cast(application_id as varchar)            as application_id,
    cast(enterprise_id as varchar)             as enterprise_id,
    cast(application_date as date)             as application_date,
    cast(requested_amount as decimal(18, 2))   as requested_amount,
    cast(requested_term_months as integer)     as requested_term_months,
    cast(requested_product as varchar)         as requested_product,
    cast(purpose as varchar)                   as purpose,
    cast(offered_guarantor_id as varchar)      as offered_guarantor_id,
    cast(_source_file as varchar)              as _source_file
from {{ source('core_banking', 'loan_applications') }}
