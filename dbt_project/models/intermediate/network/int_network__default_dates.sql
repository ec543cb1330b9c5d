{{ config(materialized='ephemeral') }}
-- Each enterprise's first default day (the earliest of its loans'), as known on D.
select enterprise_id, min(default_date) as default_date
from {{ ref('fct_loan_defaults') }}
group by enterprise_id
