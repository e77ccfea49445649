"""`scan_on_celery`: the scan stage with its steps on Celery workers (dagster-celery, Redis broker).

Each run scans one connection partition; runs for several connections spread over the workers.
Steps exchange data only through the lake (OX_BB_HOME on a volume every worker mounts) and the
instance (PostgreSQL): the scan assets return no values, so nothing lives on one worker's disk.
"""

import dagster as dg
from dagster._core.execution.retries import RetryMode
from dagster_celery.executor import CeleryExecutor

from ... import production
from ..bitbucket.partitions import connections_partitions
from ..scanning.assets import scan_findings


@dg.executor(name="celery_redis", requirements=dg.multiple_process_executor_requirements())
def celery_redis_executor(init_context: dg.InitExecutorContext) -> dg.Executor:
    """dagster-celery with the broker in OX_BB_REDIS_URL and the workers' own settings. Redis is
    checked here, at run start, so a broker that is down fails the run before any step is queued.
    The step pools are created here too, before runs started together race to create them."""
    settings = production.celery_settings()
    production.ensure_pools(init_context.instance)
    return CeleryExecutor(retries=RetryMode.ENABLED, **settings)


scan_on_celery = dg.define_asset_job(
    "scan_on_celery",
    selection=dg.AssetSelection.assets(scan_findings),
    partitions_def=connections_partitions,
    executor_def=celery_redis_executor,
    tags={"ox_bb/stage": "scan"},
    description=(
        "The scan stage for one connection on Celery workers (needs OX_BB_REDIS_URL, running "
        'workers and a PostgreSQL instance; see README "Production").'
    ),
)
