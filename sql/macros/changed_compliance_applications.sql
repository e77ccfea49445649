{#- Applications whose compliance_report rows must be rebuilt: their compliance_digests digest differs from the last
    build's, or they are new or gone. -#}
{% macro changed_compliance_applications() -%}
    (SELECT application
     FROM {{ ref('compliance_digests') }} AS d
     FULL OUTER JOIN {{ invoker_input('previous_compliance_digests') }} AS p USING (application)
     WHERE d.digest IS DISTINCT FROM p.digest)
{%- endmacro %}
