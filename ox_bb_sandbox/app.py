"""The sandbox's WSGI application: routing, auth, scopes, rate limit, paging, `fields`, faults.

Handlers (in `rest_*.py`) declare what they need with `@route(...)` and return an object, a
`Page` of items or a werkzeug Response; everything Bitbucket does around them happens here.
"""

from __future__ import annotations

import base64
import json
import re
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import quote, urlencode

from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from ox_bb_pipeline.clock import Clock, SystemClock

from . import bbql
from . import fields as fieldsmod
from .auth import Authenticator, AuthError, Identity, OAuthError
from .control import (
    SCALED_RESOURCE,
    TRANSPORT_FAULTS,
    Faults,
    RateLimiter,
    Stats,
    is_scaled_path,
    scaled_headers,
    scaled_limit,
)
from .mirror import EPSS_PATH, KEV_PATH, OSV_PREFIX, AdvisoryMirror, mirror_handler
from .serializers import Urls, error_body
from .world import PERMISSION_ORDER, Repository, Workspace, World

RATE_LIMIT_BODY = "Rate limit for this resource has been exceeded"
NO_REPO_MESSAGE = (
    "You may not have access to this repository or it no longer exists in this workspace. "
    "If you think this repository exists and you have access, make sure you are "
    "authenticated."
)


@dataclass
class Route:
    template: str
    handler: Callable
    methods: tuple[str, ...]
    scope: str | None
    access: str  # "read" | "write" | "admin" on the path's repository, or "ws_member" / "ws_admin"
    max_pagelen: int = 100
    filterable: tuple[str, ...] = ()
    sortable: tuple[str, ...] = ()
    hidden: tuple[str, ...] = ()
    cursor: bool = False  # opaque-cursor paging without size/page, like commits and activity
    token_allowed: bool = True  # access tokens may call it


ROUTES: list[Route] = []


def route(template: str, *, methods=("GET",), scope: str | None, access: str = "read", **options):
    """Register a REST handler. `template` uses Bitbucket's `{name}` placeholders."""

    def register(fn: Callable) -> Callable:
        ROUTES.append(
            Route(template=template, handler=fn, methods=tuple(methods), scope=scope, access=access, **options)
        )
        return fn

    return register


@dataclass
class Page:
    items: list[dict]
    presorted: bool = False  # the handler applied `sort` itself (endpoints with their own sort rules)


@dataclass
class ApiError(Exception):
    status: int
    message: str
    detail: object = None
    data: dict | None = None
    headers: dict = field(default_factory=dict)


def not_found(message: str) -> ApiError:
    return ApiError(404, message)


@dataclass
class RequestContext:
    request: Request
    world: World
    identity: Identity
    urls: Urls
    app: SandboxApp
    route: Route

    @property
    def clock(self) -> Clock:
        return self.app.clock

    def json_body(self) -> dict:
        try:
            body = json.loads(self.request.get_data() or b"{}")
        except ValueError as exc:
            raise ApiError(400, "Invalid JSON body", detail=str(exc)) from exc
        if not isinstance(body, dict):
            raise ApiError(400, "Invalid JSON body", detail="expected a JSON object")
        return body

    # -- resources with Bitbucket's visibility and permission rules ----------------------------
    def workspace(self, ref: str, access: str = "ws_member") -> Workspace:
        ws = self.world.workspace(ref)
        ident = self.identity
        visible = ws is not None and (
            (ident.workspace == ws.slug) if ident.kind == "access_token" else ident.username in ws.members
        )
        if not visible:
            raise not_found(f"No workspace with identifier '{ref}'.")
        if access == "ws_admin":
            admin = (
                (ident.token_permission() == "admin") if ident.kind == "access_token" else ws.is_admin(ident.username)
            )
            if not admin:
                raise ApiError(403, "Access denied. You must be an administrator of this workspace.")
        return ws

    def permission(self, repo: Repository) -> str:
        ident = self.identity
        if ident.kind == "access_token":
            if ident.workspace != repo.workspace or (ident.repository and ident.repository != repo.slug):
                return "none"
            return ident.token_permission()
        return self.world.permission(ident.username, repo)

    def repository(self, ws_ref: str, repo_ref: str, access: str | None = None) -> Repository:
        repo = self.world.repository(ws_ref, repo_ref)
        if repo is None or self.permission(repo) == "none":
            raise not_found(NO_REPO_MESSAGE)
        need = access or self.route.access
        if need in PERMISSION_ORDER and PERMISSION_ORDER[self.permission(repo)] < PERMISSION_ORDER[need]:
            # Bitbucket gives this one message for write and admin routes alike (hooks, branch-restrictions…).
            raise ApiError(403, "Access denied. You must have write or admin access.")
        return repo


def _bitbucket_template_to_werkzeug(template: str) -> str:
    """`/repositories/{workspace}/{repo_slug}/src/{commit}/{path:path}` -> werkzeug's `<…>` rules."""
    return re.sub(
        r"\{(\w+)(?::(\w+))?\}", lambda m: f"<{m.group(2)}:{m.group(1)}>" if m.group(2) else f"<{m.group(1)}>", template
    )


def _display_template(template: str) -> str:
    return re.sub(r"\{(\w+):\w+\}", r"{\1}", template)


class SandboxApp:
    """WSGI callable. `git_handler` serves /{ws}/{repo}.git/… (see githttp.py)."""

    def __init__(
        self, world: World, *, clock: Clock | None = None, rate_limit: int = 1000, git_handler=None, admin_handler=None
    ) -> None:
        from . import rest_identity, rest_pipelines, rest_pullrequests, rest_repositories, rest_settings  # noqa: F401

        self.world = world
        self.clock = clock or SystemClock()
        self.auth = Authenticator(world, self.clock)
        self.stats = Stats()
        self.limiter = RateLimiter(self.clock, rate_limit)
        self.faults = Faults()
        self.mirror = AdvisoryMirror()
        self.git_handler = git_handler
        self.admin_handler = admin_handler
        self.routes = {f"r{i}": r for i, r in enumerate(ROUTES)}
        self.url_map = Map(
            [
                Rule(_bitbucket_template_to_werkzeug("/2.0" + r.template), endpoint=key, methods=list(r.methods))
                for key, r in self.routes.items()
            ],
            strict_slashes=False,
            merge_slashes=False,
        )

    # -- WSGI entry ----------------------------------------------------------------------------
    def __call__(self, environ, start_response):
        request = Request(environ)
        path = request.path
        if path.startswith("/_sandbox/") and self.admin_handler:
            response = self.admin_handler(self, request)
        elif path.startswith("/site/oauth2/"):
            response = self._oauth(request)
        elif path.startswith("/2.0/") or path == "/2.0":
            response = self._rest(request, environ)
        elif self.git_handler and ".git/" in path:
            response = self.git_handler(self, request, environ)
        elif path.startswith(OSV_PREFIX) or path in (KEV_PATH, EPSS_PATH):
            response = self._inject_transport_fault(request, mirror_handler(self, request))
            template = "/osv/{ecosystem}/all.zip" if path.startswith(OSV_PREFIX) else path
            self.stats.record(
                channel="mirror",
                route=template,
                credential=None,
                status=response.status_code if response is not None else 0,
            )
            if response is None:
                raise ConnectionAbortedError("sandbox fault: connection dropped")
        else:
            response = json_response(404, error_body("Resource not found"))
        return response(environ, start_response)

    def urls_for(self, request: Request) -> Urls:
        return Urls(web=request.host_url.rstrip("/"))

    # -- OAuth 2.0 -----------------------------------------------------------------------------
    def _oauth(self, request: Request) -> Response:
        status = 200
        try:
            if request.path == "/site/oauth2/access_token" and request.method == "POST":
                consumer = self.auth.client(request.headers.get("Authorization"), request.form.to_dict())
                return json_response(200, self.auth.grant(consumer, request.form.to_dict()))
            if request.path == "/site/oauth2/authorize" and request.method == "GET":
                key = request.args.get("client_id")
                consumer = next((c for c in self.world.consumers if c.key == key), None)
                if consumer is None or request.args.get("response_type") != "code":
                    raise OAuthError(400, "invalid_request", "Unknown client_id or response_type is not 'code'")
                code = self.auth.authorize(consumer, request.args.get("state"))
                query = {"code": code, **({"state": request.args["state"]} if "state" in request.args else {})}
                status = 302
                return Response(status=302, headers={"Location": f"{consumer.callback_url}?{urlencode(query)}"})
            status = 404
            return json_response(404, error_body("Resource not found"))
        except OAuthError as exc:
            status = exc.status
            return json_response(exc.status, exc.body)
        finally:
            self.stats.record(channel="oauth", route=request.path, credential=None, status=status)

    # -- REST 2.0 ------------------------------------------------------------------------------
    def _rest(self, request: Request, environ) -> Response:
        adapter = self.url_map.bind_to_environ(environ)
        route: Route | None = None
        identity: Identity | None = None
        template = None
        response: Response
        try:
            try:
                key, args = adapter.match()
            except HTTPException as exc:
                raise ApiError(exc.code or 404, "Resource not found" if exc.code == 404 else exc.name) from exc
            route = self.routes[key]
            template = "/2.0" + _display_template(route.template)
            identity = self.auth.identify(request.headers.get("Authorization"), request.args.get("access_token"))
            bucket, limit, scaled = self._rate_bucket(identity, request.path)
            allowed, limit, remaining = self.limiter.admit(bucket, limit)
            if not allowed:
                response = Response(
                    RATE_LIMIT_BODY, status=429, mimetype="text/plain", headers={"x-envoy-ratelimited": "true"}
                )
            else:
                response = self._dispatch(request, route, identity, args)
            if scaled:
                response.headers.extend(scaled_headers(limit, remaining))
        except AuthError as exc:
            response = json_response(exc.status, error_body(exc.message, exc.detail), exc.headers)
        except ApiError as exc:
            response = json_response(exc.status, error_body(exc.message, exc.detail, exc.data), exc.headers)
        if route is not None and route.scope:
            response.headers["x-accepted-oauth-scopes"] = _legacy(route.scope)
        if identity is not None:
            response.headers["x-oauth-scopes"] = ", ".join(sorted(identity.scopes))
            response.headers["x-credential-type"] = identity.credential_type
        response = self._inject_transport_fault(request, response)
        self.stats.record(
            channel="rest",
            route=template,
            credential=identity.credential if identity else None,
            status=response.status_code if response is not None else 0,
        )
        if response is None:  # a "drop" fault: close the connection without an answer
            drop_connection(environ)
        return response

    def _rate_bucket(self, identity: Identity, path: str) -> tuple[str, int | None, bool]:
        """(bucket, limit, scaled): access tokens on /2.0/repositories* count in their own `api` bucket at
        the workspace's scaled limit; everything else in the credential's bucket at the base limit."""
        if identity.kind != "access_token" or not is_scaled_path(path):
            return identity.rate_bucket, None, False
        ws = self.world.workspaces.get(identity.workspace or "")
        limit = scaled_limit(ws.plan, ws.paid_seats, self.limiter.limit) if ws else self.limiter.limit
        return f"{identity.rate_bucket}:{SCALED_RESOURCE}", limit, True

    def _dispatch(self, request: Request, route: Route, identity: Identity, args: dict) -> Response:
        if identity.kind == "access_token" and not route.token_allowed:
            raise ApiError(403, "This API is not accessible by this authentication mechanism")
        if route.scope and not identity.has_scope(route.scope):
            required = identity.scope_name(route.scope)
            raise ApiError(
                403,
                "Your credentials lack one or more required privilege scopes.",
                detail={"granted": sorted(identity.scopes), "required": [required]},
            )
        ctx = RequestContext(request, self.world, identity, self.urls_for(request), self, route)
        if route.access == "ws_admin" or route.access == "ws_member":
            ctx.workspace(args["workspace"], route.access)
        elif "repo_slug" in args:
            ctx.repository(args["workspace"], args["repo_slug"])
        result = route.handler(ctx, **args)
        if isinstance(result, Response):
            return result
        if isinstance(result, Page):
            body = self._paginate(request, route, result)
        else:
            body = result
        if isinstance(body, dict):
            try:
                body = fieldsmod.apply_fields(body, request.args.get("fields"), route.hidden)
            except ValueError as exc:
                raise ApiError(400, str(exc)) from exc
        status = 201 if request.method == "POST" else 200
        return json_response(status, body)

    def _paginate(self, request: Request, route: Route, page_of: Page) -> dict:
        try:
            items = bbql.filter_items(page_of.items, request.args.get("q"), route.filterable)
            if not page_of.presorted:
                items = bbql.sort_items(items, request.args.get("sort"), route.sortable)
        except bbql.BBQLError as exc:
            raise ApiError(400, str(exc)) from exc
        pagelen = _int_arg(request, "pagelen", 10)
        if pagelen < 1 or pagelen > route.max_pagelen:
            raise ApiError(400, "Invalid pagelen", detail=f"pagelen must be between 1 and {route.max_pagelen}")
        page = _page_arg(request, route.cursor)
        # `_start` exists only in links the sandbox made after a "repeat" fault shifted the window.
        shifted = request.args.get("_start")
        start = _int_arg(request, "_start", 0) if shifted is not None else (page - 1) * pagelen
        values = items[start : start + pagelen]
        next_start = start + pagelen
        next_link = None
        if next_start < len(items):
            if self.faults.take(request.path, ("repeat",)):
                self.stats.fault("repeat")
                shifted, next_start = "yes", next_start - 1  # the next page repeats this page's last item
            next_link = self._page_link(request, route, page + 1, next_start if shifted is not None else None)
        elif self.faults.take(request.path, ("next_on_last",)):
            self.stats.fault("next_on_last")
            next_link = request.url  # BCLOUD-22441: a `next` link on the last page
        body: dict = {"pagelen": pagelen, "values": values}
        if not route.cursor:
            body["size"] = len(items)
            body["page"] = page
            if page > 1 and shifted is None:
                body["previous"] = self._page_link(request, route, page - 1)
        if next_link:
            body["next"] = next_link
        return body

    def _page_link(self, request: Request, route: Route, page: int, start: int | None = None) -> str:
        args = [(k, v) for k, v in request.args.items(multi=True) if k not in ("page", "_start")]
        args.append(("page", _encode_cursor(page) if route.cursor else str(page)))
        if start is not None:
            args.append(("_start", str(start)))
        # request.path is decoded: re-encode it, or `{uuid}` paths would hand out links with raw braces.
        return f"{request.host_url.rstrip('/')}{quote(request.path)}?{urlencode(args)}"

    def _inject_transport_fault(self, request: Request, response: Response, *, git: bool = False) -> Response | None:
        """The response with the first matching transport fault applied, or None for `drop`. `git`: the answer is
        git smart HTTP (a stream from `git http-backend`), so errors are plain text as Bitbucket's git front sends."""
        rule = self.faults.take(request.path, TRANSPORT_FAULTS)
        if rule is None:
            return response
        self.stats.fault(rule.kind)
        if rule.kind == "slow":
            time.sleep(rule.delay)  # real time on purpose: the client's read timeout must fire
            return response
        if rule.kind == "truncate":
            data = b"".join(response.response) if git else response.get_data()
            response.close()
            return Response(
                data[: max(1, len(data) // 2)],
                status=response.status_code,
                content_type=response.headers.get("Content-Type") if git else "application/json",
            )
        response.close()  # replaced: a git answer's backend process is stopped here
        if rule.kind == "401":
            if git:
                return Response(
                    "Invalid credentials\n",
                    status=401,
                    mimetype="text/plain",
                    headers={"WWW-Authenticate": 'Basic realm="Bitbucket.org HTTP"'},
                )
            return json_response(
                401, error_body("Token is invalid or expired"), {"WWW-Authenticate": 'Bearer realm="Bitbucket.org API"'}
            )
        if rule.kind in ("500", "502", "503"):
            body = error_body("Something went wrong") if rule.kind == "500" and not git else None
            if body:
                body["error"]["id"] = "5a1dbb0c0ffee0000000000000000000"
                return json_response(500, body)
            text = {
                "500": "Internal Server Error",
                "502": "<html><body>Bad gateway</body></html>",
                "503": "upstream connect error or disconnect/reset before headers",
            }[rule.kind]
            return Response(text, status=int(rule.kind), mimetype="text/html" if rule.kind == "502" else "text/plain")
        return None  # drop: the caller closes the connection without an answer


def drop_connection(environ) -> None:
    """Close the client's socket without an answer (a `drop` fault)."""
    sock = environ.get("werkzeug.socket")
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
    raise ConnectionAbortedError("sandbox fault: connection dropped")


def json_response(status: int, body, headers: dict | None = None) -> Response:
    return Response(json.dumps(body), status=status, mimetype="application/json", headers=headers or {})


def _legacy(scope_key: str) -> str:
    from .auth import SCOPES

    return SCOPES[scope_key][1]


def _int_arg(request: Request, name: str, default: int) -> int:
    raw = request.args.get(name)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ApiError(400, f"Invalid {name}") from exc


def _encode_cursor(page: int) -> str:
    return base64.urlsafe_b64encode(f"p{page}".encode()).decode().rstrip("=")


def _page_arg(request: Request, cursor: bool) -> int:
    raw = request.args.get("page")
    if raw is None:
        return 1
    if cursor and not raw.isdigit():
        try:
            decoded = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode()
            return int(decoded.removeprefix("p"))
        except ValueError as exc:
            raise ApiError(400, "Invalid page") from exc
    try:
        page = int(raw)
    except ValueError as exc:
        raise ApiError(400, "Invalid page") from exc
    if page < 1:
        raise ApiError(400, "Invalid page")
    return page
