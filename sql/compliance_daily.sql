-- Compliance score per day, framework and application: the day's last build in compliance_history.
-- materialized: view
-- depends: compliance_history
-- column: day: the day (UTC)
-- column: application: application
-- column: framework: cis_ssc | ssdf | owasp_cicd
-- column: score: 100 × passed / (passed + failed), one decimal (null: nothing evaluated)
-- column: passed: controls that pass
-- column: failed: controls that fail
-- column: application_is_relevant: false when the application is irrelevant
SELECT day, application, framework, score, passed, failed, application_is_relevant
FROM compliance_history
QUALIFY row_number() OVER (PARTITION BY day, application, framework ORDER BY recorded_at DESC) = 1
ORDER BY day, application, framework
