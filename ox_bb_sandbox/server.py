"""Run the sandbox: generate or import a world, serve REST + git on 127.0.0.1, write a connections file."""

from __future__ import annotations

import shutil
import tempfile
import threading
from pathlib import Path

import yaml
from werkzeug.serving import WSGIRequestHandler, make_server

from ox_bb_pipeline.clock import Clock, ManualClock, SystemClock
from ox_bb_pipeline.files import atomic_write_text

from .admin import admin_handler
from .app import SandboxApp
from .control import FaultRule
from .generator import SandboxSpec, generate, seeded_secrets
from .githttp import git_handler
from .importer import import_repository
from .world import World


class QuietHandler(WSGIRequestHandler):
    """No access log on stderr: the counters at /_sandbox/stats say what was requested."""

    def log_request(self, *args, **kwargs) -> None:
        pass


class SandboxServer:
    """A running sandbox. Use as a context manager, or `start()` / `stop()`.

    `import_repos` are `PATH` or `PATH=workspace/slug` strings (like `--import-repo`).
    """

    def __init__(
        self,
        spec: SandboxSpec | None = None,
        *,
        port: int = 0,
        data_dir: Path | None = None,
        import_repos: list[str] = (),
        clock: Clock | None = None,
        manual_clock: bool = False,
        rate_limit: int = 1000,
        faults: list[FaultRule] = (),
    ) -> None:
        self.spec = spec or SandboxSpec()
        self._own_dir = data_dir is None
        self.data_dir = Path(data_dir or tempfile.mkdtemp(prefix="ox-bb-sandbox-"))
        self.clock = clock or (ManualClock() if manual_clock else SystemClock())
        try:
            self.world: World = generate(self.spec, self.data_dir)
            for item in import_repos:
                path, _, target = item.partition("=")
                import_repository(self.world, Path(path), target or None)
            self.app = SandboxApp(
                self.world,
                clock=self.clock,
                rate_limit=rate_limit,
                git_handler=git_handler,
                admin_handler=admin_handler,
            )
            self.app.faults.set(list(faults))
            self._server = make_server("127.0.0.1", port, self.app, threaded=True, request_handler=QuietHandler)
        except BaseException:
            # An import refused or the port taken: don't leave the generated repositories behind.
            if self._own_dir:
                shutil.rmtree(self.data_dir, ignore_errors=True)
            raise
        self._server.daemon_threads = True
        self.port = self._server.server_port
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str:
        return f"{self.base_url}/2.0"

    def advisory_settings(self) -> dict[str, str]:
        """The environment that points `ox-bb advisories sync` at this sandbox's OSV / KEV / EPSS mirror."""
        from .mirror import EPSS_PATH, KEV_PATH

        return {
            "OX_BB_OSV_MIRROR": f"{self.base_url}/osv",
            "OX_BB_KEV_URL": self.base_url + KEV_PATH,
            "OX_BB_EPSS_URL": self.base_url + EPSS_PATH,
        }

    def start(self) -> SandboxServer:
        # A short poll interval makes `stop()` quick (the default 0.5 s adds up over many test servers).
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="ox-bb-sandbox", daemon=True
        )
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self._server.serve_forever()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread:
            self._thread.join(timeout=5)
        if self._own_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def secrets(self) -> dict[str, str]:
        return seeded_secrets(self.world)

    def write_connections(self, path: Path, settings: dict | None = None) -> Path:
        """Write a connections file for the seeded credentials and, beside it, the env file with their
        secrets (mode 0600). The connections file holds `${ENV}` references only; `settings` (e.g.
        max_retries, timeouts) are added to every connection."""
        return write_connections(path, self.api_url, self.world, settings)


def connection_entries(api_url: str, world: World) -> list[dict]:
    ws0 = sorted(world.workspaces)[0] if world.workspaces else None
    return [
        {
            "name": "sandbox-app",
            "method": "app",
            "host_url": api_url,
            "client_id": "${OX_BB_SANDBOX_APP_KEY}",
            "client_secret": "${OX_BB_SANDBOX_APP_SECRET}",
            "description": "OAuth consumer, client-credentials grant; acts as alice (workspace owner)",
        },
        {
            "name": "sandbox-idp",
            "method": "idp",
            "host_url": api_url,
            "client_id": "${OX_BB_SANDBOX_IDP_KEY}",
            "client_secret": "${OX_BB_SANDBOX_IDP_SECRET}",
            "refresh_token": "${OX_BB_SANDBOX_IDP_REFRESH_TOKEN}",
            "description": "Identity-provider OAuth (authorization code + refresh token) for bob, a non-admin member",
        },
        {
            "name": "sandbox-token",
            "method": "token",
            "host_url": api_url,
            "email": "alice@example.com",
            "api_token": "${OX_BB_SANDBOX_TOKEN_ALICE_ADMIN}",
            "description": "API token with every scope the pipeline uses; alice is a workspace owner",
        },
        {
            "name": "sandbox-token-member",
            "method": "token",
            "host_url": api_url,
            "email": "bob@example.com",
            "api_token": "${OX_BB_SANDBOX_TOKEN_BOB_MEMBER}",
            "description": "API token with every scope; bob is a member, not an admin",
        },
        {
            "name": "sandbox-token-limited",
            "method": "token",
            "host_url": api_url,
            "email": "carol@example.com",
            "api_token": "${OX_BB_SANDBOX_TOKEN_CAROL_LIMITED}",
            "description": "API token missing the pull-request, pipeline, webhook and admin scopes",
        },
        {
            "name": "sandbox-access-token",
            "method": "access_token",
            "host_url": api_url,
            "token": "${OX_BB_SANDBOX_ACCESS_TOKEN_WORKSPACE_TOKEN}",
            "workspaces": [ws0] if ws0 else [],
            "description": f"Workspace access token for {ws0}",
        },
    ]


def write_connections(path: Path, api_url: str, world: World, settings: dict | None = None) -> Path:
    path = Path(path)
    # Always FILE.env: for a FILE already named *.env, reusing it would overwrite the secrets just written.
    env_path = path.with_name(path.name + ".env")
    document = {
        "# generated by": "ox-bb sandbox serve",
        "env_file": env_path.name,
        "connections": [{**entry, **(settings or {})} for entry in connection_entries(api_url, world)],
    }
    secrets_text = "".join(f"{k}={v}\n" for k, v in sorted(seeded_secrets(world).items()))
    atomic_write_text(env_path, secrets_text, mode=0o600)
    text = (
        "# Connections to the ox-bb sandbox (generated). Secrets are ${ENV} references; their values\n"
        f"# are in {env_path.name} beside this file (real environment variables take precedence).\n"
    )
    document.pop("# generated by")
    text += yaml.safe_dump(document, sort_keys=False)
    atomic_write_text(path, text)
    return path
