-- Guarantees each enterprise gives for other enterprises' loans, per month end <= D: the sum
-- of guaranteed_amount of its open enterprise guarantees on another firm's loan
-- (int_network__guarantees_open, is_enterprise_edge). The one definition of "guarantees
-- given": the features (int_enterprise_month__network) and the mart guarantee_exposure both
-- read it. Only enterprises that give one at the month end have a row.

select
    cast(guarantor_id as varchar)                   as enterprise_id,
    cast(month_end as date)                         as month_end,
    cast(sum(guaranteed_amount) as decimal(18, 2))  as guarantees_given
from {{ ref('int_network__guarantees_open') }}
where is_enterprise_edge
group by guarantor_id, month_end
