{#- Repositories whose finding rows of severity_evidence must be computed again (severity_evidence_digests). -#}
{% macro changed_evidence_repositories() -%}
    {{ changed_keys('severity_evidence_digests', 'repository_uuid') }}
{%- endmacro %}
