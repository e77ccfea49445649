"""The application layer: the `ox-bb` CLI, the in-process runner, the dev UI launcher."""
