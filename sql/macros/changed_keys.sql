{#- The keys (repositories, applications) whose rows an incremental model must rebuild: their digest in the
    `digests` model differs from the last build's (previous_<digests>), or they are new or gone. -#}
{% macro changed_keys(digests, key) -%}
    (SELECT {{ key }}
     FROM {{ ref(digests) }} AS d
     FULL OUTER JOIN {{ invoker_input('previous_' ~ digests) }} AS p USING ({{ key }})
     WHERE d.digest IS DISTINCT FROM p.digest)
{%- endmacro %}
