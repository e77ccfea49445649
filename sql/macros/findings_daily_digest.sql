{#- What every day's findings_daily rows are computed from besides the history itself: the SLA days and the SQL
    of findings_daily, finding_states and finding_stretches; and what sla_breach_daily's rows of a day are computed
    from besides that day's findings_daily rows: the SLA days and its SQL. When it differs from the last build's
    (incremental_digests), findings_daily and sla_breach_daily compute every day again; otherwise only the days from
    today (or the day after their last row) on. -#}
{% macro findings_daily_digest() -%}
    hash('{{ local_md5(graph.nodes["model.ox_bb_warehouse.findings_daily"].raw_code if execute else "") }}',
         '{{ local_md5(graph.nodes["model.ox_bb_warehouse.finding_states"].raw_code if execute else "") }}',
         '{{ local_md5(graph.nodes["model.ox_bb_warehouse.finding_stretches"].raw_code if execute else "") }}',
         '{{ local_md5(graph.nodes["model.ox_bb_warehouse.sla_breach_daily"].raw_code if execute else "") }}',
         (SELECT sum(hash(c)::HUGEINT) FROM {{ invoker_input('config_sla') }} AS c))
{%- endmacro %}
