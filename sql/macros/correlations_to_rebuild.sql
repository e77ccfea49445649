{#- The repositories whose finding_correlations rows a build computes again: those whose findings or their severities
    changed (finding_severity_digests: a problem's findings share a repository, and each reads only its findings'
    places, families, scanners and severity ranks); every repository when the line window or the model's SQL differs
    from the last build's (incremental_digests), joined with that one-row verdict so that a usual night reads
    nothing for it (see history_findings_to_rebuild). -#}
{% macro correlations_to_rebuild() -%}
    (SELECT repository_uuid FROM {{ changed_severity_repositories() }}
     UNION ALL
     SELECT d.repository_uuid
     FROM {{ ref('finding_severity_digests') }} AS d
     JOIN (SELECT true AS changed
           WHERE {{ correlations_digest() }} IS DISTINCT FROM
                 (SELECT digest FROM {{ invoker_input('previous_incremental_digests') }}
                  WHERE model = 'finding_correlations')) AS window_or_sql_changed
         ON window_or_sql_changed.changed = (d.repository_uuid IS NOT NULL))
{%- endmacro %}

{#- What every finding_correlations row is computed from besides its repository's findings: the line window and the
    model's SQL. -#}
{% macro correlations_digest() -%}
    hash({{ model_sql_digest('finding_correlations') }},
         (SELECT correlation_line_window FROM {{ invoker_input('build_context') }}))
{%- endmacro %}
