{#- Borrowing with this bank per enterprise per month end, from fct_loan_month_end (which is
    point in time by construction) and the contractual schedule. Principal due in the next
    90 days: installments with due_date in (me, me + 90] of the loans on the books at me.
    Bullet principal maturing in the next 180 days: the outstanding principal of the
    interest-only bullet loans not in default whose maturity_date is in (me, me + 180], the
    refinancing a firm must find in one payment (liquidity risk). -#}
{{ config(materialized=month_end_materialization(), incremental_strategy='replace_from_month_end', on_schema_change='fail') }}
{%- if recompute_nothing() %}
select * from {{ this }}
where false
{%- else %}
with spine as (
    select enterprise_id, enterprise_key, month_end from {{ ref('int_enterprise__month_spine') }}
    {{- recompute_only_enterprises('enterprise_id') }}
),

loan_months as (
    select
        lm.loan_id,
        lm.enterprise_id,
        lm.month_end,
        lm.outstanding_principal,
        lm.dpd,
        lm.is_default,
        lm.maturity_date,
        coalesce(l.repayment_method = 'interest_only_bullet', false) as is_bullet
    from {{ ref('fct_loan_month_end') }} as lm
    left join {{ ref('stg_core_banking__loans') }} as l on l.loan_id = lm.loan_id
    where lm.month_end <= {{ as_of_date() }}
    {{- recompute_only_enterprises('lm.enterprise_id', 'and') }}
),

per_month as (
    select
        enterprise_id,
        month_end,
        sum(outstanding_principal)                             as outstanding_principal,
        count(*) filter (where outstanding_principal > 0)     as loans_outstanding,
        max(dpd)                                               as dpd_max,
        bool_or(is_default)                                    as any_default,
        coalesce(sum(case
            when is_bullet and not is_default
                and maturity_date > month_end and maturity_date <= month_end + 180
                then outstanding_principal
        end), 0)                                               as bullet_principal_due_next_180d
    from loan_months
    group by 1, 2
),

-- each installment is due in (me, me + 90] for at most the 4 month ends before its due date
installment_month_ends as (
    select
        i.loan_id,
        i.due_date,
        i.principal_due,
        cast(last_day(i.due_date - to_months(k.k)) as date) as month_end
    from {{ ref('stg_core_banking__installments') }} as i
    cross join (select unnest([1, 2, 3, 4]) as k) as k
    {%- if only_some_enterprises() %}
    where i.loan_id in (select loan_id from loan_months)
    {%- endif %}
),

due_90d as (
    select lm.enterprise_id, lm.month_end, sum(ime.principal_due) as principal_due_next_90d
    from installment_month_ends as ime
    inner join loan_months as lm
        on lm.loan_id = ime.loan_id and lm.month_end = ime.month_end
    where ime.due_date > ime.month_end and ime.due_date <= ime.month_end + 90
    group by 1, 2
),

base as (
    select
        s.enterprise_id,
        s.enterprise_key,
        s.month_end,
        coalesce(p.outstanding_principal, 0) as outstanding_principal,
        coalesce(p.loans_outstanding, 0)     as loans_outstanding,
        coalesce(p.dpd_max, 0)               as dpd_max,
        coalesce(p.any_default, false)       as any_default,
        coalesce(d.principal_due_next_90d, 0) as principal_due_next_90d,
        coalesce(p.bullet_principal_due_next_180d, 0) as bullet_principal_due_next_180d
    from spine as s
    left join per_month as p on p.enterprise_id = s.enterprise_id and p.month_end = s.month_end
    left join due_90d as d on d.enterprise_id = s.enterprise_id and d.month_end = s.month_end
)

select
    enterprise_id,
    month_end,
    cast(outstanding_principal as decimal(18, 2))  as outstanding_principal,
    cast(loans_outstanding as integer)             as loans_outstanding,
    cast(dpd_max as integer)                       as dpd_max,
    cast(max(dpd_max) over (partition by enterprise_key order by month_end
        rows between 11 preceding and current row) as integer) as dpd_max_12m,
    bool_or(any_default) over (partition by enterprise_key order by month_end
        rows between unbounded preceding and current row) as is_default,
    cast(principal_due_next_90d as decimal(18, 2)) as principal_due_next_90d,
    cast(bullet_principal_due_next_180d as decimal(18, 2)) as bullet_principal_due_next_180d
from base
{%- endif %}
