-- guarantee_exposure (contract section 4): one row per enterprise of the registry x month
-- end <= D at which it has a loan outstanding or gives an open guarantee, as known on D.
-- No as_of_date column: a row changes only when its month end's facts do, so the nightly
-- publish keeps or patches this mart instead of rewriting it (main.published_refresh names D).
-- Guarantees count on a month end when start_date <= month end and end_date is null or
-- after it (int_network__guarantees_open). An enterprise is in default on a month end when
-- one of its loans' default day is on or before it (fct_loan_defaults.default_date).
-- Circles: int_network__guarantee_circles (strongly connected components in SQL). Guarantees
-- given: int_network__guarantees_given (one definition, shared with the features).

-- Kept as stored on a night that recomputes no month end (macro month_ends_unchanged).
{{ config(materialized=month_end_materialization(), incremental_strategy='replace_all_month_ends', on_schema_change='fail') }}
{%- if month_ends_unchanged() %}
select * from {{ this }}
where false
{%- else %}
with enterprises as (

    select enterprise_id from {{ ref('stg_registry__enterprises') }}

),

open_guarantees as (

    select * from {{ ref('int_network__guarantees_open') }}

),

outstanding as (

    select
        enterprise_id,
        month_end,
        sum(outstanding_principal) as outstanding_principal
    from {{ ref('fct_loan_month_end') }}
    where outstanding_principal > 0
    group by enterprise_id, month_end

),

defaults as (

    select
        enterprise_id,
        min(default_date) as default_date
    from {{ ref('fct_loan_defaults') }}
    group by enterprise_id

),

given as (

    select enterprise_id, month_end, guarantees_given
    from {{ ref('int_network__guarantees_given') }}

),

received as (

    select
        borrower_id            as enterprise_id,
        month_end,
        sum(guaranteed_amount) as guarantees_received
    from open_guarantees
    group by borrower_id, month_end

),

counterparties as (

    select borrower_id as enterprise_id, month_end, guarantor_id as counterparty_id
    from open_guarantees
    where is_enterprise_edge

    union

    select guarantor_id as enterprise_id, month_end, borrower_id as counterparty_id
    from open_guarantees
    where is_enterprise_edge

),

counterparties_in_default as (

    select
        c.enterprise_id,
        c.month_end,
        count(distinct c.counterparty_id) as guarantors_in_default
    from counterparties as c
    inner join defaults as d
        on c.counterparty_id = d.enterprise_id and d.default_date <= c.month_end
    group by c.enterprise_id, c.month_end

),

population as (

    select enterprise_id, month_end from outstanding
    union
    select enterprise_id, month_end from given

)

select
    cast(p.enterprise_id as varchar)                           as enterprise_id,
    cast(p.month_end as date)                                  as month_end,
    cast(coalesce(g.guarantees_given, 0) as decimal(18, 2))    as guarantees_given,
    cast(coalesce(r.guarantees_received, 0) as decimal(18, 2)) as guarantees_received,
    cast(coalesce(cd.guarantors_in_default, 0) as integer)     as guarantors_in_default,
    cast(c.circle_id is not null as boolean)                   as in_guarantee_circle,
    cast(c.circle_id as varchar)                               as circle_id,
    cast(coalesce(o.outstanding_principal, 0) as decimal(18, 2)) as outstanding_principal,
    cast(coalesce(d.default_date <= p.month_end, false) as boolean) as is_default
from population as p
inner join enterprises as e on p.enterprise_id = e.enterprise_id
left join outstanding as o on p.enterprise_id = o.enterprise_id and p.month_end = o.month_end
left join given as g on p.enterprise_id = g.enterprise_id and p.month_end = g.month_end
left join received as r on p.enterprise_id = r.enterprise_id and p.month_end = r.month_end
left join counterparties_in_default as cd
    on p.enterprise_id = cd.enterprise_id and p.month_end = cd.month_end
left join {{ ref('int_network__guarantee_circles') }} as c
    on p.enterprise_id = c.enterprise_id and p.month_end = c.month_end
left join defaults as d on p.enterprise_id = d.enterprise_id
{%- endif %}
