-- One row per payment received. No as-of filter here.
select
    cast(payment_id as varchar)        as payment_id,
    cast(loan_id as varchar)           as loan_id,
    cast(payment_date as date)         as payment_date,
    cast(amount as decimal(18, 2))     as amount,
    cast(_source_file as varchar)      as _source_file
from {{ source('core_banking', 'repayments') }}
