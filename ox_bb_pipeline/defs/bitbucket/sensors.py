"""Keep the `connections` partitions equal to the connection names in connections.yaml."""

import dagster as dg

from ...config import ConfigError
from .partitions import connections_partitions
from .resources import BitbucketResource


def partition_requests(configured: list[str], existing: list[str]) -> list:
    added = sorted(set(configured) - set(existing))
    removed = sorted(set(existing) - set(configured))
    requests = []
    if added:
        requests.append(connections_partitions.build_add_request(added))
    if removed:
        requests.append(connections_partitions.build_delete_request(removed))
    return requests


@dg.sensor(
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Adds and removes connection partitions as connections.yaml changes.",
)
def connections_sensor(context: dg.SensorEvaluationContext, bitbucket: BitbucketResource) -> dg.SensorResult:
    try:
        configured = bitbucket.connections().names
    except ConfigError as exc:
        return dg.SensorResult(skip_reason=str(exc))
    existing = context.instance.get_dynamic_partitions(connections_partitions.name)
    requests = partition_requests(configured, existing)
    if not requests:
        return dg.SensorResult(skip_reason="partitions already match connections.yaml")
    return dg.SensorResult(dynamic_partitions_requests=requests)
