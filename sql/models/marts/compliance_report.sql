{#- Incremental by application: a build deletes and computes again the rows of the applications whose inputs changed
    (compliance_digests, macro changed_compliance_applications) and of any application that is gone; the first build,
    and every build after a change of the controls, the catalogs or this SQL, computes them all. -#}
{{ config(materialized='incremental', incremental_strategy='append', on_schema_change='sync_all_columns',
          pre_hook="{% if is_incremental() %}DELETE FROM {{ this }} WHERE application IN "
                   "{{ changed_compliance_applications() }} OR application NOT IN "
                   "(SELECT application FROM {{ ref('compliance_digests') }}){% endif %}") }}
-- depends_on: {{ ref('compliance_digests') }}
{#- an open finding's scope: a file belongs to its application, a repository setting to each application of the
    repository, a workspace setting to each application of the workspace (its key set, the other two NULL) -#}
{%- set scope_columns -%}
    CASE WHEN file_path IS NOT NULL THEN 'file' WHEN repository_uuid <> '' THEN 'repository'
                ELSE 'workspace' END AS scope,
           if(file_path IS NOT NULL, application, NULL) AS application,
           if(file_path IS NULL AND repository_uuid <> '', repository_uuid, NULL) AS repository_uuid,
           if(file_path IS NULL AND repository_uuid = '', workspace, NULL) AS workspace
{%- endset %}
WITH app_repos AS (
    SELECT DISTINCT application, repository_uuid, workspace, full_name
    FROM {{ ref('application_mapping') }}
    {%- if is_incremental() %}
    -- only the rebuilt applications: every use of a repository or workspace below goes through app_repos
    WHERE application IN {{ changed_compliance_applications() }}
    {%- endif %}
),

check_controls AS (
    SELECT check_id, unnest(controls) AS control_id
    FROM {{ invoker_input('config_posture_checks') }}
),

finding_controls AS (
    SELECT DISTINCT scanner, control_id FROM {{ ref('repository_controls') }}
),

scanner_controls AS (
    SELECT scanner, control_id FROM {{ invoker_input('config_scanner_controls') }}
    UNION
    SELECT scanner, control_id FROM finding_controls WHERE scanner <> 'posture'
),

controls AS (
    SELECT DISTINCT c.control_id, fw.framework, fw.title AS framework_title
    FROM (
        SELECT control_id FROM check_controls
        UNION SELECT control_id FROM scanner_controls
        UNION SELECT control_id FROM finding_controls
    ) AS c
    JOIN {{ invoker_input('config_frameworks') }} AS fw ON starts_with(c.control_id, fw.prefix)
),

posture_results_per_app AS (
    -- a workspace-level result (no repository) counts for every application of the workspace
    SELECT ar.application, pr.*
    FROM {{ source('lake', 'posture_results') }} AS pr JOIN app_repos AS ar USING (repository_uuid)
    UNION ALL
    SELECT ar.application, pr.*
    FROM {{ source('lake', 'posture_results') }} AS pr JOIN app_repos AS ar USING (workspace)
    WHERE pr.repository_uuid IS NULL
),

scan_scopes AS (
    SELECT repository_uuid, scanner, bool_or(status = 'ok') AS ok,
           -- not_evaluable: e.g. SCA without advisory data for an ecosystem; the error says how to fix it
           any_value(status) FILTER (WHERE status <> 'ok') AS problem,
           any_value(error) FILTER (WHERE status IN ('error', 'not_evaluable')) AS error
    FROM {{ source('lake', 'scan_runs') }}
    GROUP BY ALL
),

posture_scan_evidence AS (
    -- posture fails arrive as findings; here the checks that passed or could not be evaluated, and the scanners that
    -- ran completely or not: one aggregate and one join for both (bool_or and count over the union are those of
    -- each part combined; the problems stay in two lists, each sorted, checks first)
    SELECT application, control_id,
           bool_or(has_pass) AS has_pass,
           bool_or(has_not_evaluable) AS has_not_evaluable,
           count(*) AS n,
           list(passed) FILTER (WHERE passed IS NOT NULL) AS passed,
           list_sort(list(problem) FILTER (WHERE has_not_evaluable AND NOT from_scan)) AS check_problems,
           list_sort(list(problem) FILTER (WHERE has_not_evaluable AND from_scan)) AS scan_problems
    FROM (
        SELECT pr.application, cc.control_id,
               pr.status = 'pass' AS has_pass,
               pr.status = 'not_evaluable' AS has_not_evaluable,
               if(pr.status = 'pass', pr.check_id, NULL) AS passed,
               false AS from_scan,
               CASE WHEN pr.status = 'not_evaluable' THEN format('{} not_evaluable on {}{}', pr.check_id,
                           coalesce(pr.workspace || '/' || pr.repository, pr.workspace),
                           coalesce(': ' || pr.evidence, '')) END AS problem
        FROM posture_results_per_app AS pr
        JOIN check_controls AS cc USING (check_id)
        WHERE pr.status IN ('pass', 'not_evaluable')
        UNION ALL
        SELECT ar.application, sc.control_id,
               s.ok AS has_pass,
               NOT s.ok AS has_not_evaluable,
               if(s.ok, s.scanner, NULL) AS passed,
               true AS from_scan,
               CASE WHEN NOT s.ok THEN format('{} {} on {}: {}', s.scanner,
                                              if(s.problem = 'not_evaluable', 'not evaluated', 'failed'),
                                              ar.full_name, coalesce(s.error, 'error')) END AS problem
        FROM scan_scopes AS s
        JOIN app_repos AS ar USING (repository_uuid)
        JOIN scanner_controls AS sc USING (scanner)
    )
    GROUP BY ALL
),

{% if is_incremental() -%}
rebuilt_rows AS MATERIALIZED (
    -- the rows open_findings reads, found once for both its readers: the rebuilt applications' files, and a
    -- repository's or workspace's setting only if it is one of theirs (app_repos: the rebuilt applications')
    SELECT rowid FROM {{ ref('findings_queue_base') }}
    WHERE application IN {{ changed_compliance_applications() }}
       OR file_path IS NULL AND repository_uuid IN (SELECT repository_uuid FROM app_repos)
       OR file_path IS NULL AND repository_uuid = '' AND workspace IN (SELECT workspace FROM app_repos)
),
{%- endif %}

open_findings AS NOT MATERIALIZED (
    -- not materialised: each reader takes only its columns (a night that rebuilds every application reads them all).
    -- `counts`: open or suppressed, with controls (a correlated finding still fails its own controls; its problem is
    -- one queue item). On a night, the rebuilt applications' rows by rowid, found on the narrow columns first, and
    -- only then `counts` (as the readers' FILTER and HAVING): as a WHERE here, DuckDB would test it on every row of
    -- the table and join the rowids against all of them
    SELECT finding_id, rule_id, status = 'suppressed' AS accepted, application, repository_uuid, workspace,
           file_path, controls,
           coalesce(repository || '/' || file_path, repository, workspace) AS place,
           final_severity || ': ' || title
               || CASE WHEN status = 'suppressed' THEN ', suppressed: ' || coalesce(suppression_reason, triage_reason)
                       ELSE '' END AS detail,
           {{ compliance_open_finding() }} AS counts
    FROM {{ ref('findings_queue_base') }}
    {%- if is_incremental() %}
    WHERE rowid IN (SELECT rowid FROM rebuilt_rows)
    {%- else %}
    WHERE {{ compliance_open_finding() }}
    {%- endif %}
),

finding_id_groups AS (
    -- a file belongs to its application; a repository setting to each application of the repository; a workspace
    -- setting to each application of the workspace: per scope (its key set, the other two NULL) and list of controls,
    -- the ids, listed once before the controls fan out (a finding has several controls)
    SELECT {{ scope_columns }},
           controls, accepted, count(*) FILTER (WHERE counts) AS n,
           list(finding_id) FILTER (WHERE counts) AS finding_ids
    FROM open_findings
    WHERE file_path IS NOT NULL OR repository_uuid IS NOT NULL
    GROUP BY ALL
    HAVING bool_or(counts)
),

finding_ids AS (
    SELECT application, control_id,
           -- sorted here, on the few groups, not on every row of the report
           list_sort(flatten(list(finding_ids) FILTER (WHERE NOT accepted))) AS failing,
           list_sort(flatten(list(finding_ids) FILTER (WHERE accepted))) AS accepted,
           sum(n)::BIGINT AS n
    FROM (
        SELECT g.application, unnest(list_distinct(g.controls)) AS control_id, g.accepted, g.n, g.finding_ids
        FROM finding_id_groups AS g
        WHERE g.scope = 'file'
        UNION ALL
        SELECT ar.application, unnest(list_distinct(g.controls)) AS control_id, g.accepted, g.n, g.finding_ids
        FROM finding_id_groups AS g JOIN app_repos AS ar USING (repository_uuid)
        WHERE g.scope = 'repository'
        UNION ALL
        SELECT ar.application, unnest(list_distinct(g.controls)) AS control_id, g.accepted, g.n, g.finding_ids
        FROM finding_id_groups AS g JOIN app_repos AS ar USING (workspace)
        WHERE g.scope = 'workspace'
    )
    GROUP BY ALL
),

finding_groups AS (
    -- the findings of one scope (as in finding_id_groups), rule and list of controls, aggregated before their
    -- controls fan out (a scope has many findings of one rule): count and min combine exactly afterwards
    SELECT {{ scope_columns }},
           controls, rule_id, accepted, count(*) FILTER (WHERE counts) AS n,
           min(place) FILTER (WHERE counts) AS place, min(detail) FILTER (WHERE counts) AS detail
    FROM open_findings
    WHERE file_path IS NOT NULL OR repository_uuid IS NOT NULL
    GROUP BY ALL
    HAVING bool_or(counts)
),

finding_lines AS (
    -- findings of one rule read as one line of evidence
    SELECT application, control_id,
           list(CASE WHEN n = 1 THEN format('{} {} ({})', rule_id, detail, place)
                     ELSE format('{} {} ({} findings, e.g. {})', rule_id, detail, n, place) END
                ORDER BY accepted, rule_id) AS lines
    FROM (
        SELECT application, control_id, rule_id, accepted, sum(n)::BIGINT AS n, min(place) AS place,
               min(detail) AS detail
        FROM (
            SELECT g.application, unnest(list_distinct(g.controls)) AS control_id, g.rule_id, g.accepted, g.n,
                   g.place, g.detail
            FROM finding_groups AS g
            WHERE g.scope = 'file'
            UNION ALL
            SELECT ar.application, unnest(list_distinct(g.controls)) AS control_id, g.rule_id, g.accepted, g.n,
                   g.place, g.detail
            FROM finding_groups AS g JOIN app_repos AS ar USING (repository_uuid)
            WHERE g.scope = 'repository'
            UNION ALL
            SELECT ar.application, unnest(list_distinct(g.controls)) AS control_id, g.rule_id, g.accepted, g.n,
                   g.place, g.detail
            FROM finding_groups AS g JOIN app_repos AS ar USING (workspace)
            WHERE g.scope = 'workspace'
        )
        GROUP BY ALL
    )
    GROUP BY ALL
)

-- passed_by: list_distinct of the sorted names, as equal names are neighbours: keep the first of each (list_distinct
-- hashes every list, slower)
SELECT * REPLACE (list_filter(passed_by, lambda p, i: p IS NOT NULL AND (i = 1 OR p IS DISTINCT FROM passed_by[i - 1]))
                  AS passed_by)
FROM (
    SELECT
        a.application, c.framework, c.framework_title, c.control_id,
        CASE WHEN len(f.failing) > 0 THEN 'fail'
             WHEN e.has_not_evaluable THEN 'not_evaluable'
             WHEN e.has_pass OR len(f.accepted) > 0 THEN 'pass'
             ELSE 'not_evaluable' END AS status,
        coalesce(f.failing, []) AS failing_finding_ids,
        coalesce(f.accepted, []) AS accepted_finding_ids,
        list_sort(coalesce(e.passed, [])) AS passed_by,
        CASE WHEN e.application IS NULL AND f.application IS NULL
             THEN ['no posture check or complete scan covers this control for the application']
             ELSE list_slice(list_concat(coalesce(fl.lines, []), coalesce(e.check_problems, []),
                                         coalesce(e.scan_problems, [])), 1, 20)
        END AS evidence,
        (coalesce(e.n, 0) + coalesce(f.n, 0))::BIGINT AS evidence_count,
        a.is_relevant AS application_is_relevant
    FROM {{ ref('applications') }} AS a
    CROSS JOIN controls AS c
    LEFT JOIN posture_scan_evidence AS e ON e.application = a.application AND e.control_id = c.control_id
    LEFT JOIN finding_ids AS f ON f.application = a.application AND f.control_id = c.control_id
    LEFT JOIN finding_lines AS fl ON fl.application = a.application AND fl.control_id = c.control_id
{%- if is_incremental() %}
    WHERE a.application IN {{ changed_compliance_applications() }}
{%- endif %}
)
