"""Pull requests over real HTTP (list, detail, activity, the pull requests of a commit) and the
write routes: Code Insights reports and annotations, pull-request comments.

Expected answers come from `sandbox.world`. Writes on the shared session sandbox use report ids
no other test uses; writes that change what other tests read (comments) use `fresh_sandbox`.
"""

from __future__ import annotations

import uuid
from datetime import datetime

import pytest

from . import openapi
from .rest_helpers import Api, find_repo, first_workspace, query_of, repo_path

STATES = ("OPEN", "MERGED", "DECLINED", "SUPERSEDED")
ACTIVITY_KINDS = {"update", "approval", "comment", "changes_requested"}


@pytest.fixture(scope="module")
def repo(world):
    """A repository of the first workspace with open, merged and declined pull requests."""
    return find_repo(
        world, lambda r: {"OPEN", "MERGED", "DECLINED"} <= {p.state for p in r.pull_requests}, first_workspace(world)
    )


def pr_of(repo, state: str, approved: bool | None = None):
    return next(
        p
        for p in repo.pull_requests
        if p.state == state and (approved is None or any(x.approved for x in p.participants) == approved)
    )


def ids(repo, states) -> list[int]:
    return [p.id for p in sorted(repo.pull_requests, key=lambda p: p.id, reverse=True) if p.state in states]


# -- the list -----------------------------------------------------------------------------------
def test_pull_request_list_defaults_to_open_only(alice, repo):
    page = alice.json(f"{repo_path(repo)}/pullrequests")
    openapi.validate(page, "paginated_pullrequests")
    assert [p["id"] for p in page["values"]] == ids(repo, ["OPEN"])
    assert page["size"] == len(ids(repo, ["OPEN"]))


@pytest.mark.parametrize("states", [["MERGED"], ["MERGED", "DECLINED"], list(STATES)])
def test_pull_request_state_filter_is_repeatable(alice, repo, states):
    values = alice.values(f"{repo_path(repo)}/pullrequests", {"state": states})
    assert [p["id"] for p in values] == ids(repo, states)
    assert {p["state"] for p in values} <= set(states)


def test_pull_request_list_rejects_an_unknown_state(alice, repo):
    assert "state" in alice.error(f"{repo_path(repo)}/pullrequests", {"state": "CLOSED"}, status=400).lower()


def test_pull_request_list_hides_participants_unless_added_with_plus(alice, repo):
    path, everything = f"{repo_path(repo)}/pullrequests", {"state": list(STATES)}
    for item in alice.values(path, everything):
        assert "participants" not in item and "reviewers" not in item
    added = alice.values(path, {**everything, "fields": "+values.participants"})  # requests sends %2B
    by_id = {p.id: p for p in repo.pull_requests}
    for item in added:
        assert "reviewers" not in item
        assert [(x["user"]["nickname"], x["approved"]) for x in item["participants"]] == [
            (x.username, x.approved) for x in by_id[item["id"]].participants
        ]
    both = alice.values(path, {**everything, "fields": "+values.participants,+values.reviewers"})
    assert all("participants" in p and "reviewers" in p for p in both)


def test_a_lone_star_in_fields_surfaces_hidden_pull_request_fields(alice, repo):
    page = alice.json(f"{repo_path(repo)}/pullrequests", {"fields": "*"})
    assert page["values"] and all("participants" in p and "reviewers" in p for p in page["values"])


def test_pull_request_pagelen_is_capped_at_50(alice, repo):
    alice.json(f"{repo_path(repo)}/pullrequests", {"pagelen": 50})
    assert alice.error(f"{repo_path(repo)}/pullrequests", {"pagelen": 51}, status=400) == "Invalid pagelen"


# -- the detail ------------------------------------------------------------------------------------
@pytest.mark.parametrize("state", ["OPEN", "MERGED", "DECLINED"])
def test_pull_request_detail(alice, world, repo, state):
    pr = pr_of(repo, state)
    body = alice.json(f"{repo_path(repo)}/pullrequests/{pr.id}")
    openapi.validate(body, "pullrequest")
    assert (body["id"], body["title"], body["state"], body["author"]["nickname"]) == (
        pr.id,
        pr.title,
        pr.state,
        pr.author,
    )
    assert body["source"]["branch"]["name"] == pr.source_branch
    assert pr.source_commit.startswith(body["source"]["commit"]["hash"])
    assert body["destination"]["branch"]["name"] == pr.destination_branch
    assert pr.destination_commit.startswith(body["destination"]["commit"]["hash"])
    assert body["comment_count"] == len(pr.comments) and body["task_count"] == pr.task_count
    assert datetime.fromisoformat(body["updated_on"]) == pr.updated_on
    if state == "MERGED":
        assert pr.merge_commit.startswith(body["merge_commit"]["hash"])
    else:
        assert body["merge_commit"] is None
    assert (body["closed_by"] or {}).get("nickname") == pr.closed_by
    assert body["reason"] == pr.reason


def test_pull_request_detail_carries_participants_and_reviewers(alice, repo):
    pr = pr_of(repo, "MERGED", approved=True)
    body = alice.json(f"{repo_path(repo)}/pullrequests/{pr.id}")
    assert [u["nickname"] for u in body["reviewers"]] == pr.reviewers
    for item, participant in zip(body["participants"], pr.participants, strict=True):
        openapi.validate(item, "participant")
        assert (item["user"]["nickname"], item["role"], item["approved"], item["state"]) == (
            participant.username,
            participant.role,
            participant.approved,
            participant.state,
        )
    assert any(p["approved"] and p["state"] == "approved" for p in body["participants"])


def test_an_unknown_pull_request_is_404(alice, repo):
    alice.error(f"{repo_path(repo)}/pullrequests/9999", status=404)


# -- activity --------------------------------------------------------------------------------------
def expected_activity(pr) -> int:
    reacted = [p for p in pr.participants if p.participated_on and (p.approved or p.state == "changes_requested")]
    return 1 + len(reacted) + len(pr.comments) + (pr.state != "OPEN")


@pytest.mark.parametrize("state", ["MERGED", "DECLINED"])
def test_activity_pages_with_an_opaque_cursor_and_no_size(alice, repo, state):
    pr = pr_of(repo, state)
    page = alice.json(f"{repo_path(repo)}/pullrequests/{pr.id}/activity", {"pagelen": 1})
    assert "size" not in page and "page" not in page and "previous" not in page
    token = dict(query_of(page["next"]))["page"]
    assert not token.isdigit()
    items = list(page["values"])
    while page.get("next"):
        page = alice.json(page["next"])
        items += page["values"]
    assert len(items) == expected_activity(pr)
    for item in items:
        assert len(ACTIVITY_KINDS & set(item)) == 1 and item["pull_request"]["id"] == pr.id
    dates = [
        datetime.fromisoformat(
            next(item[k]["date"] if k != "comment" else item[k]["created_on"] for k in ACTIVITY_KINDS & set(item))
        )
        for item in items
    ]
    assert dates == sorted(dates, reverse=True)
    assert items[0]["update"]["state"] == state  # newest first: the closing update
    assert items[-1]["update"]["state"] == "OPEN"


def test_activity_shows_approvals_and_change_requests(alice, repo):
    merged, declined = pr_of(repo, "MERGED", approved=True), pr_of(repo, "DECLINED")
    approvals = [
        i["approval"]["user"]["nickname"]
        for i in alice.values(f"{repo_path(repo)}/pullrequests/{merged.id}/activity")
        if "approval" in i
    ]
    assert approvals == [p.username for p in merged.participants if p.approved]
    requests_ = [
        i["changes_requested"]["user"]["nickname"]
        for i in alice.values(f"{repo_path(repo)}/pullrequests/{declined.id}/activity")
        if "changes_requested" in i
    ]
    assert requests_ == [p.username for p in declined.participants if p.state == "changes_requested"]


def test_activity_pagelen_is_capped_at_50(alice, repo):
    path = f"{repo_path(repo)}/pullrequests/{pr_of(repo, 'OPEN').id}/activity"
    alice.json(path, {"pagelen": 50})
    assert alice.error(path, {"pagelen": 51}, status=400) == "Invalid pagelen"


# -- pull requests of a commit ------------------------------------------------------------------------
def test_a_merge_commit_maps_back_to_its_pull_request(alice, repo):
    merged = [p for p in repo.pull_requests if p.merge_commit]
    assert merged
    for pr in merged:
        page = alice.json(f"{repo_path(repo)}/commit/{pr.merge_commit}/pullrequests")
        openapi.validate(page, "paginated_pullrequests")
        assert [p["id"] for p in page["values"]] == [pr.id]
        assert "participants" not in page["values"][0]


def test_a_source_commit_maps_to_the_pull_request_that_carries_it(alice, repo):
    pr = pr_of(repo, "OPEN")
    values = alice.values(f"{repo_path(repo)}/commit/{pr.source_commit}/pullrequests")
    assert [p["id"] for p in values] == [pr.id]


# -- Code Insights reports (write) -------------------------------------------------------------------
REPORT = {
    "title": "Security scan",
    "details": "2 findings",
    "report_type": "SECURITY",
    "reporter": "ox",
    "result": "FAILED",
    "data": [{"title": "Findings", "type": "NUMBER", "value": 2}],
}


@pytest.fixture
def report_path(repo):
    """A fresh report id on the main-branch head of the shared sandbox."""
    head = dict(repo.git.branches())[repo.mainbranch]
    return f"{repo_path(repo)}/commit/{head}/reports/ox-test-{uuid.uuid4().hex[:12]}"


def test_put_report_creates_then_replaces_it(alice, report_path):
    created = alice.put(report_path, REPORT)
    assert (created["type"], created["title"], created["report_type"], created["result"]) == (
        "report",
        "Security scan",
        "SECURITY",
        "FAILED",
    )
    assert created["external_id"] == report_path.rsplit("/", 1)[1]
    assert alice.json(report_path) == created
    replaced = alice.put(report_path, {**REPORT, "title": "Security scan (rerun)", "result": "PASSED"})
    assert (replaced["uuid"], replaced["created_on"]) == (created["uuid"], created["created_on"])
    assert (replaced["title"], replaced["result"]) == ("Security scan (rerun)", "PASSED")
    listed = alice.values(report_path.rsplit("/", 1)[0])
    assert [r["title"] for r in listed if r["external_id"] == created["external_id"]] == ["Security scan (rerun)"]


@pytest.mark.parametrize(
    "body",
    [{"report_type": "SECURITY"}, {**REPORT, "report_type": "LINT"}, {**REPORT, "result": "MAYBE"}],
    ids=["no-title", "bad-type", "bad-result"],
)
def test_put_report_validates_the_body(alice, report_path, body):
    response = alice.session.put(alice.url(report_path), json=body, timeout=10)
    assert response.status_code == 400 and response.json()["type"] == "error"
    alice.error(report_path, status=404)  # nothing was stored


def test_reports_on_an_unknown_commit_are_404(alice, repo):
    response = alice.session.put(alice.url(f"{repo_path(repo)}/commit/{'0' * 40}/reports/x"), json=REPORT, timeout=10)
    assert response.status_code == 404


def annotation(n: int, **extra) -> dict:
    return {
        "external_id": f"finding-{n}",
        "summary": f"Finding {n}",
        "annotation_type": "VULNERABILITY",
        "severity": "HIGH",
        "path": "app/settings.py",
        "line": n,
        **extra,
    }


def test_annotations_are_bulk_upserted_by_external_id(alice, report_path):
    alice.put(report_path, REPORT)
    created = alice.post(f"{report_path}/annotations", [annotation(1), annotation(2)], status=200)
    assert [a["external_id"] for a in created] == ["finding-1", "finding-2"]
    assert {a["type"] for a in created} == {"report_annotation"}
    updated = alice.post(f"{report_path}/annotations", [annotation(2, summary="Finding 2, revised")], status=200)
    assert updated[0]["uuid"] == created[1]["uuid"] and updated[0]["created_on"] == created[1]["created_on"]
    stored = {a["external_id"]: a["summary"] for a in alice.values(f"{report_path}/annotations")}
    assert stored == {"finding-1": "Finding 1", "finding-2": "Finding 2, revised"}


@pytest.mark.parametrize(
    "body",
    [
        {"external_id": "x", "summary": "not a list"},
        [],
        [annotation(1, summary="")],
        [annotation(1, severity="URGENT")],
        [annotation(1, annotation_type="STYLE")],
        [annotation(1), annotation(2, external_id="")],
    ],
    ids=["object", "empty", "no-summary", "bad-severity", "bad-type", "one-bad-in-batch"],
)
def test_invalid_annotations_are_400_and_store_nothing(alice, report_path, body):
    alice.put(report_path, REPORT)
    response = alice.session.post(alice.url(f"{report_path}/annotations"), json=body, timeout=10)
    assert response.status_code == 400 and response.json()["type"] == "error"
    assert alice.values(f"{report_path}/annotations") == []


def test_annotations_are_listed_page_by_page(alice, report_path):
    alice.put(report_path, REPORT)
    alice.post(f"{report_path}/annotations", [annotation(n) for n in range(1, 13)], status=200)
    page = alice.json(f"{report_path}/annotations", {"pagelen": 5})
    sizes, seen = [], []
    while True:
        sizes.append(len(page["values"]))
        seen += [a["external_id"] for a in page["values"]]
        if not page.get("next"):
            break
        page = alice.json(page["next"])
    assert sizes == [5, 5, 2] and sorted(seen) == sorted(f"finding-{n}" for n in range(1, 13))


def test_annotations_of_an_unknown_report_are_404(alice, report_path):
    alice.error(f"{report_path}/annotations", status=404)
    response = alice.session.post(alice.url(f"{report_path}/annotations"), json=[annotation(1)], timeout=10)
    assert response.status_code == 404


def test_a_member_with_read_access_cannot_put_a_report(fresh_sandbox):
    world = fresh_sandbox.world
    target = next(
        (
            r
            for r in (r for w in world.workspaces.values() for r in w.repositories.values())
            if world.permission("bob", r) == "read"
        ),
        None,
    )
    if target is None:
        # The generator's `developers` group gives bob write everywhere he is granted anything;
        # drop that group grant on one repository so his explicit read grant is what counts.
        target = sorted(world.workspaces[first_workspace(world)].repositories.values(), key=lambda r: r.slug)[0]
        with world.lock:
            target.group_permissions.pop("developers", None)
            target.user_permissions["bob"] = "read"
    assert world.permission("bob", target) == "read"
    bob = Api(fresh_sandbox, _token(fresh_sandbox, "bob-member"))
    head = dict(target.git.branches())[target.mainbranch]
    path = f"{repo_path(target)}/commit/{head}/reports/ox-read-only"
    assert bob.json(repo_path(target))["full_name"] == target.full_name  # reading is fine
    response = bob.session.put(bob.url(path), json=REPORT, timeout=10)
    assert response.status_code == 403
    assert response.json()["error"]["message"] == "Access denied. You must have write or admin access."
    bob.error(path, status=404)


# -- pull-request comments (write) --------------------------------------------------------------------
def _token(server, name: str) -> tuple[str, str]:
    user = {"alice-admin": "alice", "bob-member": "bob"}[name]
    return f"{user}@example.com", server.secrets()[f"OX_BB_SANDBOX_TOKEN_{name.upper().replace('-', '_')}"]


def test_a_new_comment_shows_in_comments_count_and_activity(fresh_sandbox):
    world = fresh_sandbox.world
    target = sorted(world.workspaces[first_workspace(world)].repositories.values(), key=lambda r: r.slug)[0]
    pr = target.pull_requests[0]
    alice = Api(fresh_sandbox, _token(fresh_sandbox, "alice-admin"))
    base = f"{repo_path(target)}/pullrequests/{pr.id}"
    before = alice.json(base)["comment_count"]

    comment = alice.post(f"{base}/comments", {"content": {"raw": "Please add a test."}}, status=201)
    assert comment["type"] == "pullrequest_comment" and comment["content"]["raw"] == "Please add a test."
    assert comment["user"]["nickname"] == "alice" and comment["pullrequest"]["id"] == pr.id

    assert [c["id"] for c in alice.values(f"{base}/comments")][-1] == comment["id"]
    assert alice.json(base)["comment_count"] == before + 1
    newest = alice.json(f"{base}/activity")["values"][0]
    assert newest["comment"]["id"] == comment["id"]

    response = alice.session.post(alice.url(f"{base}/comments"), json={"content": {"raw": "  "}}, timeout=10)
    assert response.status_code == 400
    assert alice.json(base)["comment_count"] == before + 1


def test_a_comment_is_edited_in_place_by_its_author_only(fresh_sandbox):
    world = fresh_sandbox.world
    target = sorted(world.workspaces[first_workspace(world)].repositories.values(), key=lambda r: r.slug)[0]
    base = f"{repo_path(target)}/pullrequests/{target.pull_requests[0].id}/comments"
    alice = Api(fresh_sandbox, _token(fresh_sandbox, "alice-admin"))
    bob = Api(fresh_sandbox, _token(fresh_sandbox, "bob-member"))
    comment = alice.post(base, {"content": {"raw": "First version."}}, status=201)
    count = len(alice.values(base))
    fresh_sandbox.clock.advance(60)

    edited = alice.put(f"{base}/{comment['id']}", {"content": {"raw": "Second version."}})
    assert edited["id"] == comment["id"] and edited["content"]["raw"] == "Second version."
    assert edited["updated_on"] > comment["updated_on"] and edited["created_on"] == comment["created_on"]
    assert alice.json(f"{base}/{comment['id']}")["content"]["raw"] == "Second version."
    assert len(alice.values(base)) == count  # edited, not added

    refused = bob.session.put(bob.url(f"{base}/{comment['id']}"), json={"content": {"raw": "Bob's."}}, timeout=10)
    assert refused.status_code == 403
    assert alice.session.put(alice.url(f"{base}/999999"), json={"content": {"raw": "x"}}, timeout=10).status_code == 404
    assert alice.json(f"{base}/{comment['id']}")["content"]["raw"] == "Second version."
