{{ config(materialized='view') }}
SELECT day, application, framework, score, passed, failed, application_is_relevant
FROM {{ ref('compliance_history') }}
QUALIFY row_number() OVER (PARTITION BY day, application, framework ORDER BY recorded_at DESC) = 1
ORDER BY day, application, framework
