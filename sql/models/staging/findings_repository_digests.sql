-- What the findings of each repository are computed from, as one digest per repository: its rows in every
-- scanner's lake table (summed per lake partition by findings_partition_digests), its rows of application_mapping,
-- and what applies to all (the code_context and CWE family catalogs, the scanner list and the findings model's own
-- SQL). The incremental findings model rebuilds exactly the repositories whose digest differs from the last build's.
WITH inputs AS (
    -- the sums of the hashes of the repository's rows and their count, from the sums per lake partition
    SELECT repository_uuid, sum(input_digest) AS input_digest, sum(input_rows)::BIGINT AS input_rows
    FROM {{ ref('findings_partition_digests') }}
    GROUP BY repository_uuid
),

mapping AS (
    SELECT repository_uuid, sum(hash(m)::HUGEINT) AS mapping_digest
    FROM {{ ref('application_mapping') }} AS m
    GROUP BY repository_uuid
),

shared AS (
    SELECT hash('{{ local_md5(graph.nodes["model.ox_bb_warehouse.findings"].raw_code if execute else "") }}',
                '{{ var("scanners") | join(",") }}',
                (SELECT sum(hash(c)::HUGEINT) FROM {{ invoker_input('config_code_context_rules') }} AS c),
                (SELECT sum(hash(c)::HUGEINT) FROM {{ invoker_input('config_cwe_families') }} AS c),
                (SELECT sum(hash(c)::HUGEINT) FROM {{ invoker_input('config_cwe_family_rules') }} AS c))
               AS shared_digest
)

SELECT i.repository_uuid,
       hash(i.input_digest, i.input_rows, m.mapping_digest, s.shared_digest) AS digest,
       i.input_rows
FROM inputs AS i
LEFT JOIN mapping AS m USING (repository_uuid)
CROSS JOIN shared AS s
