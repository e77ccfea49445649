"""Faults on the sandbox's git routes end to end: the extract (branch heads, history and the pipelines file,
read over git smart HTTP) and the scan stage (a clone per repository) against a sandbox that injects each
transport fault (500, 502, 503, slow, drop, truncate, 401) into `info/refs` or `git-upload-pack`, once or
every time, plus an OAuth token that expires mid-run.

Every cell ends one of two ways, compared row by row with one clean reference per stage:
- once: exactly the clean run's rows (every raw table; every findings table, scan_runs and repository_files);
- every time: the connection is degraded, each repository named with the connection and the cause; the rows
  git could not refresh are the last run's (raw tables) or absent with an error row per scanner (scan stage) —
  and after a warehouse build no finding of the clean run is resolved, and a clean rerun converges.

One sandbox serves the module. Cells start from a copy of a clean home (no sandbox restart, no rescans of the
reference); retries wait on the sandbox's manual clock, and only `slow` waits in real time (git has no read
timeout: a slow answer only makes the run slower).
"""

from __future__ import annotations

import json
import shutil
from datetime import timedelta
from pathlib import Path

import duckdb
import pytest
from dagster import DagsterInstance

from ox_bb_pipeline import lake
from ox_bb_pipeline.app.runner import run_stages
from ox_bb_pipeline.bitbucket import tables
from ox_bb_pipeline.bitbucket.client import BitbucketClient
from ox_bb_pipeline.bitbucket.extract import ExtractOptions, Extractor, StateStore
from ox_bb_pipeline.bitbucket.git import GitAccess
from ox_bb_pipeline.clock import ManualClock
from ox_bb_pipeline.config import load_connections
from ox_bb_pipeline.findings import FINDING_SCHEMA
from ox_bb_pipeline.scanners import posture
from ox_bb_pipeline.scanners.bandit import BanditScanner
from ox_bb_pipeline.scanners.secrets import SecretsScanner, redact_text
from ox_bb_pipeline.scanners.stage import REPOSITORY_FILES_SCHEMA, SCAN_RUN_SCHEMA, scan_repositories
from ox_bb_pipeline.warehouse.runner import build, warehouse_path
from ox_bb_pipeline_tests.bitbucket.test_faults_end_to_end import admin
from ox_bb_pipeline_tests.conftest import ANCHOR, TINY
from ox_bb_sandbox.server import SandboxServer

WS = "acme-payments"
ROUTES = {"info_refs": "/*/*.git/info/refs", "upload_pack": "/*/*.git/git-upload-pack"}
KINDS = ("500", "502", "503", "slow", "drop", "truncate", "401")
SLOW_DELAY = 0.3
VOLATILE = ("extracted_at", "checked_at", "scanned_at", "duration_seconds", "detected_at")
# The cause each persistent fault must be reported with (git's own words for it, kept in the message).
CAUSES = {
    "500": "returned error: 500",
    "502": "returned error: 502",
    "503": "returned error: 503",
    "drop": "Empty reply from server",
    "truncate": ("expected flush", "bytes of body are still expected"),
    "401": "refused the credential",
}
SCANNERS = (SecretsScanner, BanditScanner)  # in-process and one small tool: clone faults do not depend on which
FINDINGS = ("secrets", "bandit", "posture")


def connection_for(kind: str) -> str:
    """401s go to the OAuth connection (it can refresh its token); the rest to the API-token connection."""
    return "sandbox-app" if kind == "401" else "sandbox-token"


@pytest.fixture(scope="module")
def server():
    with SandboxServer(TINY, clock=ManualClock(ANCHOR)) as running:
        yield running


@pytest.fixture(scope="module")
def connections_file(server, tmp_path_factory) -> Path:
    return server.write_connections(tmp_path_factory.mktemp("gitfaults") / "connections.yaml", {"max_retries": 2})


def fired(server) -> int:
    return sum(rule["fired"] for rule in admin(server, "GET", "faults")["faults"])


class HookedGit(GitAccess):
    """GitAccess calling `hook(n)` before its n-th remote command (to expire a token mid-run)."""

    def __init__(self, *args, hook=None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.hook, self.calls = hook, 0

    def run(self, args, *, what, cwd=None, remote=True):
        if remote and self.hook:
            self.calls += 1
            self.hook(self.calls)
        return super().run(args, what=what, cwd=cwd, remote=remote)


def clients(server, path: Path, name: str, hook=None) -> tuple[BitbucketClient, GitAccess]:
    connection = load_connections(path).get(name)
    sleep = lambda seconds: server.clock.advance(seconds)  # noqa: E731 - retries wait in sandbox time only
    client = BitbucketClient(connection, sleep=sleep)
    return client, HookedGit(name, connection.git_url, client.auth.git_credentials, sleep=sleep, hook=hook)


def extract(server, path: Path, home: Path, name: str, *, full_refresh: bool = False, hook=None):
    """One extract pass as the asset runs it (previous rows and state in, every partition written after)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("OX_BB_HOME", str(home))
        client, git = clients(server, path, name, hook)
        previous = {t: lake.read_partition("raw", t, name, home) for t in tables.TABLES}
        store = StateStore(name, home)
        state = store.load()
        report = Extractor(
            client,
            git,
            redact_yml=redact_text,
            previous=previous,
            state=state,
            home=home,
            options=ExtractOptions(full_refresh=full_refresh),
        ).run()
        for table in tables.TABLES:
            lake.write_partition("raw", table, name, report.rows[table], tables.schema(table), home)
        store.save(state)
        return report


def scan(server, path: Path, home: Path, name: str, hook=None):
    """The scan stage as the `scan_findings` asset runs it, with two scanners: snapshots, findings,
    scan_runs, repository_files and posture written to the lake."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("OX_BB_HOME", str(home))
        _, git = clients(server, path, name, hook)
        raw = {t: lake.read_partition("raw", t, name, home) for t in tables.TABLES}
        report = scan_repositories(
            raw["repositories"],
            git,
            scanners=[s() for s in SCANNERS],
            home=home,
            clock=server.clock,
            previous_files=lake.read_partition("inventory", "repository_files", name, home),
        )
        result = posture.evaluate(
            {**raw, "repository_files": report.repository_files}, connection=name, now=server.clock.now()
        )
        report.findings["posture"] = [f.row() for f in result.findings]
        for scanner in FINDINGS:
            lake.write_partition("findings", scanner, name, report.findings.get(scanner, []), FINDING_SCHEMA, home)
        lake.write_partition(lake.SCANS_ZONE, "scan_runs", name, report.scan_runs, SCAN_RUN_SCHEMA, home)
        lake.write_partition(lake.SCANS_ZONE, "posture_results", name, result.results, posture.RESULT_SCHEMA, home)
        lake.write_partition(
            "inventory", "repository_files", name, report.repository_files, REPOSITORY_FILES_SCHEMA, home
        )
        return report


def rows(home: Path, name: str, zone: str, table: str) -> list[str]:
    return sorted(
        json.dumps({k: v for k, v in r.items() if k not in VOLATILE}, sort_keys=True, default=str)
        for r in lake.read_partition(zone, table, name, home)
    )


def raw_snapshot(home: Path, name: str) -> dict[str, list[str]]:
    return {t: rows(home, name, "raw", t) for t in tables.TABLES}


SCAN_TABLES = (
    [("findings", t) for t in FINDINGS]
    + [(lake.SCANS_ZONE, t) for t in ("scan_runs", "posture_results")]
    + [("inventory", "repository_files")]
)


def scan_snapshot(home: Path, name: str) -> dict[str, list[str]]:
    return {f"{zone}/{t}": rows(home, name, zone, t) for zone, t in SCAN_TABLES}


def warehouse(home: Path, now) -> None:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("OX_BB_HOME", str(home))
        build(home, now=now)


def queue(home: Path) -> dict[str, str]:
    with duckdb.connect(str(warehouse_path(home)), read_only=True) as con:
        return dict(con.execute("SELECT finding_id, status FROM findings_queue").fetchall())


@pytest.fixture(scope="module")
def clean(server, connections_file, tmp_path_factory) -> dict:
    """Per connection: a home after a clean extract, scan and warehouse build, with its rows and queue."""
    admin(server, "DELETE", "faults")
    homes = {}
    for name in ("sandbox-token", "sandbox-app"):
        home = tmp_path_factory.mktemp(f"clean-{name}")
        extract(server, connections_file, home, name)
        scan(server, connections_file, home, name)
        warehouse(home, server.clock.now())
        reference = {
            "home": home,
            "raw": raw_snapshot(home, name),
            "scan": scan_snapshot(home, name),
            "queue": queue(home),
        }
        assert reference["raw"]["main_branch_commits"] and reference["raw"]["pipeline_configs"], "no git rows"
        assert reference["scan"]["findings/secrets"] and reference["queue"], "the clean scan found nothing"
        assert not [r for r in reference["scan"]["scans/scan_runs"] if '"status": "error"' in r]
        homes[name] = reference
    return homes


@pytest.fixture(autouse=True)
def quiet_sandbox(server, clean):
    admin(server, "DELETE", "faults")
    yield
    admin(server, "DELETE", "faults")


def home_from(clean: dict, name: str, tmp_path: Path, *, rescan: bool = False) -> Path:
    """A copy of the clean home; `rescan`: without the results cache, so the scan stage clones again
    (as after a scanner upgrade) — a cached commit is never cloned, and a fault would never be met."""
    home = tmp_path / "home"
    shutil.copytree(clean[name]["home"], home, ignore=shutil.ignore_patterns("snapshots", "git"))
    if rescan:
        shutil.rmtree(home / "cache" / "scan")
    return home


def fault(server, route: str, kind: str, times: int) -> None:
    admin(server, "POST", "faults", {"route": ROUTES[route], "kind": kind, "times": times, "delay": SLOW_DELAY})


def assert_cause(kind: str, text: str) -> None:
    causes = CAUSES[kind] if isinstance(CAUSES[kind], tuple) else (CAUSES[kind],)
    assert any(cause in text for cause in causes), text


# -- extract ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("route", list(ROUTES))
def test_extract_a_git_fault_once_is_retried_and_the_rows_are_the_clean_runs(
    server, connections_file, clean, tmp_path, route, kind
):
    name = connection_for(kind)
    home = home_from(clean, name, tmp_path)
    fault(server, route, kind, times=1)

    report = extract(server, connections_file, home, name, full_refresh=True)

    assert fired(server) == 1, "the fault never reached the extract"
    assert report.problems == []
    assert raw_snapshot(home, name) == clean[name]["raw"]


@pytest.mark.parametrize("kind", [k for k in KINDS if k != "slow"])
@pytest.mark.parametrize("route", list(ROUTES))
def test_extract_a_persistent_git_fault_keeps_the_last_rows_names_each_repository_and_a_rerun_converges(
    server, connections_file, clean, tmp_path, route, kind
):
    name = connection_for(kind)
    home = home_from(clean, name, tmp_path)
    expected = clean[name]["raw"]
    repositories = [json.loads(r)["repository"] for r in expected["repositories"]]
    fault(server, route, kind, times=0)

    report = extract(server, connections_file, home, name, full_refresh=True)

    got = raw_snapshot(home, name)
    for table in tables.TABLES:
        if table != "extraction_status":
            assert got[table] == expected[table], f"{table}: not the last run's rows"
    errors = [json.loads(r) for r in got["extraction_status"] if r not in expected["extraction_status"]]
    assert sorted({(e["repository"], e["status"]) for e in errors}) == [(r, "error") for r in sorted(repositories)]
    assert len(report.problems) == len(repositories)
    for repository, problem in zip(sorted(repositories), sorted(report.problems)):
        assert f"connection '{name}'" in problem and f"{WS}/{repository}.git" in problem, problem
        assert_cause(kind, problem)

    admin(server, "DELETE", "faults")
    assert extract(server, connections_file, home, name).problems == []
    assert raw_snapshot(home, name) == expected, "the rerun did not converge to the clean rows"


def test_extract_a_persistent_slow_git_answer_only_makes_the_run_slower(server, connections_file, clean, tmp_path):
    home = home_from(clean, "sandbox-token", tmp_path)
    fault(server, "upload_pack", "slow", times=0)

    assert extract(server, connections_file, home, "sandbox-token", full_refresh=True).problems == []
    assert fired(server) >= 2
    assert raw_snapshot(home, "sandbox-token") == clean["sandbox-token"]["raw"]


def expire_before(call: int, server):
    """A hook expiring the OAuth token (2 h lifetime) just before the `call`-th git command."""
    return lambda n: server.clock.advance(timedelta(hours=3).total_seconds()) if n == call else None


def test_extract_an_oauth_token_expiring_between_git_reads_is_refreshed_and_the_rows_are_the_clean_runs(
    server, connections_file, clean, tmp_path
):
    home = home_from(clean, "sandbox-app", tmp_path)
    before = admin(server, "GET", "stats")["oauth_total"]

    report = extract(server, connections_file, home, "sandbox-app", full_refresh=True, hook=expire_before(2, server))

    assert report.problems == []
    assert admin(server, "GET", "stats")["oauth_total"] > before, "the expired token was never refreshed"
    assert raw_snapshot(home, "sandbox-app") == clean["sandbox-app"]["raw"]


# -- scan stage ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("route", list(ROUTES))
def test_scan_a_git_fault_once_on_a_clone_is_retried_and_every_findings_table_is_the_clean_runs(
    server, connections_file, clean, tmp_path, route, kind
):
    name = connection_for(kind)
    home = home_from(clean, name, tmp_path, rescan=True)
    fault(server, route, kind, times=1)

    report = scan(server, connections_file, home, name)

    assert fired(server) == 1, "the fault never reached a clone"
    assert report.cloned == len([r for r in clean[name]["raw"]["repositories"] if '"selected": true' in r])
    assert scan_snapshot(home, name) == clean[name]["scan"]


@pytest.mark.parametrize("kind", [k for k in KINDS if k != "slow"])
@pytest.mark.parametrize("route", list(ROUTES))
def test_scan_a_persistent_git_fault_records_clone_errors_and_resolves_no_finding(
    server, connections_file, clean, tmp_path, route, kind
):
    name = connection_for(kind)
    home = home_from(clean, name, tmp_path, rescan=True)
    expected = clean[name]["scan"]
    fault(server, route, kind, times=0)

    report = scan(server, connections_file, home, name)

    got = scan_snapshot(home, name)
    assert report.cloned == 0
    for scanner in ("secrets", "bandit"):  # no fresh result, and no rows other than the clean run's
        assert set(got[f"findings/{scanner}"]) <= set(expected[f"findings/{scanner}"])
    runs = [json.loads(r) for r in got["scans/scan_runs"]]
    assert {(r["repository"], r["scanner"]) for r in runs} == {
        (json.loads(r)["repository"], json.loads(r)["scanner"]) for r in expected["scans/scan_runs"]
    }
    assert len(runs) == len(expected["scans/scan_runs"]), "duplicated or missing scan_runs rows"
    for run in runs:
        assert run["status"] == "error", run
        assert run["error"].startswith(f"clone failed: connection '{name}'"), run["error"]
        assert f"{WS}/{run['repository']}.git clone" in run["error"], run["error"]
        assert_cause(kind, run["error"])

    warehouse(home, server.clock.now() + timedelta(minutes=5))
    statuses = queue(home)
    assert set(statuses) == set(clean[name]["queue"]), "the queue lost or gained findings"
    assert not [f for f, s in statuses.items() if s == "resolved"], "a failed clone resolved findings"

    admin(server, "DELETE", "faults")
    scan(server, connections_file, home, name)
    assert scan_snapshot(home, name) == expected, "the rescan did not converge to the clean rows"


def test_scan_an_oauth_token_expiring_between_clones_is_refreshed_and_the_findings_are_the_clean_runs(
    server, connections_file, clean, tmp_path
):
    home = home_from(clean, "sandbox-app", tmp_path, rescan=True)
    before = admin(server, "GET", "stats")["oauth_total"]

    scan(server, connections_file, home, "sandbox-app", hook=expire_before(2, server))

    assert admin(server, "GET", "stats")["oauth_total"] > before, "the expired token was never refreshed"
    assert scan_snapshot(home, "sandbox-app") == clean["sandbox-app"]["scan"]


# -- through Dagster ----------------------------------------------------------------------------------
@pytest.mark.parametrize("times", [1, 0])
def test_the_extract_stage_as_dagster_runs_it_is_ok_after_one_git_fault_and_degraded_naming_the_cause_under_many(
    server, connections_file, clean, tmp_path, monkeypatch, times
):
    """Two cells through `run_stages` (the asset, its resource and run status), not the helpers above; the
    resource's git waits its real retry delays (4 s a repository under the persistent fault)."""
    home = home_from(clean, "sandbox-token", tmp_path)
    monkeypatch.setenv("OX_BB_HOME", str(home))
    monkeypatch.chdir(tmp_path)
    fault(server, "info_refs", "503", times=times)

    [result] = run_stages(
        "extract",
        connections_file,
        "sandbox-token",
        full_refresh=True,
        progress=lambda line: None,
        dagster_instance=DagsterInstance.ephemeral(),
    )

    assert result.success, result.error
    got, expected = raw_snapshot(home, "sandbox-token"), clean["sandbox-token"]["raw"]
    assert {t: r for t, r in got.items() if t != "extraction_status"} == {
        t: r for t, r in expected.items() if t != "extraction_status"
    }
    if times == 1:
        assert (result.status, got["extraction_status"]) == ("ok", expected["extraction_status"])
        return
    assert result.status == "degraded"
    assert result.first_errors, "a degraded stage must say why"
    for error in result.first_errors:
        assert "connection 'sandbox-token'" in error and f"{WS}/" in error and "returned error: 503" in error, error
