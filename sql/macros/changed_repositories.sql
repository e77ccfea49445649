{#- Repositories whose findings must be rebuilt: their digest (findings_repository_digests) differs from the
    last build's, or they are new or gone. -#}
{% macro changed_repositories() -%}
    (SELECT repository_uuid
     FROM {{ ref('findings_repository_digests') }} AS d
     FULL OUTER JOIN {{ invoker_input('previous_findings_repository_digests') }} AS p USING (repository_uuid)
     WHERE d.digest IS DISTINCT FROM p.digest)
{%- endmacro %}
