"""One dynamic partition per connection in connections.yaml (kept in sync by `connections_sensor`)."""

import dagster as dg

connections_partitions = dg.DynamicPartitionsDefinition(name="connections")
