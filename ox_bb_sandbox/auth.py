"""Who is calling: Bitbucket's credential kinds, their scopes, and the OAuth 2.0 token service."""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass
from datetime import timedelta

from ox_bb_pipeline.clock import Clock

from .world import IssuedToken, World

ACCESS_TOKEN_LIFETIME = timedelta(hours=2)
WWW_AUTHENTICATE = 'Basic realm="Bitbucket.org HTTP"'

# scope key -> (API-token scope name, legacy OAuth / access-token scope name)
SCOPES: dict[str, tuple[str, str]] = {
    "account": ("read:user:bitbucket", "account"),
    "workspace": ("read:workspace:bitbucket", "account"),
    "project": ("read:project:bitbucket", "project"),
    "repository": ("read:repository:bitbucket", "repository"),
    "repository:write": ("write:repository:bitbucket", "repository:write"),
    "repository:admin": ("admin:repository:bitbucket", "repository:admin"),
    "pullrequest": ("read:pullrequest:bitbucket", "pullrequest"),
    "pullrequest:write": ("write:pullrequest:bitbucket", "pullrequest:write"),
    "pipeline": ("read:pipeline:bitbucket", "pipeline"),
    "webhook": ("read:webhook:bitbucket", "webhook"),
}

# Legacy scopes imply weaker ones (Bitbucket's OAuth docs); API-token scopes imply nothing.
LEGACY_IMPLIES: dict[str, tuple[str, ...]] = {
    "repository:admin": ("repository:write", "repository"),
    "repository:write": ("repository",),
    "pullrequest:write": ("pullrequest", "repository:write", "repository"),
    "pullrequest": ("repository",),
    "project:admin": ("project",),
    "pipeline:write": ("pipeline",),
    "pipeline:variable": ("pipeline",),
    "webhook": (),
    "account:write": ("account",),
}

ALL_API_TOKEN_SCOPES = frozenset(new for new, _ in SCOPES.values()) | {"read:account", "admin:project:bitbucket"}
ALL_LEGACY_SCOPES = frozenset(legacy for _, legacy in SCOPES.values()) | {"project:admin", "email"}


class AuthError(Exception):
    """An HTTP error decided during authentication or authorisation."""

    def __init__(self, status: int, message: str, *, detail=None, headers: dict | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.detail = detail
        self.headers = headers or {}


@dataclass(frozen=True)
class Identity:
    credential: str  # a name for stats, never the secret
    rate_bucket: str
    kind: str  # api_token | oauth | access_token
    username: str | None
    scopes: frozenset[str]
    credential_type: str  # value of the x-credential-type header
    workspace: str | None = None  # access tokens are bound to one workspace
    repository: str | None = None  # repository access tokens to one repository

    @property
    def legacy(self) -> bool:
        return self.kind != "api_token"

    def effective_scopes(self) -> frozenset[str]:
        if not self.legacy:
            return self.scopes
        expanded = set(self.scopes)
        for scope in self.scopes:
            expanded.update(LEGACY_IMPLIES.get(scope, ()))
        return frozenset(expanded)

    def has_scope(self, key: str) -> bool:
        new, legacy = SCOPES[key]
        return (legacy if self.legacy else new) in self.effective_scopes()

    def scope_name(self, key: str) -> str:
        new, legacy = SCOPES[key]
        return legacy if self.legacy else new

    def token_permission(self) -> str:
        """An access token's repository permission, from its scopes."""
        scopes = self.effective_scopes()
        if "repository:admin" in scopes:
            return "admin"
        if "repository:write" in scopes:
            return "write"
        return "read" if "repository" in scopes else "none"


def unauthorized(message: str = "Invalid credentials") -> AuthError:
    return AuthError(401, message, headers={"WWW-Authenticate": WWW_AUTHENTICATE})


class Authenticator:
    """Turns an Authorization header (or git's Basic credentials) into an Identity."""

    def __init__(self, world: World, clock: Clock) -> None:
        self.world = world
        self.clock = clock

    # -- REST ----------------------------------------------------------------------------------
    def identify(self, authorization: str | None, query_token: str | None = None) -> Identity:
        if not authorization and query_token:
            authorization = f"Bearer {query_token}"
        if not authorization:
            raise unauthorized("Authentication required")
        scheme, _, value = authorization.partition(" ")
        scheme = scheme.lower()
        if scheme == "basic":
            user, password = _decode_basic(value)
            return self._basic_rest(user, password)
        if scheme == "bearer":
            return self._bearer(value.strip())
        raise unauthorized("Unsupported authentication scheme")

    def _basic_rest(self, user: str, password: str) -> Identity:
        for token in self.world.api_tokens:
            owner = self.world.users[token.username]
            if _same(token.secret, password) and user.lower() == owner.email.lower():
                return self._api_token_identity(token)
        raise unauthorized()

    def _api_token_identity(self, token) -> Identity:
        if not token.scopes:
            raise unauthorized("Token is invalid, expired, or not supported for this endpoint.")
        return Identity(
            credential=f"api_token:{token.name}",
            rate_bucket=f"user:{token.username}",
            kind="api_token",
            username=token.username,
            scopes=token.scopes,
            credential_type="apikey",
        )

    def _bearer(self, value: str) -> Identity:
        with self.world.lock:
            issued = self.world.issued_tokens.get(value)
        if issued is not None:
            if issued.expires_at is not None and self.clock.now() >= issued.expires_at:
                raise unauthorized("Access token expired. Use your refresh token to obtain a new access token.")
            consumer = next(c for c in self.world.consumers if c.key == issued.consumer_key)
            return Identity(
                credential=f"oauth:{consumer.name}",
                rate_bucket=f"consumer:{consumer.key}",
                kind="oauth",
                username=issued.username,
                scopes=issued.scopes,
                credential_type="oauth2",
            )
        for token in self.world.access_tokens:
            if _same(token.secret, value):
                return Identity(
                    credential=f"access_token:{token.name}",
                    rate_bucket=f"access_token:{token.name}",
                    kind="access_token",
                    username=None,
                    scopes=token.scopes,
                    credential_type=token.kind,
                    workspace=token.workspace,
                    repository=token.repository,
                )
        # An API token sent as Bearer is refused the way Bitbucket refuses it.
        raise unauthorized("Token is invalid, expired, or not supported for this endpoint.")

    # -- git -----------------------------------------------------------------------------------
    def identify_git(self, authorization: str | None) -> Identity:
        """git over HTTPS: x-token-auth + OAuth/access token, x-bitbucket-api-token-auth or the
        Bitbucket username + API token. The email is not accepted for git, as on bitbucket.org."""
        if not authorization or not authorization.lower().startswith("basic "):
            raise unauthorized("Authentication required")
        user, password = _decode_basic(authorization.split(" ", 1)[1])
        if user == "x-token-auth":
            return self._bearer(password)
        for token in self.world.api_tokens:
            if _same(token.secret, password) and user in ("x-bitbucket-api-token-auth", token.username):
                return self._api_token_identity(token)
        raise unauthorized()

    # -- OAuth 2.0 token endpoint --------------------------------------------------------------
    def client(self, authorization: str | None, form: dict) -> object:
        key, secret = form.get("client_id"), form.get("client_secret")
        if authorization and authorization.lower().startswith("basic "):
            key, secret = _decode_basic(authorization.split(" ", 1)[1])
        for consumer in self.world.consumers:
            if consumer.key == key and secret is not None and _same(consumer.secret, secret):
                return consumer
        raise OAuthError(401, "invalid_client", "Invalid OAuth client credentials")

    def grant(self, consumer, form: dict) -> dict:
        grant_type = form.get("grant_type")
        with self.world.lock:
            if grant_type == "client_credentials":
                if not consumer.private:
                    raise OAuthError(400, "unauthorized_client", "Client credentials are only for private consumers")
                return self._issue(consumer, consumer.owner, consumer.scopes, grant_type)
            if grant_type == "authorization_code":
                code = self.world.authorization_codes.pop(form.get("code", ""), None)
                if code is None or code.consumer_key != consumer.key:
                    raise OAuthError(400, "invalid_grant", "The authorization code is invalid or has been used")
                return self._issue(consumer, code.username, code.scopes, grant_type)
            if grant_type == "refresh_token":
                old = self.world.refresh_tokens.pop(form.get("refresh_token", ""), None)
                if old is None or old.consumer_key != consumer.key:
                    raise OAuthError(400, "invalid_grant", "Invalid refresh_token")
                return self._issue(consumer, old.username, old.scopes, grant_type)
        raise OAuthError(400, "unsupported_grant_type", f"Unsupported grant type: {grant_type}")

    def authorize(self, consumer, state: str | None) -> str:
        """The authorization-code step: the consumer's authorizing user grants access at once."""
        username = consumer.authorizing_user or consumer.owner
        code = secrets.token_urlsafe(18)
        with self.world.lock:
            self.world.authorization_codes[code] = IssuedToken(consumer.key, username, consumer.scopes, None)
        return code

    def _issue(self, consumer, username: str, scopes: frozenset[str], grant_type: str) -> dict:
        access = secrets.token_urlsafe(48)
        refresh = secrets.token_urlsafe(24)
        expires = self.clock.now() + ACCESS_TOKEN_LIFETIME
        self.world.issued_tokens[access] = IssuedToken(consumer.key, username, scopes, expires)
        self.world.refresh_tokens[refresh] = IssuedToken(consumer.key, username, scopes, None)
        return {
            "access_token": access,
            "scopes": " ".join(sorted(scopes)),
            "expires_in": int(ACCESS_TOKEN_LIFETIME.total_seconds()),
            "refresh_token": refresh,
            "token_type": "bearer",
            "state": grant_type,
        }


class OAuthError(Exception):
    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.body = {"error": error, "error_description": description}


def _same(secret: str, offered: str) -> bool:
    """Constant-time comparison; bytes, because `compare_digest` refuses non-ASCII str (a 500)."""
    return secrets.compare_digest(secret.encode(), offered.encode())


def _decode_basic(value: str) -> tuple[str, str]:
    try:
        user, _, password = base64.b64decode(value.strip()).decode().partition(":")
    except (ValueError, UnicodeDecodeError) as exc:
        raise unauthorized("Malformed Basic credentials") from exc
    return user, password
