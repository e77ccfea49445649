-- A compliance score per application and framework: the share of its evaluated controls
-- (pass or fail) that pass. Controls that could not be evaluated are counted apart, not as passes.
-- depends: compliance_report
-- column: application: application name
-- column: framework: cis_ssc | ssdf | owasp_cicd
-- column: framework_title: the framework's name
-- column: controls: controls reported for the application
-- column: passed: controls that pass
-- column: failed: controls that fail
-- column: not_evaluable: controls that could not be evaluated
-- column: score: 100 × passed / (passed + failed), one decimal; null when nothing was evaluated
-- column: application_is_relevant: false when the application is irrelevant
SELECT
    application, framework, framework_title,
    count(*) AS controls,
    count(*) FILTER (WHERE status = 'pass') AS passed,
    count(*) FILTER (WHERE status = 'fail') AS failed,
    count(*) FILTER (WHERE status = 'not_evaluable') AS not_evaluable,
    round(100.0 * count(*) FILTER (WHERE status = 'pass')
          / nullif(count(*) FILTER (WHERE status IN ('pass', 'fail')), 0), 1) AS score,
    bool_and(application_is_relevant) AS application_is_relevant
FROM compliance_report
GROUP BY application, framework, framework_title
