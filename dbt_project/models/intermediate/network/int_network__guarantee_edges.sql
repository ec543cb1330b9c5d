{{ config(materialized='ephemeral') }}
-- The edges guarantor -> borrower of the guarantee graph at each month end <= D: enterprise
-- guarantees of another firm's loans open that day, their guaranteed amounts summed.
select month_end, guarantor_id, borrower_id, sum(guaranteed_amount) as amount
from {{ ref('int_network__guarantees_open') }}
where is_enterprise_edge
group by month_end, guarantor_id, borrower_id
