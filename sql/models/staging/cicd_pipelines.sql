WITH definitions AS (
    SELECT *
    FROM {{ invoker_input('pipeline_definitions') }}
    QUALIFY row_number() OVER (PARTITION BY repository_uuid, pipeline_key ORDER BY connection) = 1
),

environments AS (
    SELECT repository_uuid, lower(name) AS name, bool_or(environment_type = 'Production') AS is_production
    FROM {{ source('lake', 'raw_environments') }}
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
    FROM {{ source('lake', 'raw_pipeline_runs') }}
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
