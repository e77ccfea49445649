"""The default executor of every job and asset run: Dagster's multiprocess executor, creating the step pools
first. Runs the daemon launches (schedules, sensors, the UI, run retries) use it; `ox-bb run` and the Celery
executor create the pools their own way. Without it, two runs starting together on a fresh PostgreSQL instance
both find the `scanners` pool missing when their first step claims a slot, and the loser of the insert race
fails in an aborted transaction (see `production.ensure_pools`)."""

import dagster as dg

from ... import production


@dg.executor(
    name="multiprocess",
    config_schema=dg.multiprocess_executor.config_schema,
    requirements=dg.multiple_process_executor_requirements(),
)
def multiprocess_with_pools(init_context: dg.InitExecutorContext) -> dg.Executor:
    """`multiprocess_executor` (same config) after `production.ensure_pools`: executor init runs in the run
    worker at run start, before any step claims a pool slot."""
    production.ensure_pools(init_context.instance)
    return dg.multiprocess_executor.executor_creation_fn(init_context)
