-- Per scanner lake table, connection partition and repository: the sum of the hashes of its rows and their count,
-- which findings_repository_digests adds up per repository. Only the partitions whose digest (lake_partitions: the
-- runner's digest of the partition's files and of the view's columns) differs from the last build's are read; the
-- others' rows are the last build's (previous_findings_partition_digests). partition_digest also covers this SQL.
WITH partitions AS (
    SELECT input, connection,
           md5(digest || '{{ local_md5(graph.nodes["model.ox_bb_warehouse.findings_partition_digests"].raw_code
                                       if execute else "") }}') AS partition_digest
    FROM {{ invoker_input('lake_partitions') }}
),

kept AS (
    SELECT p.input, p.connection, p.partition_digest, p.repository_uuid, p.input_digest, p.input_rows
    FROM {{ invoker_input('previous_findings_partition_digests') }} AS p
    SEMI JOIN partitions AS l USING (input, connection, partition_digest)
    {%- if flags.FULL_REFRESH %}
    WHERE false  -- a full refresh reads every partition
    {%- endif %}
),

unread AS (
    -- a partition without kept rows (changed, new, or without a row) is read
    SELECT * FROM partitions ANTI JOIN kept USING (input, connection)
)

SELECT * FROM kept
{%- for scanner in var('scanners') %}
UNION ALL
SELECT '{{ "findings_" ~ scanner }}' AS input, r.connection, l.partition_digest, r.repository_uuid,
       sum(hash(r)::HUGEINT) AS input_digest, count(*) AS input_rows
FROM {{ lake_findings(scanner) }} AS r
JOIN unread AS l ON l.input = '{{ "findings_" ~ scanner }}' AND l.connection = r.connection
GROUP BY r.connection, l.partition_digest, r.repository_uuid
{%- endfor %}
