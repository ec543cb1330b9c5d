{#- Annual tax credit ratings, renamed and cast only, plus an ordinal rank
    (A=1 best, B=2, M=3 (new taxpayer), C=4, D=5 worst). -#}
with source as (
    select * from {{ source('tax', 'tax_ratings') }}
)

select
    cast(enterprise_id as varchar)  as enterprise_id,
    cast(year as integer)           as year,
    cast(rating as varchar)         as rating,
    cast(case rating
        when 'A' then 1 when 'B' then 2 when 'M' then 3 when 'C' then 4 when 'D' then 5
    end as integer)                 as rating_rank
from source
