-- One row per enterprise of the registry, without personal data (no legal_rep_* column), with
-- its industry's name and its home branch: the branch of its most recently disbursed loan
-- on or before D (null for a firm without a loan).
with latest_loan as (
    select
        enterprise_id,
        {{ arg_max_by('branch_id', ['disbursement_date', 'loan_id']) }} as home_branch_id,
        count(*)                                         as loans_disbursed,
        min(disbursement_date)                           as first_disbursement_date
    from {{ ref('stg_core_banking__loans') }}
    where disbursement_date <= {{ as_of_date() }}
    group by enterprise_id
)

select
    cast(e.enterprise_id as varchar)                    as enterprise_id,
    cast(e.name as varchar)                             as name,
    cast(e.industry_code as varchar)                    as industry_code,
    cast(i.industry_name_zh as varchar)                 as industry_name_zh,
    cast(i.industry_name_en as varchar)                 as industry_name_en,
    cast(e.region_code as varchar)                      as region_code,
    cast(e.established_date as date)                    as established_date,
    cast(e.registered_capital as decimal(18, 2))        as registered_capital,
    cast(e.employees as integer)                        as employees,
    cast(e.size_class as varchar)                       as size_class,
    cast(e.status as varchar)                           as status,
    cast(l.home_branch_id as varchar)                   as home_branch_id,
    cast(coalesce(l.loans_disbursed, 0) as integer)     as loans_disbursed,
    cast(l.first_disbursement_date as date)             as first_disbursement_date
from {{ ref('stg_registry__enterprises') }} as e
left join {{ ref('dim_industry') }} as i on e.industry_code = i.industry_code
left join latest_loan as l on e.enterprise_id = l.enterprise_id
