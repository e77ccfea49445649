WITH selected AS (
    SELECT repository_uuid, full_name, workspace, repository, project_key
    FROM {{ ref('repositories') }}
    WHERE selected
),

configured AS (
    SELECT r.repository_uuid, m.application,
           format('applications.yaml: {} (workspace {}, project {}, repository {})',
                  m.application, m.workspace_glob, m.project_glob, m.repository_glob) AS mapped_by
    FROM selected AS r
    JOIN {{ invoker_input('config_application_repositories') }} AS m
        ON r.workspace GLOB m.workspace_glob
        AND coalesce(r.project_key, '') GLOB m.project_glob
        AND r.repository GLOB m.repository_glob
    QUALIFY row_number() OVER (PARTITION BY r.repository_uuid ORDER BY m.app_order, m.match_order) = 1
),

whole AS (
    SELECT r.repository_uuid, r.full_name, r.full_name AS repository_full_name, r.workspace, r.repository,
           coalesce(c.application, r.full_name) AS application,
           NULL::VARCHAR AS parent_application,
           false AS is_monorepo_child,
           NULL::VARCHAR AS path_glob,
           NULL::BIGINT AS path_specificity,
           coalesce(c.mapped_by, 'default: one application per repository') AS mapped_by
    FROM selected AS r
    LEFT JOIN configured AS c USING (repository_uuid)
)

SELECT * FROM whole
UNION ALL
SELECT w.repository_uuid, w.full_name, w.repository_full_name, w.workspace, w.repository,
       p.application,
       w.application AS parent_application,
       true AS is_monorepo_child,
       p.path_glob,
       length(regexp_extract(p.path_glob, '^[^*?\[]*')) AS path_specificity,
       format('applications.yaml: part of {} under {}', w.application, p.path_glob) AS mapped_by
FROM whole AS w
JOIN {{ invoker_input('config_application_paths') }} AS p ON p.parent_application = w.application
