{#- dbt's `unique`, for a table written incrementally: only the keys of the rows this build wrote are grouped, with
    every stored row that has one of them. That is exact: the stored rows were unique after the last build (this
    test), so a duplicate now involves a row written in this build, and the key's other rows are grouped with it
    whether they were written or kept. A full refresh rewrites every row: all are grouped, as `unique` does.
    Grouping the rebuilt repositories' keys, not all of a 1M-row table's, is what makes it cheap on a night.
    `written` names which rows the model writes in a build, as its own SQL decides:
      changed_repositories           those of the repositories the model rebuilds (findings)
      changed_severity_repositories  likewise, by finding_severity_digests (finding_severities_base)
      computed_in_this_build         computed_in is this build's number (findings_queue_base)
    A name, not SQL text in schema.yml: dbt parses a test's arguments without the project's macros, so the refs
    inside changed_repositories() would not become the test's dependencies (a compilation error); here they do. -#}
{% test unique_incremental(model, column_name, written) %}
{%- if written == 'changed_repositories' %}
    {%- set written_rows = 'repository_uuid IN ' ~ changed_repositories() %}
{%- elif written == 'changed_severity_repositories' %}
    {%- set written_rows = 'repository_uuid IN ' ~ changed_severity_repositories() %}
{%- elif written == 'computed_in_this_build' %}
    {%- set written_rows = computed_in_this_build() %}
{%- else %}
    {{ exceptions.raise_compiler_error("unique_incremental: unknown `written` " ~ written) }}
{%- endif %}
SELECT {{ column_name }} AS unique_field, count(*) AS n_records
FROM {{ model }}
{%- if flags.FULL_REFRESH %}
WHERE {{ column_name }} IS NOT NULL
{%- else %}
WHERE {{ column_name }} IN (SELECT {{ column_name }} FROM {{ model }} WHERE {{ written_rows }})
{%- endif %}
GROUP BY {{ column_name }}
HAVING count(*) > 1
{% endtest %}
