"""Sandbox-only admin routes under /_sandbox (no auth): stats, planted manifest, faults, clock, limits, and
opening a pull request from a pushed branch."""

from __future__ import annotations

import json

from werkzeug.wrappers import Request, Response

from ox_bb_pipeline.clock import ManualClock, isoformat

from .control import FaultRule, scaled_limit


def _json(body, status: int = 200) -> Response:
    return Response(json.dumps(body, default=str), status=status, mimetype="application/json")


def _error(message: str, status: int = 400) -> Response:
    return _json({"type": "error", "error": {"message": message}}, status)


def admin_handler(app, request: Request) -> Response:
    path, method = request.path.rstrip("/"), request.method
    try:
        body = json.loads(request.get_data() or b"null") if method in ("POST", "PUT") else None
    except ValueError:
        return _error("request body is not JSON")
    if path == "/_sandbox/stats" and method == "GET":
        return _json(app.stats.snapshot())
    if path == "/_sandbox/stats/reset" and method == "POST":
        app.stats.reset()
        return _json({"reset": True})
    if path == "/_sandbox/advisories" and method == "POST":  # add or replace OSV records of the mirror
        try:
            for record in body if isinstance(body, list) else [body]:
                app.mirror.put(record)
        except ValueError as exc:
            return _error(str(exc))
        return _json({"advisories": len(app.mirror.records)})
    if path == "/_sandbox/planted" and method == "GET":
        return _json({"planted": app.world.planted})
    if path == "/_sandbox/faults":
        if method == "GET":
            return _json({"faults": app.faults.describe()})
        if method == "DELETE":
            app.faults.clear()
            return _json({"faults": []})
        if method == "POST":
            specs = body if isinstance(body, list) else [body]
            try:
                rules = [
                    FaultRule(**{k: v for k, v in spec.items() if k in ("route", "kind", "times", "after", "delay")})
                    for spec in specs
                ]
            except (TypeError, ValueError, AttributeError) as exc:
                return _error(f"invalid fault rule: {exc}")
            for rule in rules:
                app.faults.add(rule)
            return _json({"faults": app.faults.describe()})
    if path == "/_sandbox/clock":
        if method == "GET":
            return _json({"now": isoformat(app.clock.now()), "manual": isinstance(app.clock, ManualClock)})
        if method == "POST":
            if not isinstance(app.clock, ManualClock):
                return _error(
                    "the sandbox was started with the system clock; start it with a manual clock "
                    "(`--manual-clock`) to move time",
                    409,
                )
            body = {} if body is None else body
            seconds = body.get("advance_seconds", 0) if isinstance(body, dict) else None
            if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
                return _error('expected {"advance_seconds": <number>}')
            app.clock.advance(float(seconds))
            return _json({"now": isoformat(app.clock.now())})
    if path == "/_sandbox/rate-limit":
        if method == "GET":
            return _json(app.limiter.describe())
        if method == "POST":
            body = body or {}
            problem = _rate_limit_problem(body)
            if problem:
                return _error(problem)
            app.limiter.configure(body.get("limit"), body.get("overrides"))
            if body.get("reset"):
                app.limiter.reset()
            return _json(app.limiter.describe())
    if path == "/_sandbox/pullrequests" and method == "POST":  # open a pull request from a pushed branch
        body = body if isinstance(body, dict) else {}
        ws = app.world.workspaces.get(body.get("workspace", ""))
        repo = ws.repositories.get(body.get("repository", "")) if ws else None
        if repo is None:
            return _error(
                'expected {"workspace": <slug>, "repository": <slug>, "source": <branch>, '
                '"destination": <branch, default the main branch>, "title": <text>}'
            )
        owner = next(u for u, role in ws.members.items() if role == "owner")
        try:
            with app.world.lock:
                pr = repo.open_pull_request(
                    str(body.get("source", "")),
                    str(body.get("destination") or repo.mainbranch),
                    str(body.get("title") or "A change"),
                    str(body.get("author") or owner),
                    app.clock.now(),
                )
        except ValueError as exc:
            return _error(str(exc))
        return _json({"id": pr.id, "source_commit": pr.source_commit, "destination_commit": pr.destination_commit})
    if path == "/_sandbox/plan" and method == "POST":  # a workspace's plan and paid seats (scaled limits)
        ws = app.world.workspaces.get(body.get("workspace", "")) if isinstance(body, dict) else None
        if ws is None:
            return _error('expected {"workspace": <slug of a sandbox workspace>, "plan": "premium", "seats": N}')
        plan, seats = body.get("plan", ws.plan), body.get("seats", ws.paid_seats)
        if (
            plan not in ("free", "standard", "premium")
            or isinstance(seats, bool)
            or not isinstance(seats, int)
            or seats < 0
        ):
            return _error("plan must be free, standard or premium and seats a non-negative integer")
        ws.plan, ws.paid_seats = plan, seats
        return _json(
            {
                "workspace": ws.slug,
                "plan": ws.plan,
                "seats": ws.paid_seats,
                "access_token_limit": scaled_limit(ws.plan, ws.paid_seats, app.limiter.limit),
            }
        )
    return _error(f"no sandbox admin route {method} {path}", 404)


def _rate_limit_problem(body) -> str | None:
    """Why a /_sandbox/rate-limit body is unusable (checked here: a bad limit would fail every request)."""
    if not isinstance(body, dict):
        return 'expected {"limit": N, "overrides": {"bucket": N}, "reset": true}'
    overrides = body.get("overrides") or {}
    if not isinstance(overrides, dict):
        return "overrides must be an object of bucket -> limit"
    counts = list(overrides.values()) + ([body["limit"]] if body.get("limit") is not None else [])
    if any(isinstance(n, bool) or not isinstance(n, int) or n < 0 for n in counts):
        return "limit and overrides must be non-negative integers"
    return None
