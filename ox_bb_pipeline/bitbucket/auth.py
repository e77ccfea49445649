"""Auth methods as `requests` auth classes: API token (Basic), OAuth (app, identity provider) and
access tokens (Bearer). OAuth token-endpoint calls go through authlib; when to refresh is decided
with an injectable clock, and once more on Bitbucket's "Access token expired" 401.
"""

from __future__ import annotations

import hashlib
import json
import threading
from datetime import datetime, timedelta
from pathlib import Path

import requests
from authlib.integrations.base_client import OAuthError
from authlib.integrations.requests_client import OAuth2Session
from requests.auth import AuthBase, HTTPBasicAuth

from ..clock import Clock, SystemClock
from ..config import AccessTokenConnection, AppConnection, IdpConnection, TokenConnection
from ..files import atomic_write_text
from .errors import AuthenticationError, NotBitbucketError, unreachable_error, unreachable_reason

EXPIRY_LEEWAY = timedelta(seconds=60)


class BearerAuth(AuthBase):
    """Repository / project / workspace access token."""

    kind = "access_token"

    def __init__(self, token: str) -> None:
        self._token = token

    def __call__(self, request):
        request.headers["Authorization"] = f"Bearer {self._token}"
        return request

    def git_credentials(self) -> tuple[str, str]:
        return "x-token-auth", self._token

    def can_refresh(self) -> bool:
        return False


class ApiTokenAuth(HTTPBasicAuth):
    """Atlassian API token with scopes: Basic email:token for REST, x-bitbucket-api-token-auth for git."""

    kind = "token"

    def git_credentials(self) -> tuple[str, str]:
        return "x-bitbucket-api-token-auth", self.password

    def can_refresh(self) -> bool:
        return False

    def __repr__(self) -> str:  # HTTPBasicAuth has no repr; make sure ours never shows the token
        return f"ApiTokenAuth(email={self.username!r})"


class RefreshTokenStore:
    """Where the rotated refresh token of an identity-provider connection lives (mode 0600), with a
    digest of the configured token it descends from: a new token in the connections file (after a
    re-authorisation) wins over a stored descendant of the old one."""

    def __init__(self, path: Path, legacy: Path | None = None) -> None:
        self.path = Path(path)
        self.legacy = legacy  # read when `path` does not exist yet (an upgrade), never written

    def load(self, configured: str | None = None) -> str | None:
        for path in (self.path, self.legacy):
            try:
                data = json.loads(path.read_text()) if path else None
            except (FileNotFoundError, ValueError):
                continue
            if not isinstance(data, dict):
                continue
            if configured and data.get("configured") not in (None, _digest(configured)):
                return None  # the connections file holds a newer authorisation
            return data.get("refresh_token")
        return None

    def save(self, refresh_token: str, configured: str | None = None) -> None:
        record = {"refresh_token": refresh_token, **({"configured": _digest(configured)} if configured else {})}
        atomic_write_text(self.path, json.dumps(record), mode=0o600)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()[:16]


class OAuthAuth(AuthBase):
    """OAuth 2.0 access tokens for the app (client credentials) and idp (refresh token) methods."""

    kind = "oauth"

    def __init__(
        self,
        *,
        connection_name: str,
        token_url: str,
        client_id: str,
        client_secret: str,
        refresh_token: str | None = None,
        store: RefreshTokenStore | None = None,
        clock: Clock | None = None,
        timeout: tuple[float, float] = (5.0, 30.0),
        method: str = "app",
    ) -> None:
        self.connection_name = connection_name
        self.method = method  # the connection's method (app | idp), for messages
        self.token_url = token_url
        self.clock = clock or SystemClock()
        self.timeout = timeout
        self.store = store
        self._configured = refresh_token
        stored = store.load(refresh_token) if store and refresh_token else None
        self._refresh_token = stored or refresh_token
        self._token_source = f"stored in {store.path}" if stored else "from the connections file"
        self._oauth = OAuth2Session(client_id, client_secret, token_endpoint_auth_method="client_secret_basic")
        self._access_token: str | None = None
        self._expires_at: datetime | None = None
        self._lock = threading.Lock()
        self.token_requests = 0

    @property
    def grant(self) -> str:
        return "refresh_token" if self._refresh_token else "client_credentials"

    def __call__(self, request):
        request.headers["Authorization"] = f"Bearer {self.access_token()}"
        return request

    def access_token(self) -> str:
        with self._lock:
            if (
                self._access_token is None
                or self._expires_at is None
                or self.clock.now() >= self._expires_at - EXPIRY_LEEWAY
            ):
                self._fetch()
            return self._access_token

    def invalidate(self) -> None:
        with self._lock:
            self._access_token = None

    def can_refresh(self) -> bool:
        return True

    def git_credentials(self) -> tuple[str, str]:
        return "x-token-auth", self.access_token()

    def _fetch(self) -> None:
        self.token_requests += 1
        try:
            if self._refresh_token:
                token = self._oauth.refresh_token(
                    self.token_url, refresh_token=self._refresh_token, timeout=self.timeout
                )
            else:
                token = self._oauth.fetch_token(self.token_url, grant_type="client_credentials", timeout=self.timeout)
        except OAuthError as exc:
            where = f"the refresh token {self._token_source}"
            raise AuthenticationError(
                f"connection '{self.connection_name}' ({self.method}): the OAuth token endpoint refused the "
                f"{self.grant} grant ({exc.error}); "
                + (
                    f"{where} is no longer valid: re-authorise to get a new refresh token and put it in the "
                    "connection's refresh_token (its ${ENV} variable); it then replaces the stored one"
                    + (f" in {self.store.path}" if self.store else "")
                    if self._refresh_token and exc.error == "invalid_grant"
                    else "check the consumer key/secret"
                    + (" and re-authorise to get a new refresh token" if self._refresh_token else "")
                ),
                connection=self.connection_name,
                endpoint="/site/oauth2/access_token",
                status=400,
            ) from None
        except requests.RequestException as exc:
            reason = unreachable_reason(exc)
            if reason:
                raise unreachable_error(
                    self.connection_name, self.token_url, reason, "/site/oauth2/access_token"
                ) from None
            raise AuthenticationError(
                f"connection '{self.connection_name}' ({self.method}): cannot reach the OAuth token endpoint "
                f"({type(exc).__name__})",
                connection=self.connection_name,
                endpoint="/site/oauth2/access_token",
            ) from None
        except ValueError:  # not JSON at all: an HTML page where the token endpoint should be
            token = {}
        if not token.get("access_token"):
            raise NotBitbucketError(
                f"connection '{self.connection_name}' ({self.method}): {self.token_url} did not answer an OAuth "
                "token; check host_url (and web_url) in the connections file point at Bitbucket",
                connection=self.connection_name,
                endpoint="/site/oauth2/access_token",
            )
        self._access_token = token["access_token"]
        self._expires_at = self.clock.now() + timedelta(seconds=int(token.get("expires_in", 7200)))
        new_refresh = token.get("refresh_token")
        if self._refresh_token and new_refresh and new_refresh != self._refresh_token:
            self._refresh_token = new_refresh
            self._token_source = f"stored in {self.store.path}" if self.store else "rotated in this process"
            if self.store:
                self.store.save(new_refresh, self._configured)

    def __repr__(self) -> str:
        return f"OAuthAuth(connection={self.connection_name!r}, grant={self.grant!r})"


def auth_for(connection, clock: Clock | None = None) -> AuthBase:
    """The auth object for a configured connection."""
    timeout = (connection.timeouts.connect, connection.timeouts.read)
    if isinstance(connection, TokenConnection):
        return ApiTokenAuth(connection.email, connection.api_token.get_secret_value())
    if isinstance(connection, AccessTokenConnection):
        return BearerAuth(connection.token.get_secret_value())
    if isinstance(connection, AppConnection):
        return OAuthAuth(
            connection_name=connection.name,
            token_url=connection.token_url,
            client_id=connection.client_id,
            client_secret=connection.client_secret.get_secret_value(),
            clock=clock,
            timeout=timeout,
            method="app",
        )
    if isinstance(connection, IdpConnection):
        legacy = None if connection.token_store else connection.legacy_token_store_path()
        return OAuthAuth(
            connection_name=connection.name,
            token_url=connection.token_url,
            client_id=connection.client_id,
            client_secret=connection.client_secret.get_secret_value(),
            refresh_token=connection.refresh_token.get_secret_value(),
            store=RefreshTokenStore(connection.token_store_path(), legacy),
            clock=clock,
            timeout=timeout,
            method="idp",
        )
    raise TypeError(f"unknown connection type {type(connection).__name__}")
