"""Typed configuration: `connections.yaml` (Bitbucket accounts and repository selection).

Secrets appear in the file only as `${ENV_VAR}` references. Values come from the process
environment, or from an optional `env_file` beside the file (the environment wins). Every problem
in a file is reported at once, each naming the connection and field, before anything runs.
"""

from __future__ import annotations

import difflib
import fnmatch
import hashlib
import ipaddress
import os
import re
import typing
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from .files import atomic_write_text

DEFAULT_HOST_URL = "https://api.bitbucket.org/2.0"
ENV_REF = re.compile(r"^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$")
NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


class ConfigError(ValueError):
    """A configuration file with problems; `problems` lists each, naming the place and the fix."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        super().__init__(f"{source}: {len(problems)} problem(s):\n" + "\n".join(f"  - {p}" for p in problems))


def did_you_mean(word: str, known) -> str:
    """`: did you mean `include`?` for a near miss among `known`, else nothing."""
    close = difflib.get_close_matches(str(word), sorted(set(known) - {word}), n=1, cutoff=0.6)
    return f": did you mean `{close[0]}`?" if close else ""


def keys_at(model: type[BaseModel], loc: tuple) -> set[str]:
    """The keys the model nested at `loc` (pydantic's error location, ending in the key) accepts:
    the candidates for a misspelt key there."""
    current: object = model
    for part in loc[:-1]:
        if isinstance(part, int):
            continue  # a list index: the item type is among the annotation's arguments
        models = [t for t in _types(current) if isinstance(t, type) and issubclass(t, BaseModel)]
        field = next((m.model_fields[part] for m in models if part in m.model_fields), None)
        if field is None:
            return set()
        current = field.annotation
    return {
        info.alias or name
        for t in _types(current)
        if isinstance(t, type) and issubclass(t, BaseModel)
        for name, info in t.model_fields.items()
    }


def _types(annotation: object) -> list:
    """An annotation and every type inside it (list[X], X | None, Annotated[…])."""
    found, stack = [], [annotation]
    while stack:
        current = stack.pop()
        found.append(current)
        stack.extend(typing.get_args(current))
    return found


def data_home_setting() -> str | None:
    """`OX_BB_HOME` as set, or None: the one place that reads it (Dagster assets get the home from
    the `storage` resource, core functions take it as an argument)."""
    return os.environ.get("OX_BB_HOME") or None


def data_home() -> Path:
    """`OX_BB_HOME` (default ./data): lake/, warehouse.duckdb, exports/, reports/, cache/."""
    return Path(data_home_setting() or "data").resolve()


def state_dir() -> Path:
    """Per-installation secrets state, independent of the current directory and of any data home:
    rotated identity-provider refresh tokens (tokens/) and the fingerprint salt (secret-salt).
    `OX_BB_STATE_DIR`, else `$XDG_STATE_HOME/ox-bb`, else `~/.local/state/ox-bb`."""
    if os.environ.get("OX_BB_STATE_DIR"):
        return Path(os.environ["OX_BB_STATE_DIR"]).expanduser().resolve()
    xdg = os.environ.get("XDG_STATE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".local" / "state") / "ox-bb"


LAST_HOME = "last-data-home"  # in the state dir: the home `ox-bb run` last wrote, for a hint elsewhere


def remember_data_home(home: Path) -> None:
    atomic_write_text(state_dir() / LAST_HOME, str(home))


def data_home_hint() -> str:
    """Why the data home is where it is, and what to set, for a command that found nothing there."""
    if data_home_setting():
        return f"OX_BB_HOME is {data_home_setting()}"
    try:
        last = (state_dir() / LAST_HOME).read_text().strip()
    except OSError:
        last = ""
    return (
        f"OX_BB_HOME is not set, so the data home is ./data in the current directory ({Path.cwd()}); "
        "set OX_BB_HOME to the data home the pipeline writes"
        + (f" (ox-bb run last wrote {last})" if last and Path(last) != data_home() else "")
    )


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Timeouts(BaseModel):
    model_config = ConfigDict(extra="forbid")
    connect: float = Field(5.0, gt=0)
    read: float = Field(30.0, gt=0)


class PullRequestScans(BaseModel):
    """Pull-request scans of a connection (`ox-bb scan-pr`, the pull_request_scan_sensor): what fails a
    report, which repositories opted out, and whether anything is written back to Bitbucket."""

    model_config = ConfigDict(extra="forbid")
    enabled: bool = False  # opt-in: the sensor scans this connection's open pull requests, `verify` probes writes
    # An introduced finding at or above this severity turns the Code Insights report FAILED.
    severity_threshold: Literal["info", "low", "medium", "high", "critical"] = "high"
    exclude: list[str] = Field(default_factory=list)  # opt-out: globs on workspace/repo_slug, never scanned
    dry_run: bool = False  # compute and record in the lake; write no report, annotation or comment

    def opted_out(self, workspace: str, slug: str) -> bool:
        return any(fnmatch.fnmatchcase(f"{workspace}/{slug}", glob) for glob in self.exclude)


class HistoryScan(BaseModel):
    """Secrets in git history (scanners/history.py): off unless enabled; bounded per repository and run."""

    model_config = ConfigDict(extra="forbid")
    enabled: bool = False
    max_commits: int = Field(5_000, ge=1)  # commits read per repository and run; the rest waits for the next
    max_bytes: int = Field(512 * 1024 * 1024, ge=1024)  # bytes of `git log -p` read per repository and run
    branches: list[str] = Field(default_factory=list)  # long-lived branches besides main (globs: release/*)


class _Connection(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    description: str = ""
    host_url: str = DEFAULT_HOST_URL
    web_url: str | None = None  # derived from host_url: https://api.bitbucket.org/2.0 -> https://bitbucket.org
    workspaces: list[str] | None = None  # default: every workspace the credential sees
    include: list[str] = Field(default_factory=lambda: ["*"])  # globs on workspace/PROJECT_KEY/repo_slug
    exclude: list[str] = Field(default_factory=list)
    requests_per_hour: int = Field(900, ge=1, le=100_000)  # below Bitbucket's ~1,000/h on purpose
    # Repository shards the scan is split into (None: one per 100 repositories); scanned side by side.
    scan_shards: int | None = Field(None, ge=1, le=64)
    timeouts: Timeouts = Field(default_factory=Timeouts)
    max_retries: int = Field(5, ge=0, le=20)
    pull_request_scans: PullRequestScans = Field(default_factory=PullRequestScans)
    history_scan: HistoryScan = Field(default_factory=HistoryScan)
    # Opt-in: ask this connection's own host whether Bitbucket credentials found in code or history are still
    # accepted (one read-only request each, rate-limited; bitbucket/live.py). Never another host or secret kind.
    live_checks: bool = False

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not NAME.match(value):
            raise ValueError("use lower-case letters, digits, '-' and '_' (it becomes a Dagster partition key)")
        return value

    @field_validator("host_url", "web_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is None:
            return value
        if not re.match(r"^https?://[^/\s]+", value):
            raise ValueError("must be an http(s) URL such as https://api.bitbucket.org/2.0")
        parts = urlsplit(value)
        # Messages never repeat the URL: it may hold the very password they refuse.
        if parts.username is not None or parts.password is not None:
            raise ValueError(
                "must not hold a user name or password (user:password@host): credentials go in "
                "the connection's own fields, as ${ENV_VAR} references"
            )
        if parts.scheme == "http" and not _loopback(parts.hostname or ""):
            raise ValueError(
                "plain http:// is allowed only for this machine (localhost, 127.0.0.1, ::1, e.g. "
                "the sandbox); use https:// for any other host"
            )
        return value.rstrip("/")

    @property
    def base_web_url(self) -> str:
        if self.web_url:
            return self.web_url
        root = self.host_url.removesuffix("/2.0")
        scheme, _, rest = root.partition("://")
        return f"{scheme}://{rest.removeprefix('api.')}"

    @property
    def git_url(self) -> str:
        return self.base_web_url

    @property
    def token_url(self) -> str:
        return f"{self.base_web_url}/site/oauth2/access_token"

    def selects(self, workspace: str, project_key: str, slug: str) -> bool:
        """Whether `workspace/PROJECT_KEY/repo_slug` is selected by include and not excluded."""
        key = f"{workspace}/{project_key}/{slug}"
        return any(fnmatch.fnmatchcase(key, g) for g in self.include) and not any(
            fnmatch.fnmatchcase(key, g) for g in self.exclude
        )


class AppConnection(_Connection):
    """The Bitbucket App method: an OAuth consumer, client-credentials grant."""

    method: Literal["app"]
    client_id: str
    client_secret: SecretStr


class IdpConnection(_Connection):
    """The Identity Provider method: OAuth authorization-code result (refresh token), refreshed
    automatically; the rotated refresh token is kept in `token_store` (never logged)."""

    method: Literal["idp"]
    client_id: str
    client_secret: SecretStr
    refresh_token: SecretStr
    token_store: Path | None = None  # default: the state dir's tokens/<name>-<consumer>.json

    def token_store_path(self) -> Path:
        """Outside any data home, so a new or cleared home, or another working directory, still finds
        the live token (after the first rotation the one in the connections file is spent). Named by
        the consumer and token endpoint too: two projects may both call a connection `idp`."""
        if self.token_store:
            return self.token_store
        consumer = hashlib.sha256(f"{self.token_url} {self.client_id}".encode()).hexdigest()[:12]
        return state_dir() / "tokens" / f"{self.name}-{consumer}.json"

    def legacy_token_store_path(self) -> Path:
        """Where releases before the state dir kept it (read once, so an upgrade keeps working)."""
        return data_home() / "cache" / "tokens" / f"{self.name}.json"


class TokenConnection(_Connection):
    """User name and token: an Atlassian API token with scopes, sent as Basic email:token."""

    method: Literal["token"]
    email: str
    api_token: SecretStr

    @field_validator("email")
    @classmethod
    def _email(cls, value: str) -> str:
        if "@" not in value:
            raise ValueError("use the Atlassian account's email address (Bitbucket REST accepts no user name)")
        return value


class AccessTokenConnection(_Connection):
    """A repository, project or workspace access token (Bearer); bound to one workspace."""

    method: Literal["access_token"]
    token: SecretStr


Connection = Annotated[
    AppConnection | IdpConnection | TokenConnection | AccessTokenConnection, Field(discriminator="method")
]
SECRET_FIELDS = {"client_secret", "refresh_token", "api_token", "token"}  # must be ${ENV} references
CONNECTION_TYPES = {
    "app": AppConnection,
    "idp": IdpConnection,
    "token": TokenConnection,
    "access_token": AccessTokenConnection,
}
METHODS = ("app", "idp", "token", "access_token")


class ConnectionsFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    env_file: str | None = None
    connections: list[Connection]

    def get(self, name: str) -> _Connection:
        for connection in self.connections:
            if connection.name == name:
                return connection
        raise KeyError(name)

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.connections]


def did_you_mean_key(entry: dict, wanted: set[str]) -> str:
    """For a missing key: the entry's unknown key that is probably it misspelt (`methd` -> method)."""
    for key in entry:
        hint = did_you_mean(key, wanted)
        if hint and key not in wanted:
            return f" (found `{key}`{hint})"
    return ""


def default_connections_path() -> Path:
    return Path(os.environ.get("OX_BB_CONNECTIONS", "connections.yaml"))


def read_env_file(path: Path) -> dict[str, str]:
    values = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep:
            raise ConfigError(str(path), [f"line {number}: expected KEY=VALUE"])
        values[key.strip().removeprefix("export ").strip()] = value.strip().strip('"').strip("'")
    return values


def load_connections(path: Path | None = None, environ: dict[str, str] | None = None) -> ConnectionsFile:
    """Parse, resolve `${ENV}` references and validate; raise ConfigError listing every problem."""
    path = Path(path or default_connections_path())
    source = str(path)
    if not path.exists():
        raise ConfigError(source, [f"file not found; copy connections.example.yaml to {path} or set OX_BB_CONNECTIONS"])
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(source, [f"not valid YAML: {exc}"]) from exc
    if not isinstance(raw, dict) or not isinstance(raw.get("connections"), list):
        raise ConfigError(source, ["expected a mapping with a 'connections:' list"])
    env = dict(environ if environ is not None else os.environ)
    problems: list[str] = []
    if raw.get("env_file"):
        env_path = path.parent / raw["env_file"]
        if env_path.exists():
            env = {**read_env_file(env_path), **env}
        else:
            problems.append(f"env_file {env_path} does not exist")
    seen: set[str] = set()
    resolved = []
    for index, entry in enumerate(raw["connections"]):
        where = f"connections[{index}]"
        if not isinstance(entry, dict):
            problems.append(f"{where}: expected a mapping")
            continue
        name = entry.get("name")
        where = f"connection '{name}'" if name else where
        if name in seen:
            problems.append(f"{where}: duplicate name; each connection needs its own")
        seen.add(name)
        method = entry.get("method")
        if method is None:
            problems.append(
                f"{where}: missing `method`{did_you_mean_key(entry, {'method'})}; use one of {', '.join(METHODS)}"
            )
            continue
        if method not in METHODS:
            problems.append(
                f"{where}: unknown method {method!r}{did_you_mean(method, METHODS)} (use one of {', '.join(METHODS)})"
            )
            continue
        entry = dict(entry)
        for field, value in entry.items():
            match = ENV_REF.match(value) if isinstance(value, str) else None
            if field in SECRET_FIELDS and match is None:
                problems.append(
                    f"{where}: field '{field}' holds a literal secret; write it as ${{ENV_VAR}} "
                    "and put the value in the environment or the env_file"
                )
                entry[field] = "x"  # keep validating the rest
            elif match and not env.get(match.group(1)):
                problems.append(f"{where}: field '{field}' refers to ${{{match.group(1)}}}, which is not set")
                entry[field] = "x"
            elif match:
                entry[field] = env[match.group(1)]
        resolved.append((where, entry))
    connections = []
    for where, entry in resolved:
        try:
            connections.append(ConnectionsFile.model_validate({"connections": [entry]}).connections[0])
        except ValidationError as exc:
            for error in exc.errors():
                loc = ".".join(str(p) for p in error["loc"][3:] if p not in METHODS)
                message = error["msg"].removeprefix("Value error, ")
                if error["type"] == "extra_forbidden":
                    known = keys_at(CONNECTION_TYPES[entry["method"]], tuple(loc.split(".")))
                    hint = did_you_mean(loc, known) or " (see connections.example.yaml)"
                    problems.append(f"{where}: unknown key `{loc}`{hint}")
                    continue
                if error["type"] == "missing":
                    problems.append(f"{where}: missing `{loc}`")
                    continue
                problems.append(f"{where}: field '{loc}': {message}")
    for key in sorted(raw.keys() - {"connections", "env_file"}):
        problems.append(f"unknown top-level key `{key}`{did_you_mean(key, {'connections', 'env_file'})}")
    if problems:
        raise ConfigError(source, problems)
    return ConnectionsFile(env_file=raw.get("env_file"), connections=connections)
