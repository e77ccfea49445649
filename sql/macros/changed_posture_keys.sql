{#- The workspace and repository keys ('' for workspace-level checks) whose posture_checks rows must be rebuilt:
    their digest in posture_check_digests differs from the last build's, or they are new or gone. A key's workspace
    may be NULL (compared as a value, as posture_checks groups it). -#}
{% macro changed_posture_keys() -%}
    (SELECT coalesce(d.workspace, p.workspace) AS workspace, coalesce(d.repository_uuid, p.repository_uuid)
                AS repository_uuid
     FROM {{ ref('posture_check_digests') }} AS d
     FULL OUTER JOIN {{ invoker_input('previous_posture_check_digests') }} AS p
       ON p.workspace IS NOT DISTINCT FROM d.workspace AND p.repository_uuid = d.repository_uuid
     WHERE d.digest IS DISTINCT FROM p.digest)
{%- endmacro %}
