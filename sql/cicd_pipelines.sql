-- One row per pipeline definition of each repository's bitbucket-pipelines.yml (default, each
-- branch / pull-request / tag pattern, each custom pipeline), with its steps, images, pipes,
-- deployments and runners, and the result of its last run. A file that could not be parsed safely
-- gives one row with parse_error.
-- depends: pipeline_definitions, raw_pipeline_runs, raw_environments
-- column: connection: connection the definition was read through (the first, by name, when several see it)
-- column: workspace: workspace slug
-- column: repository_uuid: repository {uuid}
-- column: repository: repository slug
-- column: repository_full_name: workspace/slug (a slug alone is ambiguous: two workspaces may both have it)
-- column: main_commit: main-branch commit the file was read at
-- column: pipeline_key: selector and pattern, e.g. `default`, `branches:main`, `custom:deploy`
-- column: selector_type: default | branches | pull-requests | tags | bookmarks | custom
-- column: selector_pattern: branch, tag or pull-request glob, or custom pipeline name (null for default)
-- column: imported: shared pipeline this definition imports (its steps live in another repository)
-- column: step_count: steps, counting those inside parallel groups and stages
-- column: steps: step names in order (`step N` when unnamed)
-- column: images: build images used (a step's own, else the file's global image)
-- column: pipes: pipes used, as written (e.g. `atlassian/aws-s3-deploy:1.1.0`)
-- column: deployments: deployment environments the steps deploy to
-- column: production_deployments: the deployments that are production (environment type Production, or named prod…/live)
-- column: deploys_to_production: at least one step deploys to production
-- column: manual_steps: steps with `trigger: manual`
-- column: runners: runner label sets (`runs-on`), e.g. `self.hosted+linux`
-- column: uses_self_hosted_runner: a step runs on a self-hosted runner
-- column: services: service containers used (docker, databases…)
-- column: last_run_state: state of the latest run for this selector (COMPLETED, IN_PROGRESS…)
-- column: last_run_result: result of that run (SUCCESSFUL, FAILED, STOPPED…)
-- column: last_run_at: when that run was created
-- column: last_run_build_number: its build number
-- column: parse_error: why the file could not be read (the other columns are then null)
WITH definitions AS (
    SELECT *
    FROM pipeline_definitions
    QUALIFY row_number() OVER (PARTITION BY repository_uuid, pipeline_key ORDER BY connection) = 1
),

environments AS (
    SELECT repository_uuid, lower(name) AS name, bool_or(environment_type = 'Production') AS is_production
    FROM raw_environments
    GROUP BY ALL
),

deployments AS (
    SELECT repository_uuid, pipeline_key, unnest(deployments) AS deployment
    FROM definitions
),

production AS (
    SELECT d.repository_uuid, d.pipeline_key,
           list(DISTINCT d.deployment ORDER BY d.deployment) FILTER (
               WHERE coalesce(e.is_production, regexp_matches(lower(d.deployment), '^(prod|prd|live)'))
           ) AS production_deployments
    FROM deployments AS d
    LEFT JOIN environments AS e ON e.repository_uuid = d.repository_uuid AND e.name = lower(d.deployment)
    GROUP BY ALL
),

last_runs AS (
    SELECT repository_uuid, selector_type, coalesce(selector_pattern, '') AS selector_pattern,
           state, result, created_on, build_number
    FROM raw_pipeline_runs
    QUALIFY row_number() OVER (PARTITION BY repository_uuid, selector_type, coalesce(selector_pattern, '')
                               ORDER BY created_on DESC NULLS LAST, build_number DESC) = 1
)

SELECT
    d.connection, d.workspace, d.repository_uuid, d.repository,
    d.workspace || '/' || d.repository AS repository_full_name, d.main_commit,
    d.pipeline_key, d.selector_type, d.selector_pattern, d.imported,
    d.step_count, d.steps, d.images, d.pipes, d.deployments,
    coalesce(p.production_deployments, []) AS production_deployments,
    len(coalesce(p.production_deployments, [])) > 0 AS deploys_to_production,
    d.manual_steps, d.runners,
    list_bool_or([r LIKE '%self.hosted%' FOR r IN d.runners]) IS TRUE AS uses_self_hosted_runner,
    d.services,
    r.state AS last_run_state, r.result AS last_run_result, r.created_on AS last_run_at,
    r.build_number AS last_run_build_number,
    d.parse_error
FROM definitions AS d
LEFT JOIN production AS p USING (repository_uuid, pipeline_key)
LEFT JOIN last_runs AS r
    ON r.repository_uuid = d.repository_uuid
    AND r.selector_type = d.selector_type
    AND r.selector_pattern = coalesce(d.selector_pattern, '')
