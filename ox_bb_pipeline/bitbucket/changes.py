"""Which repositories of a connection changed since the last poll, found cheaply enough to ask
every few minutes.

Per workspace, one listing of repositories sorted by `updated_on` and filtered to those at or
after the last one seen (pushes, merges, new branches and pull-request activity all move it): a
quiet workspace costs one REST request and no per-repository call. Each repository the listing
returns gets one `git ls-remote` (git, not REST: ~60,000 an hour against ~1,000) to see whether
its main head moved; only those are changes worth a scan — a new branch or a comment is not.

The cursor is plain JSON, per workspace: the newest `updated_on` handled, the repositories handled
at exactly that instant (timestamps tie), and the main heads seen since (older heads come from the
lake's last extract, so the cursor grows with active repositories only). At most `max_repositories`
listed repositories are handled per poll, oldest first; the rest wait for the next poll (`more`).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

from ..clock import isoformat, parse_when
from .errors import BitbucketError, NotFoundError

LISTING_FIELDS = "next,values.uuid,values.slug,values.project.key,values.mainbranch.name,values.updated_on"


@dataclass(frozen=True)
class RepositoryChange:
    workspace: str
    repository: str
    main_head: str | None
    previous_head: str | None

    @property
    def full_name(self) -> str:
        return f"{self.workspace}/{self.repository}"


@dataclass
class Poll:
    changes: list[RepositoryChange] = field(default_factory=list)
    cursor: dict = field(default_factory=dict)
    more: bool = False  # listed repositories were left for the next poll
    problems: list[str] = field(default_factory=list)


class ChangeDetector:
    """Polls one connection. `baseline` holds the rows of its last extracted `repositories`
    partition: a workspace seen for the first time starts from what the lake already has, so
    changes since the last extract are found; with no baseline the first poll only looks."""

    def __init__(self, client, git, *, max_repositories: int = 25, baseline: list[dict] = ()) -> None:
        self.client = client
        self.git = git
        self.connection = client.connection
        self.max_repositories = max_repositories
        self.baseline = list(baseline)
        self.baseline_heads = {(r["workspace"], r["repository"]): r.get("main_head") for r in self.baseline}

    def poll(self, cursor: dict | None = None) -> Poll:
        poll = Poll(cursor=copy.deepcopy(cursor or {}))
        known = poll.cursor.setdefault("workspaces", {})
        budget = self.max_repositories
        try:
            workspaces = self._workspaces()
        except BitbucketError as exc:
            poll.problems.append(str(exc))
            return poll
        for gone in set(known) - set(workspaces):
            del known[gone]
        for ws in workspaces:
            # A workspace that fails keeps its cursor and is asked again next time.
            try:
                budget -= self._poll_workspace(ws, known, budget, poll)
            except BitbucketError as exc:
                poll.problems.append(str(exc))
        return poll

    # -- per workspace --------------------------------------------------------------------------
    def _workspaces(self) -> list[str]:
        if self.connection.workspaces:
            return list(self.connection.workspaces)
        return [w["workspace"]["slug"] for w in self.client.paginate("/user/workspaces", pagelen=100)]

    def _poll_workspace(self, ws: str, known: dict, budget: int, poll: Poll) -> int:
        """Handle up to `budget` listed repositories of `ws`; returns how many were handled."""
        state = known.get(ws)
        if state is None:
            state = known[ws] = self._start(ws)
            if state.pop("from_listing"):
                return 0
        listed = self._listed_since(ws, state, budget + 1)
        if len(listed) > budget:
            listed, poll.more = listed[:budget], True
        for repo in listed:
            change = self._main_head_change(ws, repo, state, poll)
            stamp = repo["updated_on"]
            if stamp != state["updated_on"]:
                state["updated_on"], state["seen"] = stamp, []
            state["seen"].append(repo["uuid"])
            if change:
                poll.changes.append(change)
        return len(listed)

    def _start(self, ws: str) -> dict:
        """A workspace's first state: the lake's newest `updated_on` (changes since the last extract
        count), else the newest listed now (nothing before this poll counts)."""
        rows = [r for r in self.baseline if r.get("workspace") == ws and r.get("updated_on")]
        if rows:
            newest = max(_stamp(r["updated_on"]) for r in rows)
            return {
                "updated_on": newest,
                "from_listing": False,
                "heads": {},
                "seen": [r["repository_uuid"] for r in rows if _stamp(r["updated_on"]) == newest],
            }
        first = next(
            iter(
                self.client.paginate(
                    f"/repositories/{ws}",
                    {"sort": "-updated_on", "fields": LISTING_FIELDS},
                    pagelen=1,
                )
            ),
            None,
        )
        if first is None:
            return {"updated_on": None, "seen": [], "heads": {}, "from_listing": True}
        return {
            "updated_on": _stamp(first["updated_on"]),
            "seen": [first["uuid"]],
            "heads": {},
            "from_listing": True,
        }

    def _listed_since(self, ws: str, state: dict, limit: int) -> list[dict]:
        """Repositories updated at or after the watermark, oldest first, minus those handled at
        exactly the watermark; stops paging once `limit` are found."""
        params = {"sort": "updated_on", "fields": LISTING_FIELDS}
        if state["updated_on"]:
            params["q"] = f"updated_on>={state['updated_on']}"
        found = []
        pagelen = min(100, limit + len(state["seen"]))
        for repo in self.client.paginate(f"/repositories/{ws}", params, pagelen=pagelen):
            repo = {**repo, "updated_on": _stamp(repo["updated_on"])}
            if repo["updated_on"] == state["updated_on"] and repo["uuid"] in state["seen"]:
                continue
            found.append(repo)
            if len(found) >= limit:
                break
        return found

    def _main_head_change(self, ws: str, repo: dict, state: dict, poll: Poll) -> RepositoryChange | None:
        """A change when the main head moved (or the repository is new to us); None for activity
        elsewhere, for repositories the connection does not select, and for deleted ones."""
        slug = repo["slug"]
        if not self.connection.selects(ws, (repo.get("project") or {}).get("key") or "", slug):
            return None
        try:
            heads = self.git.ls_remote(ws, slug)
        except NotFoundError as exc:  # deleted since the listing: nothing left to scan
            poll.problems.append(str(exc))
            state["heads"].pop(slug, None)
            return None
        main = (repo.get("mainbranch") or {}).get("name") or heads.head_branch
        head = heads.branches.get(main)
        before = state["heads"].get(slug, self.baseline_heads.get((ws, slug)))
        state["heads"][slug] = head
        if head == before:
            return None
        return RepositoryChange(ws, slug, head, before)


def _stamp(value) -> str:
    """One spelling for every `updated_on` (Bitbucket's strings, the lake's datetimes), so the
    cursor compares equal instants as equal strings."""
    moment = parse_when(value) if isinstance(value, str) else value
    return isoformat(moment)
