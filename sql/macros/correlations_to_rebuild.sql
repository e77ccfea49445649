{#- The repositories whose finding_correlations rows a build computes again: those whose findings or their severities
    changed (finding_severity_digests: a problem's findings share a repository, and each reads only its findings'
    places, families, scanners and severity ranks); every repository when the line window or the model's SQL differs
    from the last build's (incremental_digests; see incremental_digest_changed). -#}
{% macro correlations_to_rebuild() -%}
    (SELECT repository_uuid FROM {{ changed_severity_repositories() }}
     UNION ALL
     SELECT d.repository_uuid
     FROM {{ ref('finding_severity_digests') }} AS d
     JOIN {{ incremental_digest_changed('finding_correlations', correlations_digest()) }} AS window_or_sql_changed
         ON window_or_sql_changed.changed = (d.repository_uuid IS NOT NULL))
{%- endmacro %}

{#- What every finding_correlations row is computed from besides its repository's findings: the line window and the
    model's SQL. -#}
{% macro correlations_digest() -%}
    hash({{ model_sql_digest('finding_correlations') }},
         (SELECT correlation_line_window FROM {{ invoker_input('build_context') }}))
{%- endmacro %}

{#- finding_correlations' pre-hook: the rows of the repositories it computes again and of any repository gone. A table
    from before it was incremental (no repository_uuid; and no row of it in the last build's incremental_digests, so
    every repository is computed again) is emptied. -#}
{% macro finding_correlations_delete() -%}
    {%- if 'repository_uuid' in adapter.get_columns_in_relation(this) | map(attribute='name') | list %}
    DELETE FROM {{ this }}
    WHERE repository_uuid IN {{ correlations_to_rebuild() }}
       OR repository_uuid NOT IN (SELECT repository_uuid FROM {{ ref('finding_severity_digests') }})
    {%- else %}
    DELETE FROM {{ this }}
    {%- endif %}
{%- endmacro %}
