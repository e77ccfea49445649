{#- The controls the findings of each repository carry, per scanner (compliance's controls that findings can fail):
    incremental by repository, as findings is. A build deletes and computes again the rows of the repositories whose
    findings it rebuilds, of every repository when this SQL changed (macro repository_controls_to_rebuild). -#}
{{ config(materialized='incremental', incremental_strategy='append', on_schema_change='sync_all_columns',
          pre_hook="{% if is_incremental() %}DELETE FROM {{ this }} WHERE repository_uuid IN "
                   "{{ repository_controls_to_rebuild() }}{% endif %}") }}
-- depends_on: {{ ref('findings_repository_digests') }}
SELECT DISTINCT repository_uuid, scanner, unnest(controls) AS control_id
FROM {{ ref('findings') }}
{%- if is_incremental() %}
-- the rows by rowid, found on the narrow key column first: the controls only for them
WHERE rowid IN (SELECT rowid FROM {{ ref('findings') }}
                WHERE repository_uuid IN {{ repository_controls_to_rebuild() }})
{%- endif %}
