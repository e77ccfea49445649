{#- What compliance_digests reads of the open and suppressed findings that carry controls, summed per repository (a
    workspace setting's: ''), application, workspace and whether they are in a file (a file's finding counts for its
    application, a repository's or workspace's setting for each of theirs). Incremental by repository: a build
    deletes and computes again the repositories with a findings_queue_base row it computed, every one when this SQL
    changed (macro compliance_finding_digests_to_rebuild). -#}
{{ config(materialized='incremental', incremental_strategy='append', on_schema_change='sync_all_columns',
          pre_hook="{% if is_incremental() %}DELETE FROM {{ this }} WHERE repository_uuid IN "
                   "{{ compliance_finding_digests_to_rebuild() }}{% endif %}") }}
-- depends_on: {{ ref('findings_queue_digests') }}
SELECT repository_uuid, application, workspace, file_path IS NOT NULL AS in_file,
       sum(hash(finding_id, rule_id, status = 'suppressed', controls, repository, file_path, workspace, final_severity,
                title, CASE WHEN status = 'suppressed' THEN coalesce(suppression_reason, triage_reason) END)::HUGEINT)
           FILTER (WHERE {{ compliance_open_finding() }}) AS h
FROM {{ ref('findings_queue_base') }}
{%- if is_incremental() %}
-- the rows by rowid, found on the narrow key column first, and only then which count (FILTER and HAVING): as a WHERE,
-- DuckDB would test that on every row of the table and join the rowids against all of them
WHERE rowid IN (SELECT rowid FROM {{ ref('findings_queue_base') }}
                WHERE repository_uuid IN {{ compliance_finding_digests_to_rebuild() }})
{%- endif %}
GROUP BY ALL
HAVING bool_or({{ compliance_open_finding() }})
