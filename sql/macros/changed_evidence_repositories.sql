{#- Repositories whose finding rows of severity_evidence must be computed again (severity_evidence_digests). -#}
{% macro changed_evidence_repositories() -%}
    {{ changed_keys('severity_evidence_digests', 'repository_uuid') }}
{%- endmacro %}

{#- severity_evidence's pre-hook: its repository and application rows, and the finding rows of the repositories it
    computes again (gone ones included); every finding row when the last build left no digests (a warehouse from
    before the model was incremental; this guard, instead of `NOT IN` the digests, keeps the delete from reading every
    repository's rows twice, ~0.01 s a night). A table from before its rows carried their repository (no
    repository_uuid) is emptied: every row is computed again. -#}
{% macro severity_evidence_delete() -%}
    {%- if 'repository_uuid' in adapter.get_columns_in_relation(this) | map(attribute='name') | list %}
    DELETE FROM {{ this }}
    WHERE scope <> 'finding' OR repository_uuid IN {{ changed_evidence_repositories() }}
       OR NOT EXISTS (SELECT 1 FROM {{ invoker_input('previous_severity_evidence_digests') }})
    {%- else %}
    DELETE FROM {{ this }}
    {%- endif %}
{%- endmacro %}
