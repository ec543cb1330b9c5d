-- One row per loan contract. Rename/cast only: no as-of filter here (intermediate/marts
-- apply "disbursed on or before D").
select
    cast(loan_id as varchar)                 as loan_id,
    cast(enterprise_id as varchar)           as enterprise_id,
    cast(branch_id as varchar)               as branch_id,
    cast(product as varchar)                 as product,
    cast(purpose as varchar)                 as purpose,
    cast(contract_date as date)              as contract_date,
    cast(disbursement_date as date)          as disbursement_date,
    cast(maturity_date as date)              as maturity_date,
    cast(principal as decimal(18, 2))        as principal,
    cast(annual_rate as decimal(18, 6))      as annual_rate,
    cast(repayment_method as varchar)        as repayment_method,
    cast(collateral_type as varchar)         as collateral_type,
    cast(collateral_value as decimal(18, 2)) as collateral_value,
    cast(guarantee_type as varchar)          as guarantee_type,
    cast(guarantee_ratio as decimal(18, 6))  as guarantee_ratio,
    cast(_source_file as varchar)            as _source_file
from {{ source('core_banking', 'loans') }}
