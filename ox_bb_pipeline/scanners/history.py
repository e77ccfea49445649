"""Secrets in git history: every commit reachable from the main and long-lived branches, scanned once with the
tip scan's detectors and filters, then only the new commits; secrets no longer at the tip are reported as
`secret_in_history` findings (they stay in every clone until the credential is rotated).

History is read as a stream (`git rev-list`, then `git log -p` of exactly those commits, no checkout), and only
the lines each commit adds are scanned. Which commits were read, and the candidates found so far (masked and
hashed, never a value), are kept per repository in a cursor under OX_BB_HOME/cache/history, written atomically:
the next run reads only commits that are not ancestors of the ones read. A run stops at a commit boundary once
`max_commits` or `max_bytes` is reached; the rest waits for the next run (`commits_pending`).

Live checks (opt-in, bitbucket/live.py) run here, while a candidate's value is in memory, once per candidate.
"""

from __future__ import annotations

import fnmatch
import functools
import json
import logging
import os
import re
import shutil
import subprocess
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from pathlib import Path, PurePosixPath

from ..bitbucket.git import GitAccess
from ..bitbucket.live import LiveChecker
from ..clock import Clock, SystemClock
from ..files import atomic_write_text
from ..findings import Finding, RepoRef
from ..locks import private_workdir
from ..redaction import salted_hash
from . import secrets as tip
from .base import rules_digest
from .secrets_lines import scan_files
from .snapshot import SnapshotLimits

log = logging.getLogger(__name__)

SCANNER = "git_history"
RULE = "secret_in_history"
CURSOR_FORMAT = 1
PROGRESS_EVERY = 1_000
COMMIT_MARK = b"\x00"  # starts our --format line: no diff line can start with it (each has a prefix character)
READ_SIZE = 1 << 20
HUNK = re.compile(rb"^@@ -\S+ \+(\d+)(?:,\d+)? @@")
# a hunk's header line; an added line without its `+` (a literal start: sre jumps from one to the next)
_HUNK_HEAD = re.compile(rb"\n(@@ [^\n]*)")
_ADDED = re.compile(rb"\n\+([^\n]*)")
# What str.splitlines() also breaks on: replaced in added lines so their numbering stays one text per line
LINE_BREAKS = re.compile("[\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")
# the same characters in UTF-8 (a lead byte is never a continuation: these bytes always decode to them)
_LINE_BREAK_BYTES = (b"\r", b"\x0b", b"\x0c", b"\x1c", b"\x1d", b"\x1e", b"\xc2\x85", b"\xe2\x80\xa8", b"\xe2\x80\xa9")
MAX_FILE_BYTES = SnapshotLimits().max_file_bytes  # the tip scan's per-file cap (snapshot.walk skips larger files)


@dataclass(frozen=True)
class HistoryLimits:
    max_commits: int = 5_000  # commits read per repository and run
    max_bytes: int = 512 * 1024 * 1024  # bytes of `git log -p` read per repository and run
    branches: tuple[str, ...] = ()  # long-lived branches besides the main branch (fnmatch globs)


@dataclass
class HistoryResult:
    repo: RepoRef
    findings: list[Finding] = field(default_factory=list)
    commits_scanned: int = 0  # this run
    commits_total: int = 0  # ever, by the cursor
    commits_pending: int = 0  # reachable but left for the next run (a limit was reached)
    bytes_read: int = 0
    candidates: int = 0  # distinct secrets ever added in the history (at the tip or not)
    live_checks: int = 0
    error: str | None = None

    def progress_line(self) -> str:
        return (
            f"history {self.repo.workspace}/{self.repo.repository}: {self.commits_scanned} new commits"
            f" ({self.bytes_read / 1e6:.1f} MB), {self.commits_pending} pending, {len(self.findings)} secrets"
            " only in history"
        )


@lru_cache(maxsize=1)
def scanner_version() -> str:
    """The tip scanner's version (same detectors, filters and severities) + this module."""
    return f"{tip.scanner_version()}+history.{rules_digest(Path(__file__))}"


def mask_person(name: str, email: str) -> str:
    """An author as personal data is shown elsewhere: initials and the e-mail's domain, e.g. `J. D. <…@example.com>`."""
    initials = " ".join(f"{part[0]}." for part in name.split() if part[:1].isalpha())
    domain = email.rpartition("@")[2] if "@" in email else ""
    return f"{initials or '?'} <…@{domain}>" if domain else initials or "?"


class HistoryCursor:
    """Per repository: the commits read (ancestor-closed), and the candidates found, without values."""

    def __init__(self, root: Path, repo: RepoRef) -> None:
        self.path = Path(root) / repo.connection / f"{repo.repository_uuid.strip('{}')}.json"
        self.scanned: list[str] = []
        self.candidates: dict[str, dict] = {}  # tip fingerprint -> candidate (finding fields, no value)

    def load(self, version: str) -> HistoryCursor:
        try:
            saved = json.loads(self.path.read_text())
        except (FileNotFoundError, ValueError):
            return self
        if saved.get("format") == CURSOR_FORMAT and saved.get("version") == version:
            self.scanned = list(saved.get("scanned", []))
            self.candidates = dict(saved.get("candidates", {}))
        return self  # other detectors or filters: the whole history is read again

    def save(self, version: str) -> None:
        data = {"format": CURSOR_FORMAT, "version": version, "scanned": self.scanned, "candidates": self.candidates}
        atomic_write_text(self.path, json.dumps(data, default=str))


class _AddedLines:
    """The lines one commit adds to one file, numbered 1…n, in the shape the tip scanner's `_findings` reads."""

    def __init__(self, repo: RepoRef, text: str) -> None:
        self.repo = repo
        self._text = text

    def read_text(self, path: str) -> str:
        return self._text


def pending_commits(git_dir: Path, refs: list[str], scanned: Iterable[str]) -> list[str]:
    """Commits reachable from `refs` and not from any commit read before, parents first (so any prefix is
    closed under ancestry, and a cursor cut at a limit is still exact)."""
    lines = [*refs, *(f"^{sha}" for sha in scanned)]
    out = subprocess.run(
        ["git", "--git-dir", str(git_dir), "rev-list", "--reverse", "--topo-order", "--stdin"],
        input="\n".join(lines) + "\n",
        capture_output=True,
        text=True,
        check=True,
        env=_git_env(),
    ).stdout
    return out.split()


def _git_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update({"LC_ALL": "C", "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull})
    return env


def scan_history(
    git_dir: Path,
    repo: RepoRef,
    refs: list[str],
    tip_finding_ids: set[str],
    cursor_root: Path,
    *,
    limits: HistoryLimits | None = None,
    live_check: Callable[..., tuple[str | None, datetime | None]] | None = None,
    clock: Clock | None = None,
    progress: Callable[[str], None] | None = None,
) -> HistoryResult:
    """Read the commits of `refs` not read before from the repository at `git_dir` (a full clone, bare or
    not), update the cursor and return the `secret_in_history` findings: every candidate ever found whose
    tip finding (same rule, path and secret) is not in `tip_finding_ids`. `live_check(rule, value, workspace,
    repository, pair=…)` is called once per new Bitbucket-credential candidate (None: no checks)."""
    limits = limits or HistoryLimits()
    clock = clock or SystemClock()
    version = scanner_version()
    cursor = HistoryCursor(cursor_root, repo).load(version)
    result = HistoryResult(repo)
    todo = pending_commits(git_dir, refs, cursor.scanned)
    chosen = todo[: limits.max_commits]
    now = clock.now()
    done: list[str] = []
    if chosen:
        done, result.bytes_read = _read_commits(
            git_dir, repo, chosen, cursor, limits, live_check, result, now, progress
        )
    cursor.scanned += done
    result.commits_scanned = len(done)
    result.commits_pending = len(todo) - len(done)
    result.commits_total = len(cursor.scanned)
    cursor.save(version)
    result.candidates = len(cursor.candidates)
    result.findings = [
        _history_finding(repo, tip_id, candidate, now)
        for tip_id, candidate in sorted(cursor.candidates.items(), key=lambda item: item[1]["order"])
        if tip_id not in tip_finding_ids
    ]
    if progress:
        progress(result.progress_line())
    return result


def log_command(git_dir: Path) -> list[str]:
    """`git log -p` of the commits given on stdin, in that order: changed lines without context, no deleted
    files, renames, colour or conversion, each commit opened by our COMMIT_MARK line."""
    return [
        "git",
        "--git-dir",
        str(git_dir),
        "-c",
        "core.quotePath=false",
        "log",
        "--no-walk=unsorted",
        "--stdin",
        "-p",
        "--unified=0",
        "--no-color",
        "--no-ext-diff",
        "--no-textconv",
        "--no-renames",
        "--diff-filter=d",  # a deleted file adds nothing
        "--format=%x00%H%x1f%an%x1f%ae",  # %x00: COMMIT_MARK (a NUL cannot be passed in argv)
    ]


def _read_commits(
    git_dir, repo, chosen, cursor, limits, live_check, result, now, progress=None
) -> tuple[list[str], int]:
    """Stream `git log -p` of `chosen` (in that order); scan each commit's added lines. Returns the commits
    read completely and the bytes read; stops at a commit boundary past `max_bytes`. A progress line every
    PROGRESS_EVERY commits."""
    done: list[str] = []
    read = 0
    stopped = False
    previous = ""
    with tip._engine():
        tip.secrets_filters.REMOVED.clear()
        proc = subprocess.Popen(
            log_command(git_dir),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=_git_env(),
        )
        try:
            proc.stdin.write(("\n".join(chosen) + "\n").encode())
            proc.stdin.close()
            # git prints the commits in the order given, and leaves out those with nothing to show (merges,
            # deletions only): every commit before the one being read is done
            position = {sha: index for index, sha in enumerate(chosen)}
            skipped = functools.cache(tip.skipped_by_name)  # the same paths in commit after commit
            for chunk in _commit_chunks(proc.stdout):
                mark = chunk[: chunk.find(b"\n") + 1 or len(chunk)]
                sha, author = _commit_header(mark)
                if previous:
                    if read >= limits.max_bytes:
                        stopped = True
                        done = chosen[: position[sha]]
                        read += len(mark)
                        break
                    if progress and position[sha] // PROGRESS_EVERY > position[previous] // PROGRESS_EVERY:
                        progress(
                            f"history {repo.workspace}/{repo.repository}: {position[sha]}/{len(chosen)} commits,"
                            f" {(read + len(mark)) / 1e6:.1f} MB"
                        )
                read += len(chunk)
                previous = sha
                _scan_commit(sha, author, _added_lines(chunk, skipped), repo, cursor, live_check, result, now)
            if not stopped:
                done = list(chosen)
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
    if proc.returncode != 0 and not stopped:
        # nothing of this run counts as read (the cursor stays where it was)
        raise RuntimeError(f"git log -p failed (exit {proc.returncode}) on {repo.workspace}/{repo.repository}")
    return done, read


def _commit_chunks(stream, size: int = READ_SIZE) -> Iterator[bytes]:
    """The stream of `git log -p` cut into commits: each chunk from a COMMIT_MARK to the next. Read in large
    blocks (a line at a time costs more than git takes to write it); one commit at a time is held."""
    pieces: list[bytes] = []
    while block := stream.read(size):
        start = 0
        if block[:1] == COMMIT_MARK and pieces and pieces[-1][-1:] == b"\n":
            yield b"".join(pieces)  # the mark starts this block
            pieces = []
        while (end := block.find(b"\n" + COMMIT_MARK, start)) >= 0:
            pieces.append(block[start : end + 1])
            yield b"".join(pieces)
            pieces, start = [], end + 1
        if start < len(block):
            pieces.append(block[start:])
    if pieces:
        yield b"".join(pieces)


def _commit_header(mark: bytes) -> tuple[str, str]:
    """The commit and its masked author from our --format line (`COMMIT_MARK sha US name US email`)."""
    sha, _, rest = mark[1:].decode("utf-8", errors="replace").rstrip("\n").partition("\x1f")
    name, _, email = rest.partition("\x1f")
    return sha, mask_person(name, email)


def _added_lines(
    chunk: bytes, skipped: Callable[[str], bool] = tip.skipped_by_name
) -> dict[str, tuple[list[int], list[str]]]:
    """Path -> (line numbers, texts) of the lines one commit adds to each file the tip scan would read, from the
    commit's `git log -p -U0` text. A file section is its `diff --git` header up to the first hunk (`+++ b/PATH`
    names the file; a quoted name or /dev/null names none), then hunks (`@@ -a,b +c,d @@`: the added lines that
    follow are c, c+1, …). Files the tip scan skips by name are left before their hunks are split into lines, and
    so are those it skips for their size: a commit that adds more than the cap to a file makes it larger. Only
    added lines are decoded (UTF-8, bad bytes replaced, as one text: a bad sequence never spans a line)."""
    files: dict[str, tuple[list[int], list[str]]] = {}
    for section in chunk.split(b"\ndiff --git ")[1:]:
        body_at = section.find(b"\n@@ ")
        header = section if body_at < 0 else section[:body_at]
        named = header.rfind(b"\n+++ ")
        if body_at < 0 or named < 0:
            continue  # no hunk (binary, mode change) or no new name
        end = header.find(b"\n", named + 1)
        path = _new_path(header[named + 5 : len(header) if end < 0 else end])
        if path is None or skipped(path):
            continue
        added = _ADDED.findall(section, body_at)
        numbers: list[int] = []
        heads = list(_HUNK_HEAD.finditer(section, body_at))
        for head, following in zip(heads, [*heads[1:], None], strict=True):
            match = HUNK.match(head.group(1))
            first = int(match.group(1)) if match else 0
            count = section.count(b"\n+", head.end(), following.start() if following else len(section))
            numbers.extend(range(first, first + count))
        block = b"\n".join(added)
        if not added or len(block) > MAX_FILE_BYTES:
            continue  # nothing added, or more than the tip scan's file cap: the file is over it at this commit
        text = block.decode("utf-8", errors="replace")
        if any(mark in block for mark in _LINE_BREAK_BYTES):
            text = LINE_BREAKS.sub(" ", text)
        known = files.setdefault(path, ([], []))
        known[0].extend(numbers)
        known[1].extend(text.split("\n"))
    return files


def _new_path(name: bytes) -> str | None:
    """The repository path of a `+++ ` line's name: `b/PATH`, with the tab git appends to a name holding a
    space (a tab in the name itself would be quoted); None for /dev/null and quoted names."""
    if not name.startswith(b"b/"):
        return None
    path = name[2:].decode("utf-8", errors="replace")
    return path[:-1] if path.endswith("\t") and " " in path else path


def _scan_commit(
    sha: str, author: str, files: dict[str, tuple[list[int], list[str]]], repo, cursor, live_check, result, now
) -> None:
    """Scan the commit's added lines per file, as the tip scanner reads a file, and record new candidates."""
    items = list(files.items())
    hits_by_file = scan_files((enumerate(texts, start=1), _text_name(path)) for path, (_, texts) in items)
    for (path, (numbers, texts)), hits in zip(items, hits_by_file, strict=True):
        if not hits:
            continue
        at = RepoRef(repo.connection, repo.workspace, repo.repository_uuid, repo.repository, sha)
        values: dict[int, list[str]] = {}
        for hit in hits:
            value = tip._full_token(hit.secret_value or "", texts[hit.line_number - 1])
            values.setdefault(hit.line_number, []).append(value)
        found = tip._findings(_AddedLines(at, "\n".join(texts)), {path: hits}, now)
        pair = _oauth_pair(found, values)
        for finding in found:
            if finding.finding_id in cursor.candidates:
                continue  # introduced earlier (first commit wins)
            candidate = {
                "order": len(cursor.candidates),
                "rule": finding.rule_id,
                "title": finding.title,
                "severity": finding.base_severity,
                "cwe": finding.cwe,
                "remediation": finding.remediation,
                "controls": finding.controls,
                "path": path,
                "line": numbers[finding.start_line - 1],
                "end_line": numbers[min(finding.end_line or finding.start_line, len(numbers)) - 1],
                "commit": sha,
                "author": author,
                "evidence": finding.evidence,
                "anchor": finding.anchor,  # the secret's salted hash (or the PEM block's), never the value
                "validity": None,
                "validity_checked_at": None,
            }
            # the value of this finding among its line's hits: the one its anchor hashes
            value = next((v for v in values.get(finding.start_line, ()) if salted_hash(v) == finding.anchor), "")
            if live_check is not None and value:
                validity, checked = live_check(
                    finding.rule_id, value, repo.workspace, repo.repository, pair=pair.get(finding.start_line)
                )
                if validity is not None:
                    result.live_checks += 1
                    candidate["validity"], candidate["validity_checked_at"] = validity, checked
            cursor.candidates[finding.finding_id] = candidate


@lru_cache(maxsize=4096)
def _text_name(path: str) -> str:
    """The name added lines of `path` are scanned under: YAML as text, as the tip scanner's text pass reads it (its
    transformer needs the whole document)."""
    return str(PurePosixPath(path).with_suffix(".txt")) if tip._is_yaml(path) else path


def _oauth_pair(found: list[Finding], values: dict[int, list[str]]) -> dict[int, str]:
    """Line of an OAuth consumer key (18 characters) -> the consumer secret (32) added with it in the same
    file: the pair a client-credentials grant needs."""
    consumer = [f.start_line for f in found if f.rule_id == "bitbucket-oauth-consumer"]
    keys = [line for line in consumer if any(len(v) == 18 for v in values[line])]
    secrets_ = [v for line in consumer for v in values[line] if len(v) == 32]
    return {line: secrets_[0] for line in keys} if secrets_ else {}


def _history_finding(repo: RepoRef, tip_id: str, candidate: dict, now: datetime) -> Finding:
    title = candidate["title"]
    return Finding.at(
        repo,
        scanner=SCANNER,
        scanner_version=scanner_version(),
        rule_id=RULE,
        title=f"{title} in git history only",
        category="secrets",
        base_severity=candidate["severity"],
        anchor=f"{candidate['rule']}\x1f{candidate['anchor']}",
        commit=candidate["commit"],
        file_path=candidate["path"],
        start_line=candidate["line"],
        end_line=candidate["end_line"],
        evidence=f"{candidate['rule']}: {candidate['evidence']}; introduced in {candidate['commit'][:12]} by"
        f" {candidate['author']}; no longer at the tip, still in every clone",
        remediation=candidate["remediation"],
        cwe=candidate["cwe"],
        controls=candidate["controls"],
        scanned_at=now,
        validity=candidate.get("validity"),
        validity_checked_at=_when(candidate.get("validity_checked_at")),
    )


def _when(value) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(value)


def validity_by_tip_id(cursor_root: Path, repo: RepoRef) -> dict[str, tuple[str, datetime | None]]:
    """Tip fingerprint -> (validity, checked at) of the repository's checked candidates, for the tip scan's
    findings of the same secrets."""
    cursor = HistoryCursor(cursor_root, repo).load(scanner_version())
    return {
        tip_id: (c["validity"], _when(c.get("validity_checked_at")))
        for tip_id, c in cursor.candidates.items()
        if c.get("validity")
    }


# -- one connection -------------------------------------------------------------------------------------
def scan_connection(
    repositories: list[dict],
    git: GitAccess,
    tip_rows: list[dict],
    home: Path,
    *,
    limits: HistoryLimits | None = None,
    checker: LiveChecker | None = None,
    clock: Clock | None = None,
    progress: Callable[[str], None] | None = None,
) -> list[HistoryResult]:
    """The history scan of every selected repository of a connection (rows of the `repositories` raw table).
    Each is cloned in full (bare, no checkout) into a directory of this run alone and deleted once read: its
    objects hold raw secrets. `tip_rows` are the tip scan's `secrets` findings; those whose secret a live
    check judged get its validity. A repository that fails is a result with `error`; the others go on."""
    limits = limits or HistoryLimits()
    check = checker.check if checker is not None else None
    results = []
    with private_workdir(home / "cache" / "history-clones") as workdir:
        for row in repositories:
            if not row.get("selected") or not row.get("main_head"):
                continue
            repo = RepoRef(row["connection"], row["workspace"], row["repository_uuid"], row["repository"])
            repo.commit = row["main_head"]
            target = workdir / f"{repo.repository_uuid.strip('{}')}.git"
            tip_ids = {r["finding_id"] for r in tip_rows if r["repository_uuid"] == repo.repository_uuid}
            try:
                refs = _clone(git, repo, row.get("mainbranch") or "main", limits, target)
                result = scan_history(
                    target,
                    repo,
                    refs,
                    tip_ids,
                    home / "cache" / "history",
                    limits=limits,
                    live_check=check,
                    clock=clock,
                    progress=progress,
                )
            except Exception as exc:  # noqa: BLE001 - one repository must not cost the others their history
                # only the type and git's cause line: never a path inside a secret or a URL with a credential
                result = HistoryResult(repo, error=f"history scan failed: {type(exc).__name__}")
                log.warning("history scan of %s/%s failed (%s)", repo.workspace, repo.repository, type(exc).__name__)
            finally:
                shutil.rmtree(target, ignore_errors=True)
            results.append(result)
        if checker is not None:
            _mark_validity(tip_rows, home / "cache" / "history", repositories)
    return results


def _clone(git: GitAccess, repo: RepoRef, main: str, limits: HistoryLimits, target: Path) -> list[str]:
    """A bare clone of every branch; the refs to read: the main branch and the long-lived ones."""
    git.run(
        ["clone", "--quiet", "--bare", "--no-tags", "--template=", git.remote_url(repo.workspace, repo.repository)]
        + [str(target)],
        what=f"{repo.workspace}/{repo.repository}.git clone (history)",
    )
    listed = git.run(
        ["--git-dir", str(target), "for-each-ref", "--format=%(refname:short)", "refs/heads/"],
        what="git for-each-ref",
        remote=False,
    ).split()
    wanted = [b for b in listed if b == main or any(fnmatch.fnmatchcase(b, glob) for glob in limits.branches)]
    return [f"refs/heads/{b}" for b in wanted] or [repo.commit]


def _mark_validity(tip_rows: list[dict], cursor_root: Path, repositories: list[dict]) -> None:
    by_repo: dict[str, dict] = {}
    for row in repositories:
        if row.get("selected"):
            ref = RepoRef(row["connection"], row["workspace"], row["repository_uuid"], row["repository"])
            by_repo[row["repository_uuid"]] = validity_by_tip_id(cursor_root, ref)
    for row in tip_rows:
        judged = by_repo.get(row["repository_uuid"], {}).get(row["finding_id"])
        if judged:
            row["validity"], row["validity_checked_at"] = judged
