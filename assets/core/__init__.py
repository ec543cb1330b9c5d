"""The bottom layer: settings (the RISK_* environment), the warehouse and dbt resources, SQL
literals and metadata helpers. It imports nothing else of the project."""
