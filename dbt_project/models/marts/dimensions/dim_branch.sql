-- One row per branch: the bank's reference table (seed `branches`) plus any branch id that
-- appears in the loans but not in it yet (name null: the reports then show the id).
with loan_branches as (
    select distinct branch_id
    from {{ ref('stg_core_banking__loans') }}
    where branch_id is not null
)

select
    cast(coalesce(b.branch_id, l.branch_id) as varchar) as branch_id,
    cast(b.branch_name as varchar)                      as branch_name,
    cast(b.region as varchar)                           as region,
    cast(b.city as varchar)                             as city,
    b.branch_id is not null                             as in_reference,
    l.branch_id is not null                             as has_loans
from {{ ref('branches') }} as b
full outer join loan_branches as l on b.branch_id = l.branch_id
