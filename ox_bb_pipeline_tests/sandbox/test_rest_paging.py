"""Paging, partial responses (`fields=`) and BBQL filtering (`q=`, `sort=`) over real HTTP.

Queries go through requests' `params`, so values such as `+00:00` reach the sandbox encoded the
way a client library sends them. Expected answers are computed from `sandbox.world` and git.
"""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import quote

import pytest

from .rest_helpers import find_repo, git, query_of, repo_path

ALL_STATES = ["OPEN", "MERGED", "DECLINED", "SUPERSEDED"]


@pytest.fixture(scope="module")
def repo(world, ws):
    return find_repo(world, lambda r: len(r.pull_requests) >= 3 and len(r.git.branches()) >= 3, ws.slug)


@pytest.fixture(scope="module")
def many(ws):
    """A plain (page-numbered) listing with more than ten items."""
    return f"/workspaces/{ws.slug}/permissions/repositories"


# -- paging -------------------------------------------------------------------------------------
def test_pagelen_defaults_to_10(alice, many):
    page = alice.json(many)
    assert (page["pagelen"], len(page["values"]), page["page"]) == (10, 10, 1)
    assert page["size"] > 10 and "next" in page and "previous" not in page


@pytest.mark.parametrize(
    ("path", "most"),
    [
        ("/repositories/{ws}", 100),
        ("/repositories/{repo}/refs/branches", 100),
        ("/repositories/{repo}/commits", 100),
        ("/repositories/{repo}/pullrequests", 50),
        ("/repositories/{repo}/pullrequests/1/activity", 50),
    ],
)
def test_pagelen_above_the_endpoint_maximum_is_400_not_a_clamp(alice, ws, repo, path, most):
    path = path.format(ws=ws.slug, repo=repo.full_name)
    assert alice.json(path, {"pagelen": most})["pagelen"] == most
    for bad in (most + 1, 0):
        assert alice.error(path, {"pagelen": bad}, status=400) == "Invalid pagelen"


def test_next_carries_the_query_verbatim(alice, repo):
    sent = [
        ("state", "MERGED"),
        ("state", "DECLINED"),
        ("q", "updated_on >= 2020-01-01T00:00:00+00:00"),
        ("sort", "-updated_on"),
        ("fields", "values.id,values.state,next,+values.participants"),
        ("pagelen", "1"),
    ]
    page = alice.json(f"{repo_path(repo)}/pullrequests", sent)
    params = query_of(page["next"])
    assert [p for p in params if p[0] != "page"] == sent
    assert dict(params)["page"] == "2"
    second = alice.json(page["next"])
    assert second["values"][0]["state"] in ("MERGED", "DECLINED") and "participants" in second["values"][0]


@pytest.mark.parametrize("pagelen", [1, 3, 7])
def test_following_next_yields_every_item_exactly_once(alice, many, pagelen):
    everything = alice.json(many, {"pagelen": 100})["values"]
    page = alice.json(many, {"pagelen": pagelen})
    collected = list(page["values"])
    while page.get("next"):
        page = alice.json(page["next"])
        collected += page["values"]
    assert collected == everything


def test_following_a_commit_cursor_yields_every_commit_exactly_once(alice, repo):
    everything = [c["hash"] for c in alice.json(f"{repo_path(repo)}/commits", {"pagelen": 100})["values"]]
    page = alice.json(f"{repo_path(repo)}/commits", {"pagelen": 4})
    collected = [c["hash"] for c in page["values"]]
    while page.get("next"):
        assert not dict(query_of(page["next"]))["page"].isdigit()
        page = alice.json(page["next"])
        collected += [c["hash"] for c in page["values"]]
    assert collected == everything and len(set(collected)) == len(collected)


def test_page_two_links_back_to_page_one(alice, many):
    first = alice.json(many, {"pagelen": 4})
    second = alice.json(first["next"])
    assert second["page"] == 2 and dict(query_of(second["previous"]))["page"] == "1"
    assert alice.json(second["previous"])["values"] == first["values"]


def test_next_keeps_a_uuid_path_percent_encoded(alice, ws):
    page = alice.json(f"/repositories/{quote(ws.uuid)}", {"pagelen": 2})
    assert f"/repositories/{quote(ws.uuid)}?" in page["next"] and "{" not in page["next"]
    assert alice.json(page["next"])["page"] == 2


def test_the_last_page_has_no_next(alice, many):
    size = alice.json(many)["size"]
    pages = (size + 4) // 5
    last = alice.json(many, {"pagelen": 5, "page": pages})
    assert "next" not in last and len(last["values"]) == size - 5 * (pages - 1)


# -- fields ----------------------------------------------------------------------------------------
def test_fields_with_plain_paths_keeps_only_those(alice, ws):
    page = alice.json(f"/repositories/{ws.slug}", {"fields": "values.slug,next", "pagelen": 2})
    assert set(page) == {"values", "next"}
    assert all(set(v) == {"slug"} for v in page["values"])
    assert dict(query_of(page["next"]))["fields"] == "values.slug,next"


def test_fields_on_a_single_object(alice, repo):
    body = alice.json(repo_path(repo), {"fields": "slug,project.key"})
    assert body == {"slug": repo.slug, "project": {"key": repo.project_key}}


def test_fields_minus_removes_a_path(alice, ws):
    full = alice.json(f"/repositories/{ws.slug}")
    trimmed = alice.json(f"/repositories/{ws.slug}", {"fields": "-values.links"})
    assert all("links" not in v for v in trimmed["values"])
    assert [{k: x for k, x in v.items() if k != "links"} for v in full["values"]] == trimmed["values"]
    assert trimmed["size"] == full["size"]


def test_fields_plus_must_be_percent_encoded(alice, repo):
    path = f"{alice.url(repo_path(repo))}/pullrequests"
    encoded = alice.get(f"{path}?state=MERGED&fields=%2Bvalues.participants")
    assert encoded.status_code == 200 and all("participants" in v for v in encoded.json()["values"])
    raw = alice.get(f"{path}?state=MERGED&fields=+values.participants")  # a raw + is a space
    assert raw.status_code == 400 and "Invalid field name" in raw.json()["error"]["message"]


def test_fields_wildcard_matches_any_key(alice, ws):
    page = alice.json(f"/repositories/{ws.slug}", {"fields": "values.links.*.href"})
    for item in page["values"]:
        assert set(item) == {"links"}
        assert all(set(link) == {"href"} for name, link in item["links"].items() if name != "clone")


def test_a_wildcard_below_values_does_not_surface_hidden_fields(alice, repo):
    page = alice.json(f"{repo_path(repo)}/pullrequests", {"fields": "values.*", "state": ALL_STATES})
    assert page["values"] and all("participants" not in v and "id" in v for v in page["values"])


@pytest.mark.parametrize("fields", ["values.bad name", "values..slug", "val*ues", "values.slug;drop"])
def test_an_invalid_field_name_is_400(alice, ws, fields):
    assert "Invalid field name" in alice.error(f"/repositories/{ws.slug}", {"fields": fields}, status=400)


# -- BBQL on repositories -----------------------------------------------------------------------------
NEW_YEAR = datetime(2026, 1, 1, tzinfo=UTC)
REPO_QUERIES = [
    ('slug = "{slug}"', lambda r, p: r.slug == p.slug),
    ('slug != "{slug}"', lambda r, p: r.slug != p.slug),
    ('name ~ "{shout}"', lambda r, p: p.slug.split("-")[0] in r.name),  # ~ ignores case
    ("updated_on > {when}", lambda r, p: r.updated_on > p.updated_on),
    ("updated_on >= {when}", lambda r, p: r.updated_on >= p.updated_on),
    ("updated_on < {when}", lambda r, p: r.updated_on < p.updated_on),
    ("updated_on <= {when}", lambda r, p: r.updated_on <= p.updated_on),
    ("updated_on >= 2026-01-01T00:00:00+00:00", lambda r, p: r.updated_on >= NEW_YEAR),
    ("updated_on > 2026-01-01T00:00:00", lambda r, p: r.updated_on > NEW_YEAR),  # no offset: UTC
    ('project.key = "{project}"', lambda r, p: r.project_key == p.project_key),
    ("is_private = false", lambda r, p: not r.is_private),
    ('description ~ "{slug} SERVICE"', lambda r, p: f"{p.slug} service" in r.description),  # quoted, spaced
    (
        '(project.key = "{project}" OR is_private = false) AND slug != "{slug}"',
        lambda r, p: (r.project_key == p.project_key or not r.is_private) and r.slug != p.slug,
    ),
    (
        'slug = "{slug}" OR project.key = "{project}" AND updated_on < {when}',  # AND binds tighter
        lambda r, p: r.slug == p.slug or (r.project_key == p.project_key and r.updated_on < p.updated_on),
    ),
]


@pytest.mark.parametrize(("template", "predicate"), REPO_QUERIES, ids=[q for q, _ in REPO_QUERIES])
def test_bbql_on_repositories(alice, ws, template, predicate):
    repos = sorted(ws.repositories.values(), key=lambda r: r.slug)
    pivot = sorted(repos, key=lambda r: r.updated_on)[len(repos) // 2]
    q = template.format(
        slug=pivot.slug,
        shout=pivot.slug.split("-")[0].upper(),
        project=pivot.project_key,
        when=pivot.updated_on.isoformat(),
    )
    slugs = [r["slug"] for r in alice.values(f"/repositories/{ws.slug}", {"q": q})]
    assert slugs == [r.slug for r in repos if predicate(r, pivot)]


@pytest.mark.parametrize(
    ("sort", "key", "reverse"),
    [
        ("updated_on", "updated_on", False),
        ("-updated_on", "updated_on", True),
        ("-name", "name", True),
        ("created_on", "created_on", False),
    ],
)
def test_sort_on_repositories(alice, ws, sort, key, reverse):
    repos = sorted(ws.repositories.values(), key=lambda r: r.slug)
    slugs = [r["slug"] for r in alice.values(f"/repositories/{ws.slug}", {"sort": sort})]
    assert slugs == [r.slug for r in sorted(repos, key=lambda r: getattr(r, key), reverse=reverse)]


# -- BBQL on branches ----------------------------------------------------------------------------------
def branch_dates(repo) -> dict[str, datetime]:
    return {
        name: datetime.fromisoformat(git(repo, "show", "-s", "--format=%aI", sha).decode().strip())
        for name, sha in repo.git.branches()
    }


BRANCH_QUERIES = [
    ('name = "main"', lambda n, d, w: n == "main"),
    ('name != "main"', lambda n, d, w: n != "main"),
    ('name ~ "FEATURE/"', lambda n, d, w: n.startswith("feature/")),
    ('name ~ "rel" OR name = "develop"', lambda n, d, w: "rel" in n or n == "develop"),
    ("target.date >= {when}", lambda n, d, w: d >= w),
    ("target.date < {when}", lambda n, d, w: d < w),
    (
        '(name ~ "feature" OR name ~ "release") AND target.date <= {when}',
        lambda n, d, w: ("feature" in n or "release" in n) and d <= w,
    ),
]


@pytest.mark.parametrize(("template", "predicate"), BRANCH_QUERIES, ids=[q for q, _ in BRANCH_QUERIES])
def test_bbql_on_branches(alice, repo, template, predicate):
    dates = branch_dates(repo)
    when = sorted(dates.values())[len(dates) // 2]
    names = [
        b["name"]
        for b in alice.values(f"{repo_path(repo)}/refs/branches", {"q": template.format(when=when.isoformat())})
    ]
    assert names == [n for n, _ in repo.git.branches() if predicate(n, dates[n], when)]


def test_branches_sorted_by_target_date_descending(alice, repo):
    dates = branch_dates(repo)
    names = [b["name"] for b in alice.values(f"{repo_path(repo)}/refs/branches", {"sort": "-target.date"})]
    assert [dates[n] for n in names] == sorted(dates.values(), reverse=True)


# -- BBQL on pull requests --------------------------------------------------------------------------
PR_QUERIES = [
    ('source.branch.name = "{branch}"', lambda p, x: p.source_branch == x.source_branch),
    ('state = "MERGED" OR state = "DECLINED"', lambda p, x: p.state in ("MERGED", "DECLINED")),
    (
        '(state = "MERGED" OR state = "DECLINED") AND updated_on >= {when}',
        lambda p, x: p.state in ("MERGED", "DECLINED") and p.updated_on >= x.updated_on,
    ),
    ("id >= 2 AND id <= 3", lambda p, x: 2 <= p.id <= 3),
    ("id > 1 AND id < 4", lambda p, x: 1 < p.id < 4),
    ('author.nickname = "{author}"', lambda p, x: p.author == x.author),
    ('title ~ "CHANGE {id}:"', lambda p, x: p.id == x.id),
    ('destination.branch.name = "main" AND id != {id}', lambda p, x: p.destination_branch == "main" and p.id != x.id),
]


@pytest.mark.parametrize(("template", "predicate"), PR_QUERIES, ids=[q for q, _ in PR_QUERIES])
def test_bbql_on_pull_requests(alice, repo, template, predicate):
    prs = sorted(repo.pull_requests, key=lambda p: p.id, reverse=True)
    pivot = sorted(prs, key=lambda p: p.updated_on)[len(prs) // 2]
    q = template.format(branch=pivot.source_branch, when=pivot.updated_on.isoformat(), author=pivot.author, id=pivot.id)
    found = [p["id"] for p in alice.values(f"{repo_path(repo)}/pullrequests", {"q": q, "state": ALL_STATES})]
    assert found == [p.id for p in prs if predicate(p, pivot)]


def test_the_incremental_pull_request_query_peers_use(alice, repo):
    """Every state, updated since a watermark, oldest change first, 50 a page (reference §2)."""
    watermark = sorted(p.updated_on for p in repo.pull_requests)[1]
    params = {"state": ALL_STATES, "q": f"updated_on>={watermark.isoformat()}", "sort": "updated_on", "pagelen": 50}
    found = [p["id"] for p in alice.values(f"{repo_path(repo)}/pullrequests", params)]
    newer = [p for p in sorted(repo.pull_requests, key=lambda p: p.id, reverse=True) if p.updated_on >= watermark]
    assert found == [p.id for p in sorted(newer, key=lambda p: p.updated_on)]
    assert 0 < len(found) < len(repo.pull_requests)


@pytest.mark.parametrize(("sort", "reverse"), [("updated_on", False), ("-created_on", True)])
def test_sort_on_pull_requests(alice, repo, sort, reverse):
    key = sort.lstrip("-")
    found = [p["id"] for p in alice.values(f"{repo_path(repo)}/pullrequests", {"sort": sort, "state": ALL_STATES})]
    ordered = sorted(
        sorted(repo.pull_requests, key=lambda p: p.id, reverse=True), key=lambda p: getattr(p, key), reverse=reverse
    )
    assert found == [p.id for p in ordered]


# -- BBQL errors ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("path", "q"),
    [
        ("/repositories/{ws}", 'links.html.href ~ "x"'),
        ("/repositories/{repo}/refs/branches", 'merge_strategies = "squash"'),
        ("/repositories/{repo}/pullrequests", "closed_on > 2026-01-01T00:00:00+00:00"),
    ],
)
def test_filtering_on_an_unsupported_field_is_400(alice, ws, repo, path, q):
    message = alice.error(path.format(ws=ws.slug, repo=repo.full_name), {"q": q}, status=400)
    assert "does not support filtering" in message


@pytest.mark.parametrize(
    "q", ["slug =", '(slug = "a"', 'slug == "a"', 'slug = "unterminated', 'slug = "a" AND', 'slug "a"']
)
def test_bad_bbql_syntax_is_400(alice, ws, q):
    assert alice.error(f"/repositories/{ws.slug}", {"q": q}, status=400).startswith("Invalid query")


def test_an_empty_q_filters_nothing(alice, ws):
    assert alice.json(f"/repositories/{ws.slug}", {"q": ""})["size"] == len(ws.repositories)


@pytest.mark.parametrize("path", ["/repositories/{ws}", "/repositories/{repo}/pullrequests"])
def test_sorting_on_an_unknown_field_is_400(alice, ws, repo, path):
    message = alice.error(path.format(ws=ws.slug, repo=repo.full_name), {"sort": "-no_such_field"}, status=400)
    assert "Invalid sort field" in message
