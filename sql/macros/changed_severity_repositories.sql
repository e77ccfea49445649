{#- Repositories whose severity rows must be rebuilt: their finding_severity_digests digest differs from the
    last build's, or they are new or gone. -#}
{% macro changed_severity_repositories() -%}
    (SELECT repository_uuid
     FROM {{ ref('finding_severity_digests') }} AS d
     FULL OUTER JOIN {{ invoker_input('previous_finding_severity_digests') }} AS p USING (repository_uuid)
     WHERE d.digest IS DISTINCT FROM p.digest)
{%- endmacro %}
