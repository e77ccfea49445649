"""Pull-request scans on the sandbox (real HTTP, real git pushes, real scanners): a pull request that adds a
vulnerable dependency and a secret gets a FAILED report with annotations on the lines that added them and one
comment; the push that removes them turns the next report PASSED and edits the same comment; the sensor
launches nothing for an unchanged pull request (no request, no clone); opt-out and dry runs write nothing."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import duckdb
import requests
from click.testing import CliRunner

from ox_bb_pipeline import lake
from ox_bb_pipeline.app.cli import main
from ox_bb_pipeline.bitbucket import tables
from ox_bb_pipeline.bitbucket.capabilities import verify
from ox_bb_pipeline.bitbucket.client import BitbucketClient
from ox_bb_pipeline.bitbucket.git import GitAccess
from ox_bb_pipeline.config import load_connections
from ox_bb_pipeline.defs.bitbucket.resources import BitbucketResource
from ox_bb_pipeline.defs.scanning.pull_requests import pull_request_scan_sensor
from ox_bb_pipeline.defs.storage.resources import StorageResource
from ox_bb_pipeline.scanners import registry
from ox_bb_pipeline.scanners.pull_requests import COMMENT_MARKER, REPORT_ID, _added_lines, companions, scan_by_id
from ox_bb_pipeline.warehouse.runner import build

from .conftest import extract

WS = "acme-payments"
CONNECTION = "sandbox-token"
SECRET = "AKIAQ3EGRIFKT7XZ5L2M"  # an AWS access key id shape, not a real key
BRANCH = "feature/settings"


def scanners():
    """The scanners this change concerns (secrets and SCA), real ones; every scanner runs in the benchmark."""
    return [registry.get("secrets").create(), registry.get("sca").create()]


def setup(server, tmp_path: Path, scans: dict | None = None):
    path = server.write_connections(
        tmp_path / "connections.yaml", {"pull_request_scans": {"enabled": True, **(scans or {})}}
    )
    connection = load_connections(path).get(CONNECTION)
    client = BitbucketClient(connection, sleep=lambda seconds: None)
    git = GitAccess(connection.name, connection.git_url, client.auth.git_credentials)
    slug = sorted(server.world.workspaces[WS].repositories)[0]
    return path, connection, client, git, slug


def push(git: GitAccess, slug: str, work: Path, files: dict[str, str | None], message: str) -> str:
    """Commit `files` (None deletes one) on BRANCH and push it, as a developer would."""
    if not work.exists():
        git.run(["clone", "--quiet", git.remote_url(WS, slug), str(work)], what="clone")
        git.run(["-C", str(work), "checkout", "--quiet", "-b", BRANCH], what="branch", remote=False)
    for name, text in files.items():
        target = work / name
        if text is None:
            target.unlink()
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
    identity = ["-c", "user.name=Dev", "-c", "user.email=dev@example.com"]
    git.run(["-C", str(work), "add", "-A"], what="add", remote=False)
    git.run(["-C", str(work), *identity, "commit", "--quiet", "-m", message], what="commit", remote=False)
    git.run(["-C", str(work), "push", "--quiet", "origin", f"HEAD:refs/heads/{BRANCH}"], what="push")
    return git.run(["-C", str(work), "rev-parse", "HEAD"], what="rev-parse", remote=False).strip()


def open_pull_request(server, slug: str) -> int:
    answer = requests.post(
        f"{server.base_url}/_sandbox/pullrequests",
        json={"workspace": WS, "repository": slug, "source": BRANCH, "title": "Settings"},
        timeout=10,
    )
    answer.raise_for_status()
    return answer.json()["id"]


def api(client: BitbucketClient, path: str):
    return (
        list(client.paginate(path)) if path.endswith(("comments", "annotations", "reports")) else client.get_json(path)
    )


def stats(server, reset: bool = False) -> dict:
    if reset:
        requests.post(f"{server.base_url}/_sandbox/stats/reset", timeout=10).raise_for_status()
    return requests.get(f"{server.base_url}/_sandbox/stats", timeout=10).json()


def ours(comments: list[dict]) -> list[dict]:
    return [c for c in comments if COMMENT_MARKER in c["content"]["raw"]]


ADDED = {
    "service/requirements.txt": "requests==2.31.0\nPyYAML==5.3\n",
    "service/settings.py": 'import os\n\nAWS_ACCESS_KEY_ID = "' + SECRET + '"\nREGION = os.environ["REGION"]\n',
    "service/README.md": "Settings for the service.\n",
}
FIXED = {
    "service/requirements.txt": "requests==2.31.0\nPyYAML==6.0.1\n",
    "service/settings.py": (
        'import os\n\nAWS_ACCESS_KEY_ID = os.environ["AWS_ACCESS_KEY_ID"]\nREGION = os.environ["REGION"]\n'
    ),
}


def test_a_pull_request_that_adds_a_vulnerable_dependency_and_a_secret_fails_until_a_push_removes_them(
    fresh_sandbox, tmp_path, isolated_home
):
    path, connection, client, git, slug = setup(fresh_sandbox, tmp_path)
    work = tmp_path / "work"
    first = push(git, slug, work, ADDED, "Add the service settings")
    pr_id = open_pull_request(fresh_sandbox, slug)

    scan = scan_by_id(connection, client, git, WS, slug, pr_id, scanners=scanners(), home=isolated_home)

    assert scan.change.source == first and scan.result == "FAILED"
    assert sorted(scan.change.changed) == sorted(ADDED)
    base = f"/repositories/{WS}/{slug}/commit/{first}/reports/{REPORT_ID}"
    report = api(client, base)
    assert report["result"] == "FAILED" and report["report_type"] == "SECURITY"
    data = {d["title"]: d["value"] for d in report["data"]}
    assert data["Introduced findings"] == len(scan.introduced) >= 2 and data["Fails at"] == "high"
    notes = api(client, f"{base}/annotations")
    where = {(n["path"], n["line"]): n for n in notes}
    assert ("service/requirements.txt", 2) in where  # the line that added PyYAML 5.3
    assert ("service/settings.py", 3) in where  # the line that added the key
    assert where[("service/settings.py", 3)]["severity"] in ("HIGH", "CRITICAL")
    comments = api(client, f"/repositories/{WS}/{slug}/pullrequests/{pr_id}/comments")
    assert len(ours(comments)) == 1 and "FAILED" in ours(comments)[0]["content"]["raw"]
    assert SECRET not in json.dumps([report, notes, comments])  # only the masked preview
    assert "AKIA… (20 chars)" in where[("service/settings.py", 3)]["details"]

    # scanning the same commit again changes nothing and posts nothing twice
    again = scan_by_id(connection, client, git, WS, slug, pr_id, scanners=scanners(), home=isolated_home)
    assert [f.finding_id for f in again.introduced] == [f.finding_id for f in scan.introduced]
    assert len(api(client, f"{base}/annotations")) == len(notes)
    assert api(client, f"/repositories/{WS}/{slug}/pullrequests/{pr_id}/comments") == comments

    # the extract's rows feed the sensor: nothing moved since the scan, so no run, no request, no clone
    bitbucket = BitbucketResource(connections_file=str(path))
    storage = StorageResource(home=str(isolated_home))

    def tick(cursor=None):
        rows, _ = extract(path, CONNECTION)
        lake.write_partition(
            "raw", "pull_requests", CONNECTION, rows["pull_requests"], tables.schema("pull_requests"), isolated_home
        )
        before = stats(fresh_sandbox, reset=True)
        with (
            dg.instance_for_test() as instance,
            dg.build_sensor_context(
                instance=instance, cursor=cursor, resources={"bitbucket": bitbucket, "storage": storage}
            ) as context,
        ):
            result = pull_request_scan_sensor(context)
        return result, before, stats(fresh_sandbox)

    result, before, after = tick()
    assert not result.run_requests and (after["rest_total"], after["git_total"]) == (0, 0) == (
        before["rest_total"],
        before["git_total"],
    )

    second = push(git, slug, work, FIXED, "Read the key from the environment; PyYAML 6")
    assert api(client, f"/repositories/{WS}/{slug}/pullrequests/{pr_id}")["source"]["commit"]["hash"] == second[:12]
    result, _, after = tick()
    assert [r.run_config["ops"]["scan_pull_request"]["config"]["pull_request_id"] for r in result.run_requests] == [
        pr_id
    ]
    assert result.run_requests[0].run_key.endswith(f"#{pr_id}@{second[:12]}") and after["git_total"] == 0
    repeated, _, _ = tick(result.cursor)  # launched, not finished: not launched again
    assert not repeated.run_requests

    fixed = scan_by_id(connection, client, git, WS, slug, pr_id, scanners=scanners(), home=isolated_home)
    assert fixed.change.source == second and fixed.result == "PASSED" and fixed.introduced == []
    assert fixed.resolved == 0  # measured against the merge base, which never had them
    report = api(client, f"/repositories/{WS}/{slug}/commit/{second}/reports/{REPORT_ID}")
    assert report["result"] == "PASSED"
    updated = api(client, f"/repositories/{WS}/{slug}/pullrequests/{pr_id}/comments")
    assert len(updated) == len(comments) and len(ours(updated)) == 1
    assert ours(updated)[0]["id"] == ours(comments)[0]["id"] and "PASSED" in ours(updated)[0]["content"]["raw"]

    # the lake keeps every push's scan; the findings are those introduced at the first push
    runs = lake.read_partition("scans", "pull_request_scans", CONNECTION, isolated_home)
    assert sorted((r["source_commit"], r["result"]) for r in runs) == sorted([(first, "FAILED"), (second, "PASSED")])
    rows = lake.read_partition("findings", "pull_requests", CONNECTION, isolated_home)
    assert {r["commit"] for r in rows} == {first} and len(rows) == len(scan.introduced)
    assert SECRET not in json.dumps(rows, default=str)

    # the mart: the latest scan of each pull request (PASSED, nothing introduced: one row without a finding)
    built = build(isolated_home, now=datetime.now(UTC))
    con = duckdb.connect(str(built.path), read_only=True)
    try:
        mart = con.execute(
            "SELECT pull_request_id, pull_request_state, source_commit, result, introduced_findings, finding_id "
            "FROM pull_request_findings"
        ).fetchall()
    finally:
        con.close()
    assert mart == [(pr_id, "OPEN", second, "PASSED", 0, None)]


def test_dry_run_and_opt_out_write_nothing_to_bitbucket(fresh_sandbox, tmp_path, isolated_home):
    path, connection, client, git, slug = setup(fresh_sandbox, tmp_path)
    head = push(git, slug, tmp_path / "work", ADDED, "Add the service settings")
    pr_id = open_pull_request(fresh_sandbox, slug)

    result = CliRunner().invoke(
        main,
        ["scan-pr", f"{WS}/{slug}", str(pr_id), "--connections", str(path), "--connection", CONNECTION, "--dry-run"]
        + ["--scanner", "secrets", "--scanner", "sca"],
    )
    assert result.exit_code == 2, result.output  # FAILED
    assert "would write (dry run)" in result.output and "service/settings.py:3" in result.output
    assert SECRET not in result.output
    assert api(client, f"/repositories/{WS}/{slug}/commit/{head}/reports") == []
    assert ours(api(client, f"/repositories/{WS}/{slug}/pullrequests/{pr_id}/comments")) == []

    opted_out = tmp_path / "opted-out"
    opted_out.mkdir()
    path, connection, client, git, _ = setup(fresh_sandbox, opted_out, {"exclude": [f"{WS}/{slug[:3]}*"]})
    stats(fresh_sandbox, reset=True)
    scan = scan_by_id(connection, client, git, WS, slug, pr_id, scanners=scanners(), home=isolated_home)
    assert scan.skipped and "exclude" in scan.skipped and scan.written == []
    after = stats(fresh_sandbox)
    assert (after["rest_total"], after["git_total"]) == (0, 0)
    assert api(client, f"/repositories/{WS}/{slug}/commit/{head}/reports") == []


def test_a_manifest_or_terraform_change_brings_its_directorys_manifests_and_modules():
    files = [
        "web/package.json",
        "web/package-lock.json",
        "web/src/app.js",
        "infra/main.tf",
        "infra/variables.tf",
        "infra/README.md",
        "api/main.py",
        "api/requirements.txt",
    ]
    assert companions(["web/package.json", "infra/main.tf", "api/main.py"], files) == [
        "api/main.py",
        "infra/main.tf",
        "infra/variables.tf",
        "web/package-lock.json",
        "web/package.json",
    ]


def test_verify_probes_the_writes_of_pull_request_scans_without_writing(fresh_sandbox, tmp_path):
    path = fresh_sandbox.write_connections(tmp_path / "connections.yaml", {"pull_request_scans": {"enabled": True}})
    probes = {}
    for name in ("sandbox-token", "sandbox-token-limited"):
        connection = load_connections(path).get(name)
        client = BitbucketClient(connection, sleep=lambda seconds: None)
        probes[name] = {p.capability: p for p in verify(client).probes if p.capability.startswith("write:")}
    reports, comments = "write: Code Insights reports", "write: pull-request comments"
    assert probes["sandbox-token"][reports].ok and probes["sandbox-token"][comments].ok
    limited = probes["sandbox-token-limited"]
    assert not limited[reports].ok and limited[reports].missing == "write:repository:bitbucket"
    assert not limited[comments].ok and "pullrequest" in limited[comments].missing
    repositories = [r for ws in fresh_sandbox.world.workspaces.values() for r in ws.repositories.values()]
    assert not any(r.reports for r in repositories)  # nothing was written
    assert not any(c for r in repositories for pr in r.pull_requests for c in pr.comments if "verify" in c["raw"])


def test_the_lines_a_change_adds_are_read_from_the_diff_whatever_the_added_text():
    diff = (
        "diff --git a/req.txt b/req.txt\nnew file mode 100644\n--- /dev/null\n+++ b/req.txt\n@@ -0,0 +1,3 @@\n"
        "+a\n+++ x\n+c\n"  # an added line "++ x" is content, not a header
        "diff --git a/c.py b/c.py\n--- a/c.py\n+++ b/c.py\n@@ -4 +4,2 @@\n--- old\n+++ new\n+new2\n"
        "diff --git a/gone.txt b/gone.txt\n--- a/gone.txt\n+++ /dev/null\n@@ -1 +0,0 @@\n-x\n"
    )
    assert _added_lines(diff) == {"req.txt": {1, 2, 3}, "c.py": {4, 5}}
