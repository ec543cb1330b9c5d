-- One row per contractual installment (raw.repayment_schedule), with its total due.
select
    cast(loan_id as varchar)                                        as loan_id,
    cast(installment_no as integer)                                 as installment_no,
    cast(due_date as date)                                          as due_date,
    cast(principal_due as decimal(18, 2))                           as principal_due,
    cast(interest_due as decimal(18, 2))                            as interest_due,
    cast(principal_due + interest_due as decimal(18, 2))            as amount_due,
    cast(_source_file as varchar)                                   as _source_file
from {{ source('core_banking', 'repayment_schedule') }}
