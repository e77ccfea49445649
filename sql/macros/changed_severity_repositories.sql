{#- Repositories whose severity rows must be rebuilt (finding_severity_digests). -#}
{% macro changed_severity_repositories() -%}
    {{ changed_keys('finding_severity_digests', 'repository_uuid') }}
{%- endmacro %}
