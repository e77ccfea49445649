{#- A table the invoker (ox_bb_pipeline.warehouse.runner) creates in the build's copy before dbt runs: the
    settings as config_* tables, build_context (the build's clock), pipeline_definitions (parsed in Python),
    lake_partitions (a digest of each scanner lake partition's files),
    workflow_decisions, and previous_<model> (a stateful model's last table). They are not dbt sources:
    they are inputs of one build, not assets of their own, so they draw no edges in the lineage. -#}
{% macro invoker_input(name) -%}
    {{ adapter.quote(name) }}
{%- endmacro %}
