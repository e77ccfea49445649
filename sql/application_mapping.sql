-- Repositories → applications. Each selected repository belongs to one application: the first
-- entry of applications.yaml whose globs match it, else an application of its own named
-- workspace/slug. A monorepo's application may be split by path into child applications: one row
-- per child and path glob; a finding goes to the most specific child whose glob matches its path.
-- depends: repositories, config_application_repositories, config_application_paths
-- column: repository_uuid: repository {uuid}
-- column: full_name: workspace/slug
-- column: repository_full_name: workspace/slug (a slug alone is ambiguous: two workspaces may both have it)
-- column: workspace: workspace slug
-- column: repository: repository slug
-- column: application: application name
-- column: parent_application: for a monorepo child, the application of the whole repository
-- column: is_monorepo_child: the row maps part of the repository (path_glob) to a child application
-- column: path_glob: for a monorepo child, the glob on repository-relative paths it covers
-- column: path_specificity: length of the glob's literal prefix (a longer one is more specific)
-- column: mapped_by: the rule that mapped it, in words
WITH selected AS (
    SELECT repository_uuid, full_name, workspace, repository, project_key
    FROM repositories
    WHERE selected
),

configured AS (
    SELECT r.repository_uuid, m.application,
           format('applications.yaml: {} (workspace {}, project {}, repository {})',
                  m.application, m.workspace_glob, m.project_glob, m.repository_glob) AS mapped_by
    FROM selected AS r
    JOIN config_application_repositories AS m
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
JOIN config_application_paths AS p ON p.parent_application = w.application
