{#- Utility bills, renamed and cast only. Point-in-time rules (period_end <= D; paid only when
    paid_date <= D or the month end being computed) are applied downstream. -#}
with source as (
    select * from {{ source('utility', 'utility_bills') }}
)

select
    cast(enterprise_id as varchar)                                  as enterprise_id,
    cast(period as varchar)                                         as period,
    cast({{ period_start('period') }} as date)             as period_start,
    cast(last_day({{ period_start('period') }}) as date)   as period_end,
    cast(utility as varchar)                                        as utility,
    cast(consumption as decimal(18, 6))                             as consumption,
    cast(amount_billed as decimal(18, 2))                           as amount_billed,
    cast(amount_paid as decimal(18, 2))                             as amount_paid,
    cast(paid_date as date)                                         as paid_date
from source
