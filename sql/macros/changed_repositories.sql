{#- Repositories whose findings must be rebuilt (findings_repository_digests). -#}
{% macro changed_repositories() -%}
    {{ changed_keys('findings_repository_digests', 'repository_uuid') }}
{%- endmacro %}
