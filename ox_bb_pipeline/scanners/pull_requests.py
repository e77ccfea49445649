"""Pull-request scans: the findings a pull request introduces, written back to Bitbucket.

For one open pull request: fetch its source and destination branches into a scratch repository, take the
merge base, check out only the files the pull request changes (plus the manifests, lock files and IaC files
of the directories it touches, so SCA and checkov judge them as in the whole repository) at the source commit
and at the merge base, and run every code scanner once over both. "Introduced" = a fingerprint present at the
source and absent at the base (findings.py: line numbers and commits are not part of it).

Written back: one Code Insights report on the source commit (stable id, PASSED/FAILED against the
connection's severity threshold, counts as data fields) with an annotation per introduced finding, and one
pull-request comment, found again by its marker and edited on later pushes, never posted twice. Never a
secret value: annotations and the comment carry titles, rules and masked previews only. A dry run or an
opted-out repository writes nothing to Bitbucket. Results go to the lake: `findings/pull_requests` (the
finding schema; `commit` is the source commit) and `scans/pull_request_scans` (one row per pull request
and source commit).
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path, PurePosixPath

from .. import lake
from ..bitbucket.errors import BitbucketError, NotFoundError
from ..bitbucket.git import GitAccess
from ..clock import Clock, SystemClock
from ..config import PullRequestScans
from ..findings import FINDING_SCHEMA, SEVERITIES, Finding, RepoRef
from ..locks import home_lock, private_workdir
from ..redaction import adopt_salt
from . import code_context
from .base import CodeScanner
from .lake_tables import PULL_REQUEST_FINDINGS_TABLE, PULL_REQUEST_SCAN_SCHEMA, PULL_REQUEST_SCANS_TABLE
from .sca.manifests import format_of
from .snapshot import Snapshot, SnapshotLimits, walk

log = logging.getLogger(__name__)

REPORT_ID = "ox-bb-pull-request-scan"  # stable: a later scan of the same commit replaces the report
COMMENT_MARKER = "[//]: # (ox-bb-pull-request-scan)"  # a Markdown comment: invisible, found again by us
ANNOTATION_SEVERITY = {"critical": "CRITICAL", "high": "HIGH", "medium": "MEDIUM", "low": "LOW", "info": "LOW"}
ANNOTATIONS_PER_REQUEST = 100  # Bitbucket's limit per bulk request
ANNOTATIONS_PER_REPORT = 1000  # and per report
COMMENT_LINES = 25
IAC_SUFFIXES = (".tf", ".tfvars", ".tf.json", ".hcl", ".bicep")


@dataclass(frozen=True)
class PullRequest:
    """An open pull request as Bitbucket describes it (commit hashes may be abbreviated)."""

    workspace: str
    repository: str
    repository_uuid: str
    id: int
    title: str
    source_branch: str
    source_commit: str
    destination_branch: str
    destination_commit: str

    @classmethod
    def from_json(cls, workspace: str, repository: str, body: dict) -> PullRequest:
        source, destination = body.get("source") or {}, body.get("destination") or {}
        if source.get("repository", {}).get("uuid") != destination.get("repository", {}).get("uuid"):
            raise ValueError(
                f"pull request {workspace}/{repository}#{body.get('id')} comes from a fork; "
                "only pull requests between branches of one repository are scanned"
            )
        return cls(
            workspace=workspace,
            repository=repository,
            repository_uuid=destination["repository"]["uuid"],
            id=int(body["id"]),
            title=body.get("title") or "",
            source_branch=source["branch"]["name"],
            source_commit=source["commit"]["hash"],
            destination_branch=destination["branch"]["name"],
            destination_commit=destination["commit"]["hash"],
        )

    @property
    def key(self) -> str:
        return f"{self.workspace}/{self.repository}#{self.id}"

    @property
    def api_path(self) -> str:
        return f"/repositories/{self.workspace}/{self.repository}/pullrequests/{self.id}"


def get_pull_request(client, workspace: str, repository: str, pull_request_id: int) -> PullRequest:
    body = client.get_json(f"/repositories/{workspace}/{repository}/pullrequests/{int(pull_request_id)}")
    if body.get("state") != "OPEN":
        raise ValueError(f"pull request {workspace}/{repository}#{pull_request_id} is {body.get('state')}, not OPEN")
    return PullRequest.from_json(workspace, repository, body)


# -- what the pull request changes ------------------------------------------------------------------
@dataclass
class Change:
    source: str  # full commit hashes
    destination: str
    merge_base: str
    changed: list[str]  # files added or modified at the source (deleted ones have nothing to scan)
    lines: dict[str, set[int]]  # path -> lines added or modified at the source
    scan_paths: list[str]  # the changed files and the manifests / IaC files beside them


def fetch_change(git: GitAccess, pr: PullRequest, repo: Path) -> Change:
    """Fetch both branches into the scratch repository `repo` and work out what the pull request changes."""
    git.run(["init", "--quiet", "--bare", "--template=", str(repo)], what="git init", remote=False)
    where = f"{pr.workspace}/{pr.repository}.git"
    git.run(
        [
            "--git-dir",
            str(repo),
            "fetch",
            "--quiet",
            "--no-tags",
            "--no-recurse-submodules",
            git.remote_url(pr.workspace, pr.repository),
            f"+refs/heads/{pr.source_branch}:refs/ox/source",
            f"+refs/heads/{pr.destination_branch}:refs/ox/destination",
        ],
        what=f"{where} fetch",
    )

    def local(*args: str, what: str) -> str:
        return git.run(["--git-dir", str(repo), "-c", "core.quotePath=false", *args], what=what, remote=False)

    def commit(wanted: str, ref: str) -> str:
        try:  # the commit Bitbucket names; the branch head when the branch moved past it (or it was rewritten)
            return local("rev-parse", "--verify", "--quiet", f"{wanted}^{{commit}}", what=f"{where} rev-parse").strip()
        except BitbucketError:
            return local("rev-parse", ref, what=f"{where} rev-parse").strip()

    source, destination = (
        commit(pr.source_commit, "refs/ox/source"),
        commit(pr.destination_commit, "refs/ox/destination"),
    )
    try:
        base = local("merge-base", source, destination, what=f"{where} merge-base").strip()
    except BitbucketError as exc:
        raise ValueError(f"pull request {pr.key}: its branches share no history (no merge base)") from exc
    status = local("diff", "--no-renames", "--name-status", "-z", base, source, what=f"{where} diff").split("\0")
    changed = [path for kind, path in zip(status[::2], status[1::2]) if kind and kind[0] in "AMT"]
    lines = _added_lines(local("diff", "--no-renames", "--no-color", "-U0", base, source, what=f"{where} diff"))
    files = [p for p in local("ls-tree", "-r", "-z", "--name-only", source, what=f"{where} ls-tree").split("\0") if p]
    return Change(source, destination, base, changed, lines, companions(changed, files))


def _added_lines(diff: str) -> dict[str, set[int]]:
    lines: dict[str, set[int]] = {}
    path, in_header = None, False  # headers run from "diff --git" to the first hunk: an added "++ x" is no header
    for line in diff.splitlines():
        if line.startswith("diff --git "):
            path, in_header = None, True
        elif in_header and line.startswith("+++ "):
            target = line[4:].strip('"')
            path = target[2:] if target.startswith("b/") else None
        elif line.startswith("@@ "):
            in_header = False
            if path is None:
                continue
            added = line.split("+", 1)[1].split(" ", 1)[0]
            start, _, count = added.partition(",")
            lines.setdefault(path, set()).update(range(int(start), int(start) + int(count or 1)))
    return lines


def _iac(path: str) -> bool:
    return path.endswith(IAC_SUFFIXES)


def companions(changed: list[str], files: list[str]) -> list[str]:
    """The changed files, plus every manifest or lock file in a directory where a manifest changed and every
    IaC file in a directory where one changed: a lock file is read with its manifest, a Terraform module whole."""
    folders = {"manifest": set(), "iac": set()}
    for path in changed:
        kind = "manifest" if format_of(path) else "iac" if _iac(path) else None
        if kind:
            folders[kind].add(str(PurePosixPath(path).parent))
    extra = [
        path
        for path in files
        if (format_of(path) and str(PurePosixPath(path).parent) in folders["manifest"])
        or (_iac(path) and str(PurePosixPath(path).parent) in folders["iac"])
    ]
    return sorted(set(changed) | set(extra))


def checkout(git: GitAccess, repo: Path, ref: RepoRef, paths: list[str], target: Path, limits: SnapshotLimits):
    """Those of `paths` that exist at `ref.commit`, written under `target` with the snapshot's safety rules
    (symlinks as plain files, no hooks; oversized and binary files skipped and removed)."""
    target.mkdir(parents=True)
    listed = git.run(
        ["--git-dir", str(repo), "ls-tree", "-r", "-z", "--name-only", ref.commit], what="git ls-tree", remote=False
    )
    present = sorted(set(paths) & {p for p in listed.split("\0") if p})
    if present:
        spec = target.parent / f"{target.name}.paths"
        spec.write_bytes(b"\0".join(p.encode() for p in present))
        try:
            git.run(
                [
                    "--git-dir",
                    str(repo),
                    "--work-tree",
                    str(target),
                    "-c",
                    "core.symlinks=false",
                    "-c",
                    "core.protectNTFS=true",
                    "-c",
                    "core.protectHFS=true",
                    "checkout",
                    "--quiet",
                    ref.commit,
                    f"--pathspec-from-file={spec}",
                    "--pathspec-file-nul",
                ],
                what=f"{ref.workspace}/{ref.repository} checkout",
                remote=False,
            )
        finally:
            spec.unlink(missing_ok=True)
    files, skipped, total = walk(target, limits)
    for path in skipped:
        (target / path).unlink(missing_ok=True)
    return Snapshot(repo=ref, root=target, files=files, skipped=skipped, bytes_total=total)


# -- the scan ------------------------------------------------------------------------------------
@dataclass
class PullRequestScan:
    connection: str
    pull_request: PullRequest
    settings: PullRequestScans
    change: Change | None = None
    introduced: list[Finding] = field(default_factory=list)
    resolved: int = 0  # findings at the base that the source no longer has, in the files scanned
    scanned_files: int = 0
    errors: list[str] = field(default_factory=list)  # "<scanner>: <error>"
    skipped: str | None = None  # why nothing was scanned (opt-out)
    written: list[str] = field(default_factory=list)  # what was written to Bitbucket (or would be: dry run)
    dry_run: bool = False
    seconds: float = 0.0
    scanned_at: datetime | None = None

    @property
    def failing(self) -> list[Finding]:
        threshold = SEVERITIES.index(self.settings.severity_threshold)
        return [f for f in self.introduced if SEVERITIES.index(f.base_severity) >= threshold]

    @property
    def result(self) -> str:
        return "FAILED" if self.failing else "PASSED"

    def counts(self) -> dict[str, int]:
        return {s: sum(f.base_severity == s for f in self.introduced) for s in reversed(SEVERITIES)}

    def summary(self) -> str:
        if self.skipped:
            return f"{self.pull_request.key}: not scanned ({self.skipped})"
        counts = ", ".join(f"{n} {s}" for s, n in self.counts().items() if n) or "none"
        return (
            f"{self.pull_request.key} at {self.change.source[:12]}: {self.result}, {len(self.introduced)} "
            f"introduced ({counts}), {self.resolved} resolved, {len(self.change.changed)} changed file(s), "
            f"{self.scanned_files} scanned" + (f"; scanner errors: {'; '.join(self.errors)}" if self.errors else "")
        )


def scan_pull_request(
    connection: str,
    client,
    git: GitAccess,
    pr: PullRequest,
    settings: PullRequestScans,
    *,
    scanners: list[CodeScanner] | None = None,
    dry_run: bool = False,
    home: Path,
    tools: Path | None = None,
    clock: Clock | None = None,
    limits: SnapshotLimits | None = None,
) -> PullRequestScan:
    """Scan one pull request, write the report and comment (unless a dry run) and record it in the lake."""
    from .stage import default_scanners  # the stage imports the tools' modules lazily; so do we

    started = time.perf_counter()
    adopt_salt(home)  # a home from before the state dir hands its salt over before any scanner hashes
    scan = PullRequestScan(connection, pr, settings, dry_run=dry_run or settings.dry_run)
    scan.scanned_at = (clock or SystemClock()).now()
    if settings.opted_out(pr.workspace, pr.repository):
        scan.skipped = f"{pr.workspace}/{pr.repository} is excluded by pull_request_scans.exclude"
        return scan
    scanners = scanners if scanners is not None else default_scanners(tools)
    limits = limits or SnapshotLimits()
    with private_workdir(home / "cache" / "pull_requests") as workdir:  # raw content: removed at the end
        scan.change = change = fetch_change(git, pr, workdir / "git")
        refs = [
            RepoRef(connection, pr.workspace, pr.repository_uuid, pr.repository, commit)
            for commit in (change.source, change.merge_base)
        ]
        source, base = [
            checkout(git, workdir / "git", ref, change.scan_paths, workdir / name, limits)
            for ref, name in zip(refs, ("source", "base"))
        ]
        scan.scanned_files = len(source.files)
        at_source, at_base = _findings(scanners, [source, base], scan.errors)
        shutil.rmtree(workdir / "git", ignore_errors=True)
    base_ids = {f.finding_id for f in at_base}
    source_ids = {f.finding_id for f in at_source}
    scan.introduced = sorted(
        {f.finding_id: f for f in at_source if f.finding_id not in base_ids}.values(),
        key=lambda f: (-SEVERITIES.index(f.base_severity), f.file_path or "", f.start_line or 0, f.rule_id),
    )
    scan.resolved = len(base_ids - source_ids)
    for finding in scan.introduced:
        finding.scanned_at = scan.scanned_at
    scan.written = publish(client, scan, write=not scan.dry_run)
    scan.seconds = time.perf_counter() - started
    record(scan, home)
    return scan


def _findings(scanners: list[CodeScanner], snapshots: list[Snapshot], errors: list[str]) -> list[list[Finding]]:
    """Every scanner over both checkouts at once (one tool start each), side by side: a pull request's latency is
    the tools' start-up (semgrep and checkov ~15 s each), not their work. A failing scanner is an error line."""

    def scan(scanner: CodeScanner):
        try:
            return scanner.scan(snapshots)
        except Exception as exc:  # one scanner's bug leaves the others' results
            log.exception("%s failed on a pull request", scanner.name)
            return exc

    found: list[list[Finding]] = [[] for _ in snapshots]
    with ThreadPoolExecutor(max_workers=max(1, len(scanners))) as pool:
        results = list(pool.map(scan, scanners))
    for scanner, outputs in zip(scanners, results):
        if isinstance(outputs, Exception):
            errors.append(f"{scanner.name}: {type(outputs).__name__}: {outputs}")
            continue
        for index, (snapshot, output) in enumerate(zip(snapshots, outputs)):
            if output.error:
                errors.append(f"{scanner.name}: {output.error}")
                continue
            code_context.mark(output.findings, snapshot)
            found[index] += output.findings
    return found


# -- written back to Bitbucket --------------------------------------------------------------------
def report_body(scan: PullRequestScan) -> dict:
    counts = scan.counts()
    data = [
        {"title": "Introduced findings", "type": "NUMBER", "value": len(scan.introduced)},
        *({"title": severity.capitalize(), "type": "NUMBER", "value": n} for severity, n in counts.items()),
        {"title": "Resolved findings", "type": "NUMBER", "value": scan.resolved},
        {"title": "Files scanned", "type": "NUMBER", "value": scan.scanned_files},
        {"title": "Fails at", "type": "TEXT", "value": scan.settings.severity_threshold},
    ]
    if scan.errors:
        data.append({"title": "Scanners failed", "type": "NUMBER", "value": len(scan.errors)})
    details = (
        f"{len(scan.introduced)} finding(s) introduced by this pull request, {len(scan.failing)} at or above "
        f"{scan.settings.severity_threshold}."
    )
    if scan.errors:
        details += f" Incomplete: {len(scan.errors)} scanner run(s) failed; see the pipeline's logs."
    return {
        "title": "ox-bb security scan",
        "details": details,
        "report_type": "SECURITY",
        "reporter": "ox-bb-pipeline",
        "result": scan.result,
        "data": data,
    }


def _safe_detail(finding: Finding) -> str:
    """What an annotation or the comment may say about a finding: never its evidence, except a secret's
    masked preview (other scanners' evidence is a code snippet, which may hold a secret of its own)."""
    parts = [finding.rule_id]
    if finding.category == "secrets" and finding.evidence:
        parts.append(finding.evidence)
    if finding.package:
        parts.append(
            f"{finding.package} {finding.version or ''}".strip()
            + (f", fixed in {finding.fixed_version}" if finding.fixed_version else "")
        )
    if finding.cwe:
        parts.append(finding.cwe)
    return " · ".join(parts)


def annotations(scan: PullRequestScan) -> list[dict]:
    changed = scan.change.lines if scan.change else {}
    result = []
    for finding in scan.introduced[:ANNOTATIONS_PER_REPORT]:
        line = finding.start_line
        if line and finding.file_path in changed and line not in changed[finding.file_path]:
            # a finding the change caused on an untouched line: shown at the nearest changed line
            line = min(changed[finding.file_path], key=lambda n: abs(n - finding.start_line))
        result.append(
            {
                "external_id": finding.finding_id,
                "annotation_type": "VULNERABILITY",
                "summary": finding.title[:450],
                "details": (_safe_detail(finding) + (f"\n{finding.remediation}" if finding.remediation else ""))[:2000],
                "path": finding.file_path,
                "line": line,
                "severity": ANNOTATION_SEVERITY[finding.base_severity],
            }
        )
    return result


def comment_text(scan: PullRequestScan) -> str:
    counts = ", ".join(f"{n} {s}" for s, n in scan.counts().items() if n)
    icon = "❌" if scan.result == "FAILED" else "✅"
    lines = [
        f"**ox-bb security scan: {icon} {scan.result}** at `{scan.change.source[:12]}`",
        "",
        f"{len(scan.introduced)} finding(s) introduced"
        + (f" ({counts})" if counts else "")
        + f", {scan.resolved} resolved; the report fails at {scan.settings.severity_threshold} and above.",
    ]
    if scan.introduced:
        lines.append("")
        for finding in scan.introduced[:COMMENT_LINES]:
            where = f"{finding.file_path}:{finding.start_line}" if finding.start_line else finding.file_path
            lines.append(f"- **{finding.base_severity.upper()}** {finding.title} — `{where}` ({_safe_detail(finding)})")
        if len(scan.introduced) > COMMENT_LINES:
            lines.append(f"- … and {len(scan.introduced) - COMMENT_LINES} more in the Code Insights report")
    if scan.errors:
        lines += ["", f"Incomplete: {len(scan.errors)} scanner run(s) failed."]
    lines += ["", COMMENT_MARKER]
    return "\n".join(lines)


def own_comment(client, pr: PullRequest) -> dict | None:
    """Our comment on the pull request (the one with the marker), if we wrote one before."""
    for comment in client.paginate(f"{pr.api_path}/comments", pagelen=100):
        if not comment.get("deleted") and COMMENT_MARKER in ((comment.get("content") or {}).get("raw") or ""):
            return comment
    return None


def publish(client, scan: PullRequestScan, *, write: bool) -> list[str]:
    """Write (or, with write=False, only describe) the report, its annotations and the comment."""
    pr, change = scan.pull_request, scan.change
    report = f"/repositories/{pr.workspace}/{pr.repository}/commit/{change.source}/reports/{REPORT_ID}"
    notes = annotations(scan)
    done = [f"PUT {report} ({scan.result})"]
    if write:
        client.send_json("PUT", report, report_body(scan))
    for start in range(0, len(notes), ANNOTATIONS_PER_REQUEST):
        batch = notes[start : start + ANNOTATIONS_PER_REQUEST]
        done.append(f"POST {report}/annotations ({len(batch)} annotation(s))")
        if write:
            client.send_json("POST", f"{report}/annotations", batch)
    if not write:
        done.append(f"PUT or POST {pr.api_path}/comments (the comment with marker {COMMENT_MARKER!r})")
        return done
    text = comment_text(scan)
    existing = own_comment(client, pr)
    if existing is None:
        created = client.send_json("POST", f"{pr.api_path}/comments", {"content": {"raw": text}})
        done.append(f"POST {pr.api_path}/comments (comment {created.get('id')})")
    elif existing["content"]["raw"] != text:
        client.send_json("PUT", f"{pr.api_path}/comments/{existing['id']}", {"content": {"raw": text}})
        done.append(f"PUT {pr.api_path}/comments/{existing['id']}")
    else:
        done.append(f"comment {existing['id']} already up to date")
    return done


# -- the lake ------------------------------------------------------------------------------------
def scan_row(scan: PullRequestScan) -> dict:
    pr, change = scan.pull_request, scan.change
    return {
        "connection": scan.connection,
        "workspace": pr.workspace,
        "repository_uuid": pr.repository_uuid,
        "repository": pr.repository,
        "pull_request_id": pr.id,
        "title": pr.title,
        "source_branch": pr.source_branch,
        "destination_branch": pr.destination_branch,
        "source_commit": change.source,
        "destination_commit": change.destination,
        "merge_base": change.merge_base,
        "changed_files": len(change.changed),
        "scanned_files": scan.scanned_files,
        "introduced": len(scan.introduced),
        "resolved": scan.resolved,
        "severity_threshold": scan.settings.severity_threshold,
        "result": scan.result,
        "scanner_errors": scan.errors,
        "written_to_bitbucket": not scan.dry_run,
        "duration_seconds": scan.seconds,
        "scanned_at": scan.scanned_at,
    }


def record(scan: PullRequestScan, home: Path) -> None:
    """Replace this pull request's rows for its source commit in both lake tables (earlier pushes stay:
    the mart reads the latest scan of each pull request). One writer per connection at a time."""
    pr, change = scan.pull_request, scan.change
    lock = home / "cache" / "locks" / f"pull-requests-{scan.connection}.lock"
    with home_lock(lock, home, f"pull-request scan of {pr.key}"):
        runs = [
            r
            for r in lake.read_partition(lake.SCANS_ZONE, PULL_REQUEST_SCANS_TABLE, scan.connection, home)
            if (r["repository_uuid"], r["pull_request_id"], r["source_commit"])
            != (pr.repository_uuid, pr.id, change.source)
        ]
        lake.write_partition(
            lake.SCANS_ZONE,
            PULL_REQUEST_SCANS_TABLE,
            scan.connection,
            [*runs, scan_row(scan)],
            PULL_REQUEST_SCAN_SCHEMA,
            home,
        )
        rows = [
            r
            for r in lake.read_partition("findings", PULL_REQUEST_FINDINGS_TABLE, scan.connection, home)
            if (r["repository_uuid"], r["commit"]) != (pr.repository_uuid, change.source)
        ]
        rows += [f.row() for f in scan.introduced]
        lake.write_partition("findings", PULL_REQUEST_FINDINGS_TABLE, scan.connection, rows, FINDING_SCHEMA, home)


def last_scanned(connection: str, home: Path) -> dict[str, str]:
    """`workspace/repository#id` -> the source commit of its latest scan (from the lake)."""
    latest: dict[str, dict] = {}
    for row in lake.read_partition(lake.SCANS_ZONE, PULL_REQUEST_SCANS_TABLE, connection, home):
        key = f"{row['workspace']}/{row['repository']}#{row['pull_request_id']}"
        if key not in latest or row["scanned_at"] > latest[key]["scanned_at"]:
            latest[key] = row
    return {key: row["source_commit"] for key, row in latest.items()}


def pull_requests_to_scan(
    connection: str, rows: list[dict], settings: PullRequestScans, scanned: dict[str, str]
) -> list[dict]:
    """The open pull requests of the extract's `pull_requests` rows whose source commit moved since their last
    scan (`scanned`: key -> commit, full or abbreviated), minus opted-out repositories. Costs no request."""
    wanted = []
    for row in rows:
        if row.get("state") != "OPEN" or not row.get("source_commit"):
            continue
        if settings.opted_out(row["workspace"], row["repository"]):
            continue
        key = f"{row['workspace']}/{row['repository']}#{row['pr_id']}"
        last = scanned.get(key) or ""
        if last and (last.startswith(row["source_commit"]) or row["source_commit"].startswith(last)):
            continue
        wanted.append({**row, "key": key})
    return wanted


def scan_by_id(
    connection,
    client,
    git: GitAccess,
    workspace: str,
    repository: str,
    pull_request_id: int,
    *,
    home: Path,
    tools: Path | None = None,
    dry_run: bool = False,
    scanners: list[CodeScanner] | None = None,
    progress: Callable[[str], None] | None = None,
) -> PullRequestScan:
    """`ox-bb scan-pr` and the Dagster job: look the pull request up, then scan it."""
    settings = connection.pull_request_scans
    if settings.opted_out(workspace, repository):  # opted out: not even a request
        pr = PullRequest(workspace, repository, "", int(pull_request_id), "", "", "", "", "")
        return scan_pull_request(connection.name, client, git, pr, settings, dry_run=dry_run, home=home, tools=tools)
    try:
        pr = get_pull_request(client, workspace, repository, pull_request_id)
    except NotFoundError as exc:
        raise ValueError(
            f"connection '{connection.name}' sees no pull request {workspace}/{repository}#{pull_request_id}; "
            "check the repository and id (and that the credential may read pull requests)"
        ) from exc
    if progress:
        progress(f"scanning {pr.key} ({pr.source_branch} -> {pr.destination_branch})")
    return scan_pull_request(
        connection.name, client, git, pr, settings, scanners=scanners, dry_run=dry_run, home=home, tools=tools
    )
