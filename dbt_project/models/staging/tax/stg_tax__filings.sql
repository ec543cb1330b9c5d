{#- Tax filings, renamed and cast only. Point-in-time filtering (period_end <= D, or <= the
    month end a feature is computed at) is applied downstream. -#}
with source as (
    select * from {{ source('tax', 'tax_filings') }}
)

select
    cast(enterprise_id as varchar)                                  as enterprise_id,
    cast(period as varchar)                                         as period,
    cast({{ period_start('period') }} as date)             as period_start,
    cast(last_day({{ period_start('period') }}) as date)   as period_end,
    cast(tax_type as varchar)                                       as tax_type,
    cast(taxable_revenue as decimal(18, 2))                         as taxable_revenue,
    cast(tax_payable as decimal(18, 2))                             as tax_payable,
    cast(tax_paid as decimal(18, 2))                                as tax_paid,
    cast(filed_date as date)                                        as filed_date
from source
