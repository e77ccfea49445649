-- One row per application: its repositories, owners, data classification, business priority (set in
-- applications.yaml, else computed from production deployment, commit activity, contributors and
-- data classification, with the reasons) and whether it is relevant. An irrelevant application's
-- findings stay in every table, flagged.
-- depends: application_mapping, repositories, config_applications, build_context
-- column: application: application name (workspace/slug when applications.yaml does not name it)
-- column: parent_application: for a monorepo child, the application of the whole repository
-- column: is_monorepo_child: covers part of a repository (see application_mapping.path_glob)
-- column: repositories: full names of its repositories
-- column: repository_count: number of repositories
-- column: team: owning team (a child inherits its parent's)
-- column: owners: owners (a child inherits its parent's)
-- column: data_classification: public | internal | confidential | restricted (applications.yaml, else the default)
-- column: is_public: one of its repositories is public
-- column: deploys_to_production: one of its repositories' pipelines deploys to production
-- column: production_evidence: which pipelines deploy to production
-- column: commits_recent: main-branch commits in the activity window, over its repositories
-- column: contributors_recent: commit authors in the activity window, summed over its repositories
-- column: days_since_code_change: days since the most recent code change in any of its repositories
-- column: business_priority_computed: from the summed signal weights: critical ≥ 4, high 2–3, medium 0–1, low below 0
-- column: business_priority: the override from applications.yaml, else the computed priority
-- column: business_priority_source: override | computed
-- column: business_priority_reasons: the signals behind the priority, each with its weight
-- column: irrelevant_reasons: why the application is irrelevant (empty when relevant)
-- column: is_relevant: counts in reports as a live application
WITH ctx AS (
    SELECT * FROM build_context
),

members AS (
    SELECT DISTINCT m.application, m.parent_application, m.is_monorepo_child, m.repository_uuid
    FROM application_mapping AS m
),

signals AS (
    SELECT m.application,
           any_value(m.parent_application) AS parent_application,
           bool_or(m.is_monorepo_child) AS is_monorepo_child,
           list(r.full_name ORDER BY r.full_name) AS repositories,
           count(*) AS repository_count,
           bool_or(r.is_public) AS is_public,
           bool_or(r.deploys_to_production) AS deploys_to_production,
           string_agg(r.full_name || ': ' || r.production_evidence, '; ' ORDER BY r.full_name)
               FILTER (WHERE r.deploys_to_production) AS production_evidence,
           sum(r.commits_recent)::BIGINT AS commits_recent,
           sum(r.contributors_recent)::BIGINT AS contributors_recent,
           min(r.days_since_code_change) AS days_since_code_change,
           bool_and(NOT r.is_relevant) AS all_irrelevant,
           list_sort(list_distinct(flatten(list(r.irrelevant_reasons)))) AS repository_reasons
    FROM members AS m
    JOIN repositories AS r USING (repository_uuid)
    GROUP BY m.application
),

configured AS (
    SELECT c.application,
           coalesce(c.team, p.team) AS team,
           coalesce(nullif(c.owners, []), p.owners) AS owners,
           coalesce(c.data_classification, p.data_classification) AS data_classification,
           coalesce(c.business_priority, p.business_priority) AS business_priority,
           coalesce(c.irrelevant_reason, p.irrelevant_reason) AS irrelevant_reason
    FROM config_applications AS c
    LEFT JOIN config_applications AS p ON p.application = c.parent_application
),

weighed AS (
    SELECT s.*, c.team, coalesce(c.owners, []) AS owners, c.business_priority AS priority_override,
           c.irrelevant_reason,
           coalesce(c.data_classification, ctx.default_data_classification) AS data_classification,
           list_filter([
               CASE WHEN s.deploys_to_production THEN {'reason': 'deploys to production', 'weight': 2} END,
               CASE WHEN s.commits_recent >= 20 THEN {'reason': format('{} commits on main in {} days',
                   s.commits_recent, ctx.activity_window_days), 'weight': 1} END,
               CASE WHEN s.contributors_recent >= 3 THEN {'reason': format('{} contributors in {} days',
                   s.contributors_recent, ctx.activity_window_days), 'weight': 1} END,
               CASE coalesce(c.data_classification, ctx.default_data_classification)
                   WHEN 'restricted' THEN {'reason': 'restricted data', 'weight': 2}
                   WHEN 'confidential' THEN {'reason': 'confidential data', 'weight': 1}
                   WHEN 'public' THEN {'reason': 'public data only', 'weight': -1}
               END
           ], lambda signal: signal IS NOT NULL) AS priority_signals
    FROM signals AS s
    CROSS JOIN ctx
    LEFT JOIN configured AS c ON c.application = s.application
),

scored AS (
    SELECT *,
           CASE
               WHEN list_sum([x.weight FOR x IN priority_signals]) >= 4 THEN 'critical'
               WHEN list_sum([x.weight FOR x IN priority_signals]) >= 2 THEN 'high'
               WHEN coalesce(list_sum([x.weight FOR x IN priority_signals]), 0) >= 0 THEN 'medium'
               ELSE 'low'
           END AS business_priority_computed
    FROM weighed
)

SELECT
    application, parent_application, is_monorepo_child, repositories, repository_count,
    team, owners, data_classification, is_public, deploys_to_production, production_evidence,
    commits_recent, contributors_recent, days_since_code_change,
    business_priority_computed,
    coalesce(priority_override, business_priority_computed) AS business_priority,
    CASE WHEN priority_override IS NULL THEN 'computed' ELSE 'override' END AS business_priority_source,
    CASE
        WHEN priority_override IS NOT NULL THEN ['set in applications.yaml']
        WHEN len(priority_signals) = 0 THEN ['no production deployment, little recent activity, internal data']
        ELSE [format('{} ({}{})', x.reason, CASE WHEN x.weight > 0 THEN '+' ELSE '' END, x.weight)
              FOR x IN priority_signals]
    END AS business_priority_reasons,
    CASE
        WHEN irrelevant_reason IS NOT NULL THEN ['marked irrelevant in applications.yaml: ' || irrelevant_reason]
        WHEN all_irrelevant THEN repository_reasons
        ELSE []
    END AS irrelevant_reasons,
    irrelevant_reason IS NULL AND NOT all_irrelevant AS is_relevant
FROM scored
