{#- The findings whose rows a model incremental by finding over findings_history must compute again: those the
    history recorded a change of in this build; every finding when the model's SQL differs from the last build's
    (incremental_digests: one row per model). The history is append-only, so no other finding's rows can change.
    Two parts, not one filter with OR: `build_id = … OR <digest differs>` made DuckDB read the whole history through
    a nested loop join every night (~0.05 s a model at 1M findings); joined with the one-row verdict
    (incremental_digest_changed), the second part reads nothing on a night whose SQL did not change. -#}
{% macro history_findings_to_rebuild(model) -%}
    (SELECT finding_id
     FROM {{ ref('findings_history') }}
     WHERE build_id = (SELECT build_id FROM {{ invoker_input('build_context') }})
     UNION ALL
     SELECT h.finding_id
     FROM {{ ref('findings_history') }} AS h
     JOIN {{ incremental_digest_changed(model, model_sql_digest(model)) }} AS sql_changed
         ON sql_changed.changed = (h.finding_id IS NOT NULL))
{%- endmacro %}

{#- One row (`changed`, true) when `digest` differs from the model's row in the last build's incremental_digests
    (or it has none), else no row. Joined with a table on `changed = (<its key> IS NOT NULL)` it gives every row
    when what the model reads besides its partitions changed, and DuckDB reads nothing of the table on a night when
    it did not (a join with an empty side is skipped). -#}
{% macro incremental_digest_changed(model, digest) -%}
    (SELECT true AS changed
     WHERE {{ digest }} IS DISTINCT FROM
           (SELECT digest FROM {{ invoker_input('previous_incremental_digests') }} WHERE model = '{{ model }}'))
{%- endmacro %}

{#- A model's SQL as a digest (incremental_digests keeps it for the next build). -#}
{% macro model_sql_digest(model) -%}
    hash('{{ local_md5(graph.nodes["model.ox_bb_warehouse." ~ model].raw_code if execute else "") }}')
{%- endmacro %}
