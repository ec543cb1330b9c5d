-- One row per outgoing transaction of disbursed loan money. No as-of filter here.
select
    cast(flow_id as varchar)            as flow_id,
    cast(loan_id as varchar)            as loan_id,
    cast(txn_date as date)              as txn_date,
    cast(amount as decimal(18, 2))      as amount,
    cast(counterparty_type as varchar)  as counterparty_type,
    cast(counterparty_id as varchar)    as counterparty_id,
    cast(_source_file as varchar)       as _source_file
from {{ source('core_banking', 'fund_flows') }}
