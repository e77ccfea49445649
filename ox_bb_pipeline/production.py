"""Production services, checked before anything writes: the PostgreSQL behind the Dagster
instance in DAGSTER_HOME, and the Redis broker of the Celery scale-out (`OX_BB_REDIS_URL`).

A missing variable, a server that is down or a refused password becomes one sentence naming the
server, the user and the variable to fix (never the password), instead of a stack trace halfway
through a run. Plain Python: Dagster is not imported here.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import yaml

REDIS_URL_VAR = "OX_BB_REDIS_URL"
CELERY_YAML = Path(__file__).with_name("celery.yaml")
CONNECT_TIMEOUT_SECONDS = 5
PG_FIELDS = {
    "hostname": "host",
    "port": "port",
    "username": "user",
    "password": "password",
    "db_name": "dbname",
}


class PreflightError(ValueError):
    """The production environment is not usable. A ValueError, so `ox-bb run` reports it as it
    reports any other bad setting: one line, exit status 1."""


def _resolve(value, what: str, env: Mapping[str, str]) -> str:
    """A dagster.yaml value: a literal or `{env: NAME}` (as Dagster reads it)."""
    if isinstance(value, dict) and "env" in value:
        name = value["env"]
        if not env.get(name):
            raise PreflightError(f'{what} comes from ${name}, which is not set; set it (README "Production")')
        return env[name]
    return str(value)


def postgres_storage(dagster_home: Path, env: Mapping[str, str] = os.environ) -> dict | None:
    """psycopg2 connection keywords for the instance's PostgreSQL storage, or None when the
    instance in `dagster_home` is not PostgreSQL-backed (SQLite needs no server)."""
    path = dagster_home / "dagster.yaml"
    settings = (yaml.safe_load(path.read_text()) or {}) if path.exists() else {}
    postgres = (settings.get("storage") or {}).get("postgres")
    if postgres is None:
        return None
    if "postgres_url" in postgres:
        import psycopg2
        from psycopg2.extensions import parse_dsn

        try:
            return parse_dsn(_resolve(postgres["postgres_url"], "the PostgreSQL URL", env))
        except psycopg2.ProgrammingError:  # its message would repeat the URL, password included
            raise PreflightError(
                "the PostgreSQL URL is not a valid postgresql://user:password@host:port/db URL; fix it"
            ) from None
    database = postgres["postgres_db"]
    keywords = {
        key: _resolve(database[field], f"PostgreSQL {field}", env)
        for field, key in PG_FIELDS.items()
        if field in database
    }
    keywords.setdefault("port", "5432")
    return keywords


def check_postgres(keywords: dict) -> None:
    """Open and close one connection, or say which server refused and why."""
    import psycopg2

    host, port, user = keywords.get("host"), keywords.get("port"), keywords.get("user")
    where = f"PostgreSQL at {host}:{port} as user {user}"
    try:
        psycopg2.connect(**keywords, connect_timeout=CONNECT_TIMEOUT_SECONDS).close()
    except psycopg2.Error as exc:
        reason = " ".join(str(exc).split())
        if keywords.get("password"):
            reason = reason.replace(keywords["password"], "***")
        raise PreflightError(
            f"cannot reach {where} (database {keywords.get('dbname')}): {reason}; start it, "
            "or fix OX_BB_PG_HOST, OX_BB_PG_PORT, OX_BB_PG_USER, OX_BB_PG_PASSWORD, "
            "OX_BB_PG_DB"
        ) from None


def check_instance(env: Mapping[str, str] = os.environ) -> str:
    """Check the PostgreSQL of the DAGSTER_HOME instance, if it has one; say what was checked."""
    home = env.get("DAGSTER_HOME")
    keywords = postgres_storage(Path(home), env) if home else None
    if keywords is None:
        where = home or "ephemeral (DAGSTER_HOME unset)"
        return f"Dagster instance: {where}, not PostgreSQL: nothing to check"
    check_postgres(keywords)
    return (
        f"Dagster instance: PostgreSQL at {keywords.get('host')}:{keywords.get('port')} "
        f"database {keywords.get('dbname')} as user {keywords.get('user')}"
    )


def redis_url(env: Mapping[str, str] = os.environ) -> str:
    url = env.get(REDIS_URL_VAR, "")
    if not url:
        raise PreflightError(
            f"the Celery scale-out needs a Redis broker: set {REDIS_URL_VAR}, e.g. redis://redis-host:6379/0"
        )
    if urlsplit(url).scheme not in ("redis", "rediss"):
        raise PreflightError(f"{REDIS_URL_VAR} must be a redis:// or rediss:// URL, not {masked_url(url)}")
    return url


def masked_url(url: str) -> str:
    """The URL with any password replaced by ***, for messages."""
    parts = urlsplit(url)
    if not parts.password:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urlunsplit(parts._replace(netloc=netloc))


def check_redis(url: str) -> None:
    """PING the broker, or say which one did not answer and why."""
    import redis

    try:
        redis.Redis.from_url(
            url,
            socket_connect_timeout=CONNECT_TIMEOUT_SECONDS,
            socket_timeout=CONNECT_TIMEOUT_SECONDS,
        ).ping()
    except redis.RedisError as exc:
        raise PreflightError(
            f"cannot reach Redis at {masked_url(url)}: {exc}; start it, or set {REDIS_URL_VAR}"
        ) from None


def celery_settings(env: Mapping[str, str] = os.environ) -> dict:
    """Broker, backend and Celery settings for the executor: the same file the workers start
    with (`celery.yaml`), so both ends agree. Checks that the broker answers."""
    url = redis_url(env)
    check_redis(url)
    config = yaml.safe_load(CELERY_YAML.read_text())["execution"]["config"]
    return {"broker": url, "backend": url, "config_source": config.get("config_source") or {}}


def preflight(env: Mapping[str, str] = os.environ, *, celery: bool = False) -> list[str]:
    """Every check for this environment; returns one line per service that answered."""
    checked = [check_instance(env)]
    if celery or env.get(REDIS_URL_VAR):
        url = redis_url(env)
        check_redis(url)
        checked.append(f"Celery broker: Redis at {masked_url(url)}")
    return checked


# The pools of the pipeline's steps (`pool=` on the extract and scan assets).
POOLS = ("bitbucket_api", "scanners")


def ensure_pools(instance) -> None:
    """Create the step pools at their default limit before any run claims them. A run creates a
    missing pool itself when its first step claims a slot, but on PostgreSQL two runs that start
    together on a fresh instance both see the pool missing and both create it; Dagster catches
    the loser's duplicate-key error and then updates inside the aborted transaction
    (InFailedSqlTransaction), which fails that run. Here the loser of the same race sees the pool
    the winner made and carries on."""
    storage = instance.event_log_storage
    if not storage.supports_global_concurrency_limits or instance.global_op_concurrency_default_limit is None:
        return
    for pool in POOLS:
        if pool in {p.name for p in storage.get_pool_limits()}:
            continue
        try:
            storage.initialize_concurrency_limit_to_default(pool)
        except Exception:  # noqa: BLE001 - whatever the driver raised, the question is whether the pool exists
            if pool not in {p.name for p in storage.get_pool_limits()}:
                raise
