SELECT
    application, framework, framework_title,
    count(*) AS controls,
    count(*) FILTER (WHERE status = 'pass') AS passed,
    count(*) FILTER (WHERE status = 'fail') AS failed,
    count(*) FILTER (WHERE status = 'not_evaluable') AS not_evaluable,
    round(100.0 * count(*) FILTER (WHERE status = 'pass')
          / nullif(count(*) FILTER (WHERE status IN ('pass', 'fail')), 0), 1) AS score,
    bool_and(application_is_relevant) AS application_is_relevant
FROM {{ ref('compliance_report') }}
GROUP BY application, framework, framework_title
