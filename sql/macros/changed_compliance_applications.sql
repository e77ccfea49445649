{#- Applications whose compliance_report rows must be rebuilt (compliance_digests). -#}
{% macro changed_compliance_applications() -%}
    {{ changed_keys('compliance_digests', 'application') }}
{%- endmacro %}
