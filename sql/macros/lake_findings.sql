{#- One scanner's findings table in the lake: the declared dbt source (a lineage edge to its scanning asset), or,
    for a scanner registered in scanners/registry.py without a sources.yml entry yet, the same table the invoker
    created from the registry (var lake_sources: the source tables sources.yml declares, passed by the invoker). -#}
{% macro lake_findings(scanner) -%}
    {%- set table = 'findings_' ~ scanner -%}
    {%- if table in var('lake_sources', []) -%}{{ source('lake', table) }}{%- else -%}{{ adapter.quote(table) }}{%- endif -%}
{%- endmacro %}
