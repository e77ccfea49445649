{#- Incremental by repository: a build deletes and recomputes the rows of the repositories whose inputs
    changed (macro changed_repositories) and of any repository no longer reported; the first build, and every
    build after a change of the catalogs or of this SQL (part of every digest), computes them all. -#}
{{ config(materialized='incremental', incremental_strategy='append', on_schema_change='sync_all_columns',
          pre_hook="{% if is_incremental() %}DELETE FROM {{ this }} WHERE repository_uuid IN "
                   "{{ changed_repositories() }} OR repository_uuid NOT IN "
                   "(SELECT repository_uuid FROM {{ ref('findings_repository_digests') }}){% endif %}") }}
-- depends_on: {{ ref('findings_repository_digests') }}, {{ ref('findings_partition_digests') }}
WITH reported AS NOT MATERIALIZED (
    -- every scanner of var('scanners') (the invoker passes the scanner registry's list); a build that rebuilds some
    -- repositories reads only the lake partitions that hold their rows (DuckDB skips the other partitions' files)
    {%- for scanner in var('scanners') %}
    {% if not loop.first %}UNION ALL BY NAME {% endif %}SELECT * FROM {{ lake_findings(scanner) }}
    {%- if is_incremental() %}
    WHERE connection IN (SELECT connection FROM {{ ref('findings_partition_digests') }}
                         WHERE input = '{{ "findings_" ~ scanner }}' AND repository_uuid IN {{ changed_repositories() }})
    {%- endif %}
    {%- endfor %}
),

{% if is_incremental() %}
rebuilt AS NOT MATERIALIZED (
    SELECT * FROM reported SEMI JOIN {{ changed_repositories() }} AS c USING (repository_uuid)
),
{% else %}
rebuilt AS NOT MATERIALIZED (SELECT * FROM reported),
{% endif %}

duplicated AS (
    SELECT finding_id FROM rebuilt GROUP BY finding_id HAVING count(*) > 1
),

unique_findings AS (
    -- only the few findings reported more than once need choosing: the latest scan's row
    SELECT * FROM rebuilt ANTI JOIN duplicated USING (finding_id)
    UNION ALL
    SELECT * FROM rebuilt SEMI JOIN duplicated USING (finding_id)
    QUALIFY row_number() OVER (PARTITION BY finding_id ORDER BY scanned_at DESC NULLS LAST, connection) = 1
),

repository_applications AS (
    -- per repository: its application, and its monorepo children, most specific glob first
    SELECT repository_uuid,
           any_value(application) FILTER (WHERE NOT is_monorepo_child) AS application,
           list({'path_glob': path_glob, 'application': application, 'parent_application': parent_application}
                ORDER BY path_specificity DESC, length(path_glob) DESC, application)
               FILTER (WHERE is_monorepo_child) AS children
    FROM {{ ref('application_mapping') }}
    GROUP BY repository_uuid
),

mapped AS (
    -- one pass over the findings (unique_findings is read once, so never materialised):
    -- the CWE family, the scanner rule's else the CWE's (none for a finding without an id, which no
    -- finding_id join ever matched);
    -- the code context: of the rules the file matches (code_context_matches, the runner's macro over the
    -- rules: constant patterns, compiled once), the first that covers the category, else the first (a rule
    -- that matches but does not cover the category still names what the file is: effect none). Only rows
    -- where code_context_any holds (the runner's one-regex prefilter, true exactly when code_context_matches
    -- is not empty: about a tenth) build the list of matches.
    SELECT f.*, m.application AS whole_application,
           list_filter(m.children, lambda c: f.file_path GLOB c.path_glob)[1] AS child,
           coalesce(byrule.family, bycwe.family) AS cwe_family,
           CASE WHEN f.finding_id IS NOT NULL AND code_context_any(f.file_path, coalesce(f.file_markers, []))
                THEN list_sort(flatten(
                    [[{'uncovered': CASE list_contains(r.categories, f.category) WHEN true THEN 0
                                                                                 WHEN false THEN 1 ELSE 2 END,
                       'unordered': r.rule_order IS NULL, 'rule_order': r.rule_order,
                       'rule': r.name, 'context': r.context,
                       'effect': CASE WHEN list_contains(r.categories, f.category) THEN r.decision ELSE 'none' END}
                      FOR r IN rules.listed IF r.name = hit.rule]
                     FOR hit IN code_context_matches(f.file_path, coalesce(f.file_markers, []))]))[1]
           END AS chosen_context
    FROM unique_findings AS f
    CROSS JOIN (SELECT coalesce(list(r), []) AS listed FROM {{ invoker_input('config_code_context_rules') }} AS r)
        AS rules
    LEFT JOIN repository_applications AS m USING (repository_uuid)
    LEFT JOIN {{ invoker_input('config_cwe_family_rules') }} AS byrule
        ON byrule.scanner = f.scanner AND byrule.rule_id = f.rule_id AND f.finding_id IS NOT NULL
    LEFT JOIN {{ invoker_input('config_cwe_families') }} AS bycwe
        ON bycwe.cwe = f.cwe AND f.finding_id IS NOT NULL
)

SELECT
    finding_id, scanner, scanner_version, rule_id, title, category, base_severity,
    connection, workspace, repository_uuid, repository, workspace || '/' || repository AS repository_full_name,
    commit, file_path,
    start_line, end_line, evidence, remediation, cwe, package, version, fixed_version,
    vulnerability_ids, controls, scanned_at, cvss_score, cvss_vector, known_exploited, epss,
    validity, validity_checked_at,
    coalesce(child.application, whole_application,
             CASE WHEN repository_uuid = '' THEN 'workspace:' || workspace
                  ELSE workspace || '/' || repository END) AS application,
    child.parent_application,
    coalesce(file_markers, []) AS file_markers,
    cwe_family,
    coalesce(e.exploitable, false) AS exploitable,
    chosen_context.context AS code_context,
    chosen_context.rule AS code_context_rule,
    coalesce(chosen_context.effect, 'none') AS code_context_effect
FROM mapped
LEFT JOIN (SELECT DISTINCT family, exploitable FROM {{ invoker_input('config_cwe_families') }}) AS e
    ON e.family = mapped.cwe_family
