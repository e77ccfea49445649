"""git smart HTTP at /{workspace}/{repo}.git/… through `git http-backend`, with Bitbucket's auth.

Clone and fetch need read permission, push (receive-pack) needs write; after a push the
repository's REST view (branches, commits, updated_on) is refreshed and its open pull requests follow
their branches.
"""

from __future__ import annotations

import re
import subprocess
import threading

from werkzeug.wrappers import Request, Response

from .app import drop_connection
from .auth import AuthError
from .gitrepo import GIT_ENV

GIT_PATH = re.compile(r"^/(?P<ws>[^/]+)/(?P<repo>[^/]+?)\.git(?P<rest>/.*)$")
PUSH_SERVICE = "git-receive-pack"


def _unauthorized(message: str) -> Response:
    return Response(
        message + "\n",
        status=401,
        mimetype="text/plain",
        headers={"WWW-Authenticate": 'Basic realm="Bitbucket.org HTTP"'},
    )


def git_handler(app, request: Request, environ) -> Response:
    """Serve one git request; the sandbox's transport faults (`/_sandbox/faults` on a path such as
    `/*/*.git/info/refs` or `/*/*.git/git-upload-pack`) apply to the answer, as on REST routes."""
    match = GIT_PATH.match(request.path)
    outcome = {"status": 404, "credential": None}
    try:
        response = _serve(app, request, environ, match, outcome)
        faulted = app._inject_transport_fault(request, response, git=True)
        outcome["status"] = faulted.status_code if faulted is not None else 0
        if faulted is None:
            drop_connection(environ)
        return faulted
    finally:
        app.stats.record(
            channel="git",
            route="/{workspace}/{repo_slug}.git" + (match["rest"] if match else ""),
            credential=outcome["credential"],
            status=outcome["status"],
        )


def _serve(app, request: Request, environ, match, outcome: dict) -> Response:
    status = 404
    credential = None
    try:
        if match is None:
            return Response("Not found\n", status=404, mimetype="text/plain")
        push = request.args.get("service") == PUSH_SERVICE or match["rest"] == f"/{PUSH_SERVICE}"
        try:
            identity = app.auth.identify_git(request.headers.get("Authorization"))
        except AuthError as exc:
            # Public repositories clone anonymously; everything else asks for credentials.
            repo = app.world.repository(match["ws"], match["repo"])
            if repo is not None and not repo.is_private and not push and "Authorization" not in request.headers:
                identity = None
            else:
                status = 401
                return _unauthorized(exc.message)
        credential = identity.credential if identity else None
        if identity is not None and not app.limiter.allow("git:" + identity.rate_bucket):
            status = 429
            return Response("Rate limit for this resource has been exceeded", status=429, mimetype="text/plain")
        repo = app.world.repository(match["ws"], match["repo"])
        level = _permission(app, identity, repo) if repo is not None else "none"
        if repo is None or level == "none":
            status = 404
            return Response("Repository not found\n", status=404, mimetype="text/plain")
        if push and level not in ("write", "admin"):
            status = 403
            return Response("You do not have write access to this repository.\n", status=403, mimetype="text/plain")
        scope = "repository:write" if push else "repository"
        if identity is not None and identity.kind != "access_token" and not identity.has_scope(scope):
            # A user's credential acts within its scopes: a read-only API token or OAuth token can't push.
            status = 403
            return Response(
                f"Your credentials lack the {identity.scope_name(scope)} scope.\n", status=403, mimetype="text/plain"
            )
        received = push and match["rest"] == f"/{PUSH_SERVICE}"

        def pushed() -> None:  # the refs move when receive-pack ends, after the answer has streamed
            repo.git.refresh()
            with app.world.lock:
                repo.follow_branches(app.clock.now())  # open pull requests follow their pushed branches

        response = _run_backend(app, request, environ, repo, match["rest"], on_done=pushed if received else None)
        status = response.status_code
        if received and status == 200:
            repo.git.refresh()
            repo.updated_on = app.clock.now()
        return response
    finally:
        outcome.update(status=status, credential=credential)


def _permission(app, identity, repo) -> str:
    if identity is None:
        return "read" if not repo.is_private else "none"
    if identity.kind == "access_token":
        if identity.workspace != repo.workspace or (identity.repository and identity.repository != repo.slug):
            return "none"
        return identity.token_permission()
    return app.world.permission(identity.username, repo)


def _run_backend(app, request: Request, environ, repo, rest: str, on_done=None) -> Response:
    """`git http-backend` for one request, its answer streamed; `on_done()` runs once it exited cleanly."""
    git_root = repo.git.path.parent.parent
    env = {
        **GIT_ENV,
        "GIT_PROJECT_ROOT": str(git_root),
        "GIT_HTTP_EXPORT_ALL": "1",
        "GIT_HTTP_RECEIVE_PACK": "1",
        # Running as root: without this, http-backend answers an empty clone with exit code 0.
        "GIT_CONFIG_COUNT": "2",
        "GIT_CONFIG_KEY_0": "safe.directory",
        "GIT_CONFIG_VALUE_0": "*",
        "GIT_CONFIG_KEY_1": "http.receivepack",
        "GIT_CONFIG_VALUE_1": "true",
        "PATH_INFO": f"/{repo.workspace}/{repo.slug}.git{rest}",
        "REQUEST_METHOD": request.method,
        "QUERY_STRING": environ.get("QUERY_STRING", ""),
        "CONTENT_TYPE": request.headers.get("Content-Type", ""),
        "REMOTE_USER": "sandbox",
        "REMOTE_ADDR": request.remote_addr or "127.0.0.1",
    }
    if request.headers.get("Content-Encoding"):
        env["HTTP_CONTENT_ENCODING"] = request.headers["Content-Encoding"]
    if request.headers.get("Git-Protocol"):
        env["GIT_PROTOCOL"] = request.headers["Git-Protocol"]
    body = request.get_data() if request.method == "POST" else b""
    env["CONTENT_LENGTH"] = str(len(body))
    proc = subprocess.Popen(
        ["git", "http-backend"], env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    # Feed stdin from a thread so a large pack can't deadlock against a full stdout pipe.
    feeder = threading.Thread(target=_feed, args=(proc, body), daemon=True)
    feeder.start()
    headers, status, first_chunk = _read_cgi_headers(proc.stdout)

    def stream():
        try:
            if first_chunk:
                yield first_chunk
            while chunk := proc.stdout.read(65536):
                yield chunk
        finally:
            proc.stdout.close()
            proc.wait()
            feeder.join()
            if on_done is not None and proc.returncode == 0:
                on_done()

    return Response(stream(), status=status, headers=headers, direct_passthrough=True)


def _feed(proc, body: bytes) -> None:
    try:
        proc.stdin.write(body)
    except BrokenPipeError:
        pass
    finally:
        proc.stdin.close()


def _read_cgi_headers(stdout) -> tuple[list[tuple[str, str]], int, bytes]:
    buffer = b""
    while b"\r\n\r\n" not in buffer and b"\n\n" not in buffer:
        chunk = stdout.read1(65536) if hasattr(stdout, "read1") else stdout.read(65536)
        if not chunk:
            break
        buffer += chunk
    sep = b"\r\n\r\n" if b"\r\n\r\n" in buffer else b"\n\n"
    head, _, rest = buffer.partition(sep)
    headers, status = [], 200
    for line in head.decode("latin-1").splitlines():
        name, _, value = line.partition(":")
        if name.lower() == "status":
            status = int(value.strip().split()[0])
        elif name:
            headers.append((name.strip(), value.strip()))
    return headers, status, rest
