"""git over HTTPS with a connection's credentials, passed as an HTTP header through git's
environment — never in the URL, the command line or a log line.

Bitbucket allows ~60,000 git operations an hour against ~1,000 REST requests, so branch heads and
file content come from here where they can.
"""

from __future__ import annotations

import base64
import os
import re
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from .errors import AuthenticationError, BitbucketError, NotFoundError

SAFE_GIT_CONFIG = {
    "protocol.allow": "never",  # only the transports listed next are allowed
    "protocol.https.allow": "always",
    "protocol.http.allow": "always",
    "core.hooksPath": os.devnull,
    "submodule.recurse": "false",
    "core.symlinks": "false",
    "credential.helper": "",
}


# What git prints when the server answered 5xx, dropped the connection or cut an answer short: worth a retry.
TRANSIENT_GIT = re.compile(
    r"HTTP 5\d\d|returned error: 5\d\d|curl (?:18|52|55|56)\b|Empty reply|"
    r"bytes of body are still expected|early EOF|unexpected disconnect|Connection reset|"
    r"transfer closed|Operation timed out|expected flush|protocol error|"
    r"remote end hung up|invalid index-pack"
)
AUTH_REFUSED = re.compile(r"HTTP 401\b|returned error: 401\b|Authentication failed|could not read Username")
NOT_FOUND = re.compile(r"HTTP 404\b|returned error: 404\b|not found", re.IGNORECASE)
RETRY_DELAYS = (1.0, 3.0)  # seconds before the 2nd and 3rd attempt of a remote command that failed transiently


def _cause(stderr: str) -> str:
    """The line of git's stderr that says why: the HTTP or transport error when there is one (git's last line
    is often only a consequence, e.g. "expected flush after ref listing" after an HTTP 503), else the last."""
    lines = [line.strip() for line in stderr.strip().splitlines() if line.strip()]
    for line in lines:
        if TRANSIENT_GIT.search(line) or AUTH_REFUSED.search(line) or "unable to access" in line:
            return line if line == lines[-1] else f"{line} ({lines[-1]})"
    return lines[-1] if lines else ""


@dataclass(frozen=True)
class RemoteHeads:
    head_branch: str | None  # what HEAD points at (the main branch)
    branches: dict[str, str]  # branch name -> commit hash


class TransientGitError(BitbucketError):
    """git failed on a 5xx, a dropped connection or a cut-short answer (retried; raised after the last try)."""


class GitAccess:
    """git operations for one connection. `credentials()` returns (user, secret) for Basic auth.

    `auth` is the connection's auth object (by default the one `credentials` is a method of): when git
    is refused and it can refresh (OAuth), the token is refreshed once and the command retried, as the
    REST client does; an expired token mid-run would otherwise fail every later clone and history read."""

    def __init__(
        self,
        connection_name: str,
        git_url: str,
        credentials,
        timeout: float = 120.0,
        *,
        auth=None,
        sleep=time.sleep,
        retry_delays: tuple[float, ...] = RETRY_DELAYS,
    ) -> None:
        self.connection_name = connection_name
        self.git_url = git_url.rstrip("/")
        self.credentials = credentials
        self.auth = auth if auth is not None else getattr(credentials, "__self__", None)
        self.timeout = timeout
        self.sleep = sleep  # injected by tests: retries wait in test time
        self.retry_delays = retry_delays
        self.operations = 0
        self._lock = threading.Lock()
        self._refresh_lock = threading.Lock()

    def remote_url(self, workspace: str, slug: str) -> str:
        return f"{self.git_url}/{workspace}/{slug}.git"

    def env(self, credentials: tuple[str, str] | None = None) -> dict[str, str]:
        user, secret = credentials or self.credentials()
        header = "Authorization: Basic " + base64.b64encode(f"{user}:{secret}".encode()).decode()
        config = {**SAFE_GIT_CONFIG, "http.extraHeader": header}
        env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
        env.update(
            {
                "GIT_TERMINAL_PROMPT": "0",
                "GIT_CONFIG_NOSYSTEM": "1",
                "GIT_CONFIG_GLOBAL": os.devnull,
                "GIT_ASKPASS": "true",
                "LC_ALL": "C",
                "GIT_CONFIG_COUNT": str(len(config)),
            }
        )
        for i, (key, value) in enumerate(config.items()):
            env[f"GIT_CONFIG_KEY_{i}"] = key
            env[f"GIT_CONFIG_VALUE_{i}"] = value
        return env

    def run(self, args: list[str], *, what: str, cwd: Path | None = None, remote: bool = True) -> str:
        """Run git; `remote=False` for local-only commands, which are not counted as git operations."""
        sent = self.credentials()
        try:
            return self._run(args, what=what, cwd=cwd, remote=remote, credentials=sent)
        except AuthenticationError as exc:
            if not (remote and exc.endpoint == what and self._can_refresh()):  # not the token endpoint's refusal
                raise
            with self._refresh_lock:  # threads refused the same token refresh it once
                if self.credentials() == sent:
                    self.auth.invalidate()  # the next credentials() fetches a new token
            return self._run(args, what=what, cwd=cwd, remote=remote, credentials=self.credentials())

    def _can_refresh(self) -> bool:
        return callable(getattr(self.auth, "can_refresh", None)) and bool(self.auth.can_refresh())

    def _run(self, args: list[str], *, what: str, cwd: Path | None, remote: bool, credentials) -> str:
        """A remote command that failed transiently (5xx, a dropped or cut-short answer) is tried again after
        `retry_delays`, as the REST client retries; git itself never retries. The last failure is raised."""
        for delay in (*self.retry_delays, None) if remote else (None,):
            try:
                return self._run_once(args, what=what, cwd=cwd, remote=remote, credentials=credentials)
            except TransientGitError:
                if delay is None:
                    raise
                self.sleep(delay)
        raise AssertionError("unreachable")

    def _run_once(self, args: list[str], *, what: str, cwd: Path | None, remote: bool, credentials) -> str:
        if remote:
            with self._lock:
                self.operations += 1
        try:
            proc = subprocess.run(
                ["git", *args],
                cwd=cwd,
                env=self.env(credentials),
                capture_output=True,
                text=True,
                timeout=self.timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise BitbucketError(
                f"connection '{self.connection_name}': git timed out after {self.timeout:.0f}s on {what}",
                connection=self.connection_name,
                endpoint=what,
            ) from None
        if proc.returncode != 0:
            # The whole of stderr is classified: a refusal of the second request (git-upload-pack) ends in a
            # protocol complaint, and only an earlier line says HTTP 401.
            message = _cause(proc.stderr)
            kw = {"connection": self.connection_name, "endpoint": what}
            if AUTH_REFUSED.search(proc.stderr):
                raise AuthenticationError(
                    f"connection '{self.connection_name}': git refused the credential on {what}", **kw
                )
            if remote and TRANSIENT_GIT.search(proc.stderr):
                raise TransientGitError(f"connection '{self.connection_name}': git failed on {what}: {message}", **kw)
            if NOT_FOUND.search(message):
                raise NotFoundError(f"connection '{self.connection_name}': {what} not found over git", **kw)
            raise BitbucketError(f"connection '{self.connection_name}': git failed on {what}: {message}", **kw)
        return proc.stdout

    def ls_remote(self, workspace: str, slug: str) -> RemoteHeads:
        """Branch heads and the main branch in one git request (no REST call)."""
        out = self.run(
            ["ls-remote", "--symref", self.remote_url(workspace, slug), "HEAD", "refs/heads/*"],
            what=f"{workspace}/{slug}.git",
        )
        head, branches = None, {}
        for line in out.splitlines():
            if line.startswith("ref: "):
                target, _, name = line[5:].partition("\t")
                if name == "HEAD":
                    head = target.removeprefix("refs/heads/")
                continue
            sha, _, ref = line.partition("\t")
            if ref.startswith("refs/heads/"):
                branches[ref.removeprefix("refs/heads/")] = sha
        return RemoteHeads(head_branch=head, branches=branches)
