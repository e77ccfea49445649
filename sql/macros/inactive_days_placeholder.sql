{#- Stands for the one piece of severity evidence that changes every day by itself: inactive_repository's
    "N days". finding_severities_base stores it in place of the days, so a repository that stays inactive keeps
    its rows from build to build; the finding_severities view puts today's evidence back. -#}
{% macro inactive_days_placeholder() -%}
    (chr(1) || 'inactive_repository' || chr(1))
{%- endmacro %}
