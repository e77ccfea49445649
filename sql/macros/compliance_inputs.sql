{#- findings_queue_base's rows computed in this build: computed_in is this build's number. -#}
{% macro computed_in_this_build(alias='') -%}
    {{ alias ~ '.' if alias }}computed_in = (SELECT max(build_number) FROM {{ ref('findings_queue_digests') }})
{%- endmacro %}

{#- The repositories whose repository_controls rows a build computes again: those whose findings it rebuilds
    (changed_repositories, gone ones included); every repository when the model's SQL differs from the last build's
    (incremental_digests). -#}
{% macro repository_controls_to_rebuild() -%}
    (SELECT repository_uuid FROM {{ changed_repositories() }}
     UNION ALL
     SELECT d.repository_uuid
     FROM {{ ref('findings_repository_digests') }} AS d
     JOIN {{ incremental_digest_changed('repository_controls', model_sql_digest('repository_controls')) }}
         AS sql_changed ON sql_changed.changed = (d.repository_uuid IS NOT NULL))
{%- endmacro %}

{#- The repositories (a workspace setting's findings: '') whose compliance_finding_digests rows a build computes
    again: those with a findings_queue_base row computed in this build (a row changes only when computed, and never
    leaves its repository: the repository is part of its fingerprint); every one when the model's SQL differs from
    the last build's (incremental_digests). -#}
{% macro compliance_finding_digests_to_rebuild() -%}
    (SELECT DISTINCT repository_uuid FROM {{ ref('findings_queue_base') }} WHERE {{ computed_in_this_build() }}
     UNION ALL
     SELECT DISTINCT q.repository_uuid
     FROM {{ ref('findings_queue_base') }} AS q
     JOIN {{ incremental_digest_changed('compliance_finding_digests', model_sql_digest('compliance_finding_digests')) }}
         AS sql_changed ON sql_changed.changed = (q.repository_uuid IS NOT NULL))
{%- endmacro %}

{#- What compliance reads of an open or suppressed finding (new, open, reopened and correlated count alike: a
    correlated finding still fails its own controls) that carries controls. -#}
{% macro compliance_open_finding() -%}
    status IN ('new', 'open', 'reopened', 'suppressed', 'correlated') AND len(controls) > 0
{%- endmacro %}
