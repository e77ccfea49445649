{#- The findings whose rows a model incremental by finding over findings_history must compute again: those the
    history recorded a change of in this build; every finding when the model's SQL differs from the last build's
    (incremental_digests: one row per model). The history is append-only, so no other finding's rows can change. -#}
{% macro history_findings_to_rebuild(model) -%}
    (SELECT finding_id
     FROM {{ ref('findings_history') }}
     WHERE build_id = (SELECT build_id FROM {{ invoker_input('build_context') }})
        OR {{ model_sql_digest(model) }} IS DISTINCT FROM
           (SELECT digest FROM {{ invoker_input('previous_incremental_digests') }} WHERE model = '{{ model }}'))
{%- endmacro %}

{#- A model's SQL as a digest (incremental_digests keeps it for the next build). -#}
{% macro model_sql_digest(model) -%}
    hash('{{ local_md5(graph.nodes["model.ox_bb_warehouse." ~ model].raw_code if execute else "") }}')
{%- endmacro %}
