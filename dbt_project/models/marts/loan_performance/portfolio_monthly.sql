-- portfolio_monthly (contract section 4): month end x branch x industry, as known on D.
-- loans / outstanding_principal / npl_principal come from the rows of fct_loan_month_end
-- (non-performing = final risk class substandard, doubtful or loss, i.e. after the
-- whole-borrower rule); default_count counts loans whose default day falls in that calendar
-- month, also when the loan has no fct row at that month end (settled within the month).

with loan_month_ends as (

    select * from {{ ref('fct_loan_month_end') }}

),

enterprises as (

    select enterprise_id, industry_code from {{ ref('stg_registry__enterprises') }}

),

balances as (

    select
        f.month_end,
        f.branch_id,
        e.industry_code,
        count(*)                                             as loans,
        sum(f.outstanding_principal)                         as outstanding_principal,
        sum(case when f.risk_class in ('substandard', 'doubtful', 'loss')
                 then f.outstanding_principal else 0 end)    as npl_principal
    from loan_month_ends as f
    left join enterprises as e on e.enterprise_id = f.enterprise_id
    group by 1, 2, 3

),

defaults as (

    select
        cast(last_day(d.default_date) as date) as month_end,
        d.branch_id,
        e.industry_code,
        count(*)                               as default_count
    from {{ ref('fct_loan_defaults') }} as d
    left join enterprises as e on e.enterprise_id = d.enterprise_id
    where last_day(d.default_date) <= {{ as_of_date() }}
    group by 1, 2, 3

),

joined as (

    select
        coalesce(b.month_end, d.month_end)           as month_end,
        coalesce(b.branch_id, d.branch_id)           as branch_id,
        coalesce(b.industry_code, d.industry_code)   as industry_code,
        coalesce(b.loans, 0)                         as loans,
        coalesce(b.outstanding_principal, 0)         as outstanding_principal,
        coalesce(b.npl_principal, 0)                 as npl_principal,
        coalesce(d.default_count, 0)                 as default_count
    from balances as b
    full outer join defaults as d
        on b.month_end = d.month_end
        and b.branch_id is not distinct from d.branch_id
        and b.industry_code is not distinct from d.industry_code

)

select
    cast(month_end as date)                                   as month_end,
    cast(branch_id as varchar)                                as branch_id,
    cast(industry_code as varchar)                            as industry_code,
    cast(loans as integer)                                    as loans,
    cast(outstanding_principal as decimal(18, 2))             as outstanding_principal,
    cast(npl_principal as decimal(18, 2))                     as npl_principal,
    cast(case
        when outstanding_principal > 0
            then round(cast(npl_principal as double) / cast(outstanding_principal as double), 6)
    end as decimal(9, 6))                                     as npl_ratio,
    cast(default_count as integer)                            as default_count
from joined
