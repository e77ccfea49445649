"""Safe snapshots: a shallow checkout of a repository's main-branch head, cached by commit.

Safe by construction: no hooks (empty template, hooksPath to /dev/null), no submodules, only
http(s) transport (GitAccess's config), symlinks checked out as plain files (core.symlinks=false)
and never followed by the walker, per-file and per-repository size caps, binary files skipped
(and deleted from the checkout, so the tools that walk it themselves skip them too), and a timeout
per repository.

Every run checks out into a private working directory of its own (`run-<pid>-<host>-<random>`), so two runs
on one data home never delete each other's checkouts; directories left by runs that died (kill -9)
hold raw secrets and are removed when the next run starts.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from ..bitbucket.git import GitAccess
from ..findings import RepoRef

BINARY_PROBE = 8192
MARKER_SUFFIX = ".complete"  # `.<commit>.complete` beside a finished checkout: what its walk skipped


def is_marker(name: str) -> bool:
    """A checkout's completion marker (a file beside it, never inside a repository's checkout)."""
    return name.startswith(".") and name.endswith(MARKER_SUFFIX)


@dataclass(frozen=True)
class SnapshotLimits:
    max_file_bytes: int = 2 * 1024 * 1024
    max_repo_bytes: int = 256 * 1024 * 1024
    max_files: int = 50_000
    clone_timeout: float = 300.0


@dataclass
class SnapshotFile:
    path: str  # repository-relative POSIX path
    size: int


@dataclass
class Snapshot:
    repo: RepoRef
    root: Path
    files: list[SnapshotFile] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # path -> reason
    bytes_total: int = 0

    def read_text(self, path: str) -> str:
        return (self.root / path).read_text(encoding="utf-8", errors="replace")

    def paths(self) -> list[str]:
        return [f.path for f in self.files]


def _is_binary(path: Path) -> bool:
    with path.open("rb") as handle:
        return b"\0" in handle.read(BINARY_PROBE)


def walk(root: Path, limits: SnapshotLimits) -> tuple[list[SnapshotFile], dict[str, str], int]:
    """Regular text files under `root` within the caps; everything else is listed as skipped."""
    files, skipped, total = [], {}, 0
    for directory, dirnames, filenames in os.walk(root, followlinks=False):
        links = {d for d in dirnames if os.path.islink(os.path.join(directory, d))}
        for name in sorted(links):
            skipped[(Path(directory) / name).relative_to(root).as_posix()] = "not a regular file"
        dirnames[:] = sorted(d for d in dirnames if d != ".git" and d not in links)
        for name in sorted(filenames):
            full = Path(directory) / name
            rel = full.relative_to(root).as_posix()
            if full.is_symlink() or not full.is_file():
                skipped[rel] = "not a regular file"
                continue
            size = full.stat().st_size
            if size > limits.max_file_bytes:
                skipped[rel] = f"larger than {limits.max_file_bytes} bytes"
                continue
            if len(files) >= limits.max_files or total + size > limits.max_repo_bytes:
                skipped[rel] = "repository size cap reached"
                continue
            if _is_binary(full):
                skipped[rel] = "binary"
                continue
            files.append(SnapshotFile(rel, size))
            total += size
    return files, skipped, total


def take_snapshot(
    git: GitAccess, repo: RepoRef, branch: str, cache_root: Path, limits: SnapshotLimits | None = None
) -> Snapshot:
    """Check out `branch` at depth 1 into cache_root/<workspace>/<slug>/<commit>; reuse it when the
    commit is already there. Older checkouts of the repository are removed."""
    limits = limits or SnapshotLimits()
    base = Path(cache_root) / repo.workspace / repo.repository
    target = base / (repo.commit or "head")
    reuse = bool(repo.commit and (base / f".{repo.commit}{MARKER_SUFFIX}").exists() and target.is_dir())
    if not reuse:
        staging = base / ".incoming"
        shutil.rmtree(staging, ignore_errors=True)
        base.mkdir(parents=True, exist_ok=True)
        git.timeout = limits.clone_timeout
        try:
            git.run(
                [
                    "clone",
                    "--quiet",
                    "--depth=1",
                    "--single-branch",
                    f"--branch={branch}",
                    "--no-tags",
                    "--no-recurse-submodules",
                    "--template=",
                    "-c",
                    "core.symlinks=false",
                    "-c",
                    f"core.hooksPath={os.devnull}",
                    "-c",
                    "core.protectNTFS=true",
                    "-c",
                    "core.protectHFS=true",
                    git.remote_url(repo.workspace, repo.repository),
                    str(staging),
                ],
                what=f"{repo.workspace}/{repo.repository}.git clone",
            )
            head = git.run(["-C", str(staging), "rev-parse", "HEAD"], what="git rev-parse", remote=False).strip()
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)  # a clone killed at its timeout leaves files behind
            raise
        repo.commit = head  # the head may have moved since it was listed; scan what was cloned
        target = base / head
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)
    marker = base / f".{target.name}{MARKER_SUFFIX}"
    for old in base.iterdir():  # keep only the current commit's checkout
        if old.name not in (target.name, marker.name):
            shutil.rmtree(old, ignore_errors=True) if old.is_dir() else old.unlink(missing_ok=True)
    files, skipped, total = walk(target, limits)
    if reuse:  # what was skipped is gone from the checkout; the marker remembers it
        with contextlib.suppress(ValueError):  # a marker from before markers held the list
            skipped = json.loads(marker.read_text())
    else:
        for path in skipped:  # semgrep and checkov walk the checkout themselves: leave them only what passed
            (target / path).unlink(missing_ok=True)
        marker.write_text(json.dumps(skipped))
    return Snapshot(repo=repo, root=target, files=files, skipped=skipped, bytes_total=total)
