"""Extraction into the lake against the sandbox: every raw table, incremental runs that skip what did not
change, the pull-request watermark, repository selection and its changes, secrets kept out of the lake,
refusals recorded instead of failing, and several connections in one run.
"""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import requests
import yaml
from dagster import DagsterInstance

from ox_bb_pipeline import lake
from ox_bb_pipeline.app.runner import run_stages
from ox_bb_pipeline.bitbucket import tables
from ox_bb_pipeline.bitbucket.client import BitbucketClient
from ox_bb_pipeline.bitbucket.extract import ExtractOptions, Extractor, ExtractReport, StateStore
from ox_bb_pipeline.bitbucket.git import GitAccess
from ox_bb_pipeline.config import data_home, load_connections
from ox_bb_pipeline.scanners.secrets import redact_text
from ox_bb_pipeline_tests.conftest import ANCHOR, TINY
from ox_bb_sandbox.server import SandboxServer

WS = "acme-payments"
REPO_ROUTES = "/2.0/repositories/{workspace}/{repo_slug}/"  # per-repository endpoints, as the stats name them


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("OX_BB_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture(scope="module")
def tiny():
    """A tiny sandbox for the tests that only read it; each test has a data home of its own."""
    with SandboxServer(TINY) as server:
        yield server


@pytest.fixture
def connections_file(tiny, tmp_path, home) -> Path:
    return tiny.write_connections(tmp_path / "connections.yaml")


@pytest.fixture
def own_connections_file(fresh_sandbox, tmp_path, home) -> Path:
    """For tests that change the sandbox (a push, an edited pull request)."""
    return fresh_sandbox.write_connections(tmp_path / "connections.yaml")


def extract(path: Path, name: str = "sandbox-token", **options) -> ExtractReport:
    """One pass for one connection, as the `bitbucket_raw_tables` asset runs it: the previous
    partition and state in, the new partition and state out."""
    connection = load_connections(path).get(name)
    client = BitbucketClient(connection, sleep=lambda seconds: None)
    git = GitAccess(name, connection.git_url, client.auth.git_credentials)
    previous = {t: lake.read_partition("raw", t, name, home=data_home()) for t in tables.TABLES}
    store = StateStore(name, home=data_home())
    state = store.load()
    report = Extractor(
        client,
        git,
        redact_yml=redact_text,
        previous=previous,
        state=state,
        options=ExtractOptions(**options),
        home=data_home(),
    ).run()
    for table in tables.TABLES:
        lake.write_partition("raw", table, name, report.rows[table], tables.schema(table), home=data_home())
    store.save(state)
    return report


def rows(table: str, name: str = "sandbox-token") -> list[dict]:
    return lake.read_partition("raw", table, name, home=data_home())


def of(table: str, repository: str, name: str = "sandbox-token") -> list[dict]:
    return [r for r in rows(table, name) if r.get("repository") == repository]


def stats(server, reset: bool = False) -> dict:
    if reset:
        requests.post(f"{server.base_url}/_sandbox/stats/reset", timeout=10).raise_for_status()
        return {}
    return requests.get(f"{server.base_url}/_sandbox/stats", timeout=10).json()


def repository_requests(server) -> int:
    return sum(n for route, n in stats(server)["per_route"].items() if route.startswith(REPO_ROUTES))


def set_selection(path: Path, name: str, include: list[str], exclude: list[str]) -> None:
    document = yaml.safe_load(path.read_text())
    entry = next(c for c in document["connections"] if c["name"] == name)
    entry["include"], entry["exclude"] = include, exclude
    path.write_text(yaml.safe_dump(document, sort_keys=False))


def without_timestamps(table_rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in ("extracted_at", "checked_at")} for r in table_rows]


# -- a first extraction ---------------------------------------------------------------------------
def test_a_first_extraction_writes_every_raw_table_as_the_sandbox_has_it(tiny, connections_file, home):
    report = extract(connections_file)

    world = tiny.world
    ws = world.workspaces[WS]
    repos = ws.repositories.values()
    for table in tables.TABLES:
        assert lake.partition_path("raw", table, "sandbox-token", home=data_home()).exists(), table
    assert report.problems == [] and rows("extraction_status") == []  # alice is an admin with every scope

    assert {(r["workspace"], r["workspace_uuid"], r["administrator"]) for r in rows("workspaces")} == {
        (w.slug, w.uuid, True) for w in world.workspaces.values()
    }
    assert {r["project_key"] for r in rows("projects")} == set(ws.projects)
    assert {
        (
            r["repository_uuid"],
            r["repository"],
            r["project_key"],
            r["mainbranch"],
            r["is_private"],
            r["fork_policy"],
            r["selected"],
        )
        for r in rows("repositories")
    } == {(r.uuid, r.slug, r.project_key, r.mainbranch, r.is_private, r.fork_policy, True) for r in repos}
    assert all(
        r["clone_url"].endswith(f"/{WS}/{r['repository']}.git") and "@" not in r["clone_url"]
        for r in rows("repositories")
    )
    assert {(r["repository"], r["branch"], r["commit"]) for r in rows("branches")} == {
        (r.slug, name, sha) for r in repos for name, sha in r.git.branches()
    }
    assert {(r["repository"], r["pr_id"], r["state"]) for r in rows("pull_requests")} == {
        (r.slug, pr.id, pr.state) for r in repos for pr in r.pull_requests
    }
    assert {(r["repository"], r["commit"]) for r in rows("main_branch_commits")} == {
        (r.slug, sha) for r in repos for sha in r.git.rev_list([r.mainbranch])
    }
    merged = {(r.slug, pr.merge_commit): pr.id for r in repos for pr in r.pull_requests if pr.merge_commit}
    assert {
        (r["repository"], r["commit"]): r["pr_id"] for r in rows("main_branch_commits") if r["pr_id"] is not None
    } == merged  # each merge commit knows its pull request
    assert {(r["repository"], r["restriction_id"]) for r in rows("branch_restrictions")} == {
        (r.slug, rule["id"]) for r in repos for rule in r.branch_restrictions
    }
    assert {r["repository"] for r in rows("branching_models")} == {r.slug for r in repos}
    assert {(r["repository"], r["nickname"]) for r in rows("default_reviewers")} == {
        (r.slug, user) for r in repos for user in r.default_reviewers
    }
    assert {(r["repository"], r["enabled"], r["yml_present"]) for r in rows("pipeline_configs")} == {
        (r.slug, r.pipelines_enabled, r.pipelines_enabled) for r in repos
    }
    assert {
        (r["repository"], r["level"], r["environment"], r["key"], r["secured"]) for r in rows("pipeline_variables")
    } == {(None, "workspace", None, v.key, v.secured) for v in ws.variables} | {
        (r.slug, "repository", None, v.key, v.secured) for r in repos for v in r.variables
    } | {(r.slug, "deployment", e.name, v.key, v.secured) for r in repos for e in r.environments for v in e.variables}
    assert {(r["repository"], r["build_number"], r["result"]) for r in rows("pipeline_runs")} == {
        (r.slug, run.build_number, run.result) for r in repos for run in r.pipelines
    }
    assert {(r["repository"], r["name"]) for r in rows("environments")} == {
        (r.slug, e.name) for r in repos for e in r.environments
    }
    assert {(r["repository"], r["key_id"]) for r in rows("deploy_keys")} == {
        (r.slug, k.id) for r in repos for k in r.deploy_keys
    }
    assert {(r["repository"], r["url"], r["secret_set"]) for r in rows("webhooks")} == {
        (None, h.url, h.secret_set) for h in ws.hooks
    } | {(r.slug, h.url, h.secret_set) for r in repos for h in r.hooks}
    permissions = rows("repository_permissions")
    assert permissions and all(
        p["permission"] == world.permission(p["nickname"], ws.repositories[p["repository"]]) for p in permissions
    )
    # The sandbox plants data in every table but default reviewers (no clean repository in TINY).
    empty = {t for t in tables.TABLES if not rows(t)}
    assert empty == {"default_reviewers", "extraction_status"}


# -- incremental runs -----------------------------------------------------------------------------
def test_a_second_run_with_nothing_changed_reads_no_repository_content(tiny, connections_file, home):
    extract(connections_file)
    before = {t: without_timestamps(rows(t)) for t in tables.TABLES}
    stats(tiny, reset=True)

    report = extract(connections_file)

    n_repos = len(tiny.world.workspaces[WS].repositories)
    assert report.repositories_changed == 0 and report.settings_refreshed == 0
    assert repository_requests(tiny) <= 0.2 * n_repos
    assert report.rest_requests == stats(tiny)["rest_total"]  # only the workspace-level listings
    assert {t: without_timestamps(rows(t)) for t in tables.TABLES} == before  # carried forward, not lost


def test_settings_are_refreshed_once_older_than_their_cadence(tiny, connections_file, home):
    extract(connections_file)
    stats(tiny, reset=True)

    report = extract(connections_file, settings_max_age=timedelta(0))

    per_route = stats(tiny)["per_route"]
    n_repos = len(tiny.world.workspaces[WS].repositories)
    assert report.repositories_changed == 0 and report.settings_refreshed == n_repos
    assert per_route[REPO_ROUTES + "branch-restrictions"] == n_repos
    # Approvals and declines do not move a repository's updated_on, so the cadence also re-reads
    # pull requests incrementally (one watermark query per repository); content is not re-read.
    assert per_route[REPO_ROUTES + "pullrequests"] == n_repos
    assert REPO_ROUTES + "refs/branches" not in per_route


def test_a_push_to_one_repository_re_reads_only_that_repository(fresh_sandbox, own_connections_file, tmp_path):
    extract(own_connections_file)
    pushed = push_a_commit(own_connections_file, "python-service", tmp_path / "work")
    untouched = {t: without_timestamps(of(t, "node-web")) for t in tables.TABLES if t != "repositories"}
    stats(fresh_sandbox, reset=True)

    report = extract(own_connections_file)

    assert report.repositories_changed == 1
    assert stats(fresh_sandbox)["per_route"][REPO_ROUTES + "pullrequests"] == 1
    main = next(b for b in of("branches", "python-service") if b["is_main"])
    assert main["commit"] == pushed
    assert pushed in {c["commit"] for c in of("main_branch_commits", "python-service")}
    assert {t: without_timestamps(of(t, "node-web")) for t in untouched} == untouched


def push_a_commit(path: Path, slug: str, work: Path) -> str:
    """Clone with the connection's credentials, commit, push to main; the new head."""
    connection = load_connections(path).get("sandbox-token")
    client = BitbucketClient(connection)
    git = GitAccess(connection.name, connection.git_url, client.auth.git_credentials)
    git.run(["clone", "--quiet", git.remote_url(WS, slug), str(work)], what="clone")
    identity = ["-c", "user.name=Test Pusher", "-c", "user.email=pusher@example.com"]
    git.run(
        ["-C", str(work), *identity, "commit", "--quiet", "--allow-empty", "-m", "Hotfix"], what="commit", remote=False
    )
    git.run(["-C", str(work), "push", "--quiet", "origin", "HEAD:main"], what="push")
    return git.run(["-C", str(work), "rev-parse", "HEAD"], what="rev-parse", remote=False).strip()


def test_pull_requests_resume_from_the_watermark(fresh_sandbox, own_connections_file):
    extract(own_connections_file)
    repo = fresh_sandbox.world.workspaces[WS].repositories["python-service"]
    changed, older = sorted(repo.pull_requests, key=lambda pr: pr.updated_on, reverse=True)
    kept = next(r for r in of("pull_requests", "python-service") if r["pr_id"] == older.id)
    # Someone re-titles the newest pull request; the repository's updated_on moves with the activity.
    changed.title, changed.updated_on = "Retitled after review", ANCHOR + timedelta(days=1)
    repo.updated_on = ANCHOR + timedelta(days=1)
    # The older one disappears from the sandbox: only a full refresh can notice, the watermark skips it.
    repo.pull_requests.remove(older)

    extract(own_connections_file)

    by_id = {r["pr_id"]: r for r in of("pull_requests", "python-service")}
    assert by_id[changed.id]["title"] == "Retitled after review"
    assert by_id[older.id] == kept  # kept from the last run, not re-read
    state = StateStore("sandbox-token", home=data_home()).load()["repositories"][repo.uuid]
    assert state["pr_watermark"].startswith((ANCHOR + timedelta(days=1)).date().isoformat())

    extract(own_connections_file, full_refresh=True)

    assert {r["pr_id"] for r in of("pull_requests", "python-service")} == {changed.id}


# -- selection ------------------------------------------------------------------------------------
def test_selection_marks_repositories_and_a_changed_selection_deselects_without_dropping(connections_file, home):
    set_selection(connections_file, "sandbox-token", include=["*"], exclude=["*/*/node-web"])
    extract(connections_file)

    assert {r["repository"]: r["selected"] for r in rows("repositories")} == {"python-service": True, "node-web": False}
    assert {r["repository"] for r in rows("branches")} == {"python-service"}

    # The next run follows the file: python-service leaves the selection, node-web joins it.
    set_selection(connections_file, "sandbox-token", include=[f"{WS}/*/node-web"], exclude=[])
    extract(connections_file)

    assert {r["repository"]: r["selected"] for r in rows("repositories")} == {"python-service": False, "node-web": True}
    for table in tables.TABLES:
        if table not in ("repositories", "workspaces", "projects"):
            assert not of(table, "python-service"), f"{table} still has rows of a deselected repository"
    assert of("branches", "node-web") and of("pull_requests", "node-web")

    # Selected again, it comes back whole even though nothing changed on the server meanwhile.
    set_selection(connections_file, "sandbox-token", include=["*"], exclude=[])
    extract(connections_file)

    assert of("branches", "python-service") and of("pull_requests", "python-service")
    assert of("main_branch_commits", "python-service") and of("pipeline_configs", "python-service")


# -- secrets and refusals -------------------------------------------------------------------------
def test_pipeline_variable_values_never_reach_the_lake(tiny, connections_file, home):
    extract(connections_file)

    planted = [p for p in tiny.world.planted if p["rule"] == "BB-025" and p.get("value")]
    assert {p["kind"] for p in planted} == {"pipeline_variable", "setting"}  # workspace and repository level
    files = list((home / "lake").rglob("*.parquet"))
    assert len(files) == len(tables.TABLES)
    for file in files:
        raw, cells = file.read_bytes(), str(pq.read_table(file).to_pylist())
        for p in planted:
            assert p["value"].encode() not in raw and p["value"] not in cells, file
    flagged = {(r["level"], r["key"]) for r in rows("pipeline_variables") if r["value_looks_secret"]}
    assert {("workspace", "NPM_TOKEN"), ("repository", "AWS_SECRET_ACCESS_KEY")} <= flagged
    assert all(
        r["value_hash"] and len(r["value_hash"]) == 64 for r in rows("pipeline_variables") if r["value_looks_secret"]
    )
    assert all(r["value_hash"] is None for r in rows("pipeline_variables") if r["secured"])


def test_admin_endpoints_refused_to_a_member_become_status_rows_and_the_run_goes_on(tiny, connections_file, home):
    report = extract(connections_file, "sandbox-token-member")  # bob: a member, not an admin

    status = rows("extraction_status", "sandbox-token-member")
    forbidden = {(r["repository"], r["table_name"]) for r in status if r["status"] == "forbidden"}
    repos = set(tiny.world.workspaces[WS].repositories)
    assert {(slug, "branch_restrictions") for slug in repos} <= forbidden
    assert {(slug, "deploy_keys") for slug in repos} <= forbidden
    assert all(r["endpoint"] and r["detail"] for r in status)
    assert report.repositories_selected == len(repos)
    assert rows("branch_restrictions", "sandbox-token-member") == []
    assert {r["repository"] for r in rows("pull_requests", "sandbox-token-member")} == repos


# -- several connections in one run ---------------------------------------------------------------
SEVERAL = ("sandbox-app", "sandbox-idp", "sandbox-token", "sandbox-access-token", "broken-token")


@pytest.fixture(scope="module")
def several_connections(tiny, tmp_path_factory):
    """One `run_stages` over four working connections (one per method) and one whose environment
    variable holds a wrong token, all in the same file."""
    root = tmp_path_factory.mktemp("several")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("OX_BB_HOME", str(root / "home"))
        path = tiny.write_connections(root / "connections.yaml")
        document = yaml.safe_load(path.read_text())
        document["connections"] = [c for c in document["connections"] if c["name"] in SEVERAL] + [
            {
                "name": "broken-token",
                "method": "token",
                "host_url": tiny.api_url,
                "email": "alice@example.com",
                "api_token": "${OX_BB_BROKEN_TOKEN}",
            }
        ]
        path.write_text(yaml.safe_dump(document, sort_keys=False))
        with open(root / "connections.yaml.env", "a") as env_file:
            env_file.write("OX_BB_BROKEN_TOKEN=ATATT3x-not-a-valid-token\n")
        progress: list[str] = []
        results = run_stages("extract", path, progress=progress.append, dagster_instance=DagsterInstance.ephemeral())
        yield {r.connection: r for r in results}, progress, root / "home"
    shutil.rmtree(root, ignore_errors=True)


def test_one_failing_connection_does_not_fail_the_others(several_connections):
    results, progress, home = several_connections

    assert list(results) == list(SEVERAL)
    broken = results.pop("broken-token")
    assert not broken.success
    assert "broken-token" in broken.error and "refused the credential" in broken.error
    assert "not-a-valid-token" not in broken.error + "\n".join(progress)
    assert all(r.success for r in results.values())
    assert not lake.partition_path("raw", "repositories", "broken-token", home).exists()
    assert any("broken-token FAILED" in line for line in progress)


def test_several_connections_with_different_methods_extract_in_one_run(several_connections):
    results, _, home = several_connections

    for name in ("sandbox-app", "sandbox-idp", "sandbox-token", "sandbox-access-token"):
        repositories = lake.read_partition("raw", "repositories", name, home)
        assert {r["repository"] for r in repositories} == {"python-service", "node-web"}, name
        assert {r["connection"] for r in repositories} == {name}
        assert lake.read_partition("raw", "pull_requests", name, home), name
        assert results[name].metadata["repositories"]["dagster/row_count"] == 2
