-- Compliance scores over time: every build appends each application's score per framework (from
-- compliance_scores), so the trend starts with the first build that has this model. Earlier builds kept
-- no control results, so unlike the finding marts this one cannot be backfilled.
-- materialized: append
-- depends: compliance_scores, build_context
-- column: build_id: the build
-- column: recorded_at: the build's now
-- column: day: its day (UTC); several builds a day: compliance_daily keeps the last
-- column: application: application
-- column: framework: cis_ssc | ssdf | owasp_cicd
-- column: framework_title: the framework's name
-- column: passed: controls that pass
-- column: failed: controls that fail
-- column: not_evaluable: controls that could not be evaluated
-- column: score: 100 × passed / (passed + failed), one decimal (null: nothing evaluated)
-- column: application_is_relevant: false when the application is irrelevant
SELECT ctx.build_id, ctx.now AS recorded_at, CAST(ctx.now AS DATE) AS day,
       s.application, s.framework, s.framework_title, s.passed, s.failed, s.not_evaluable, s.score,
       s.application_is_relevant
FROM compliance_scores AS s
CROSS JOIN build_context AS ctx
