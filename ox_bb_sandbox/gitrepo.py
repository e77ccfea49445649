"""Read-only views of a bare git repository (branches, commits, trees, blobs) through git itself."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

# Never let a user's or the machine's git configuration change what the sandbox serves.
GIT_ENV = {
    **{k: v for k, v in os.environ.items() if not k.startswith("GIT_")},
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_TERMINAL_PROMPT": "0",
    "LC_ALL": "C",
}


class GitError(RuntimeError):
    pass


def run_git(args: list[str], *, cwd: Path | None = None, input: bytes | None = None) -> bytes:
    proc = subprocess.run(
        ["git", "-c", "safe.directory=*", *args],
        cwd=cwd,
        input=input,
        capture_output=True,
        env=GIT_ENV,
        check=False,
    )
    if proc.returncode != 0:
        raise GitError(f"git {' '.join(args[:3])} failed: {proc.stderr.decode(errors='replace').strip()}")
    return proc.stdout


@dataclass(frozen=True)
class Commit:
    hash: str
    parents: tuple[str, ...]
    author_name: str
    author_email: str
    date: datetime
    message: str

    @property
    def author_raw(self) -> str:
        return f"{self.author_name} <{self.author_email}>"


@dataclass(frozen=True)
class TreeEntry:
    path: str
    kind: str  # "blob" | "tree" | "commit" (submodule)
    mode: str
    size: int | None


class GitRepository:
    """A bare repository on disk. Commit metadata is cached until `refresh()` (after a push)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._commits: dict[str, Commit] | None = None
        self._size: int | None = None
        self._lock = threading.Lock()

    def git(self, *args: str, input: bytes | None = None) -> bytes:
        return run_git(["--git-dir", str(self.path), *args], input=input)

    # -- refs ----------------------------------------------------------------------------------
    def refs(self, prefix: str) -> list[tuple[str, str]]:
        out = self.git("for-each-ref", "--format=%(refname)%00%(objectname)", prefix)
        result = []
        for line in out.decode().splitlines():
            ref, sha = line.split("\0")
            result.append((ref.removeprefix(prefix).lstrip("/"), sha))
        return result

    def branches(self) -> list[tuple[str, str]]:
        return self.refs("refs/heads")

    def tags(self) -> list[tuple[str, str]]:
        return self.refs("refs/tags")

    def resolve(self, rev: str) -> str | None:
        """A commit hash for a branch, tag or (abbreviated) hash; None when unknown."""
        if not rev or rev.startswith("-"):
            return None
        try:
            return self.git("rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}").decode().strip() or None
        except GitError:
            return None

    # -- commits -------------------------------------------------------------------------------
    def _load_commits(self) -> dict[str, Commit]:
        with self._lock:
            if self._commits is None:
                out = self.git("log", "--all", "--format=%H%x1f%P%x1f%an%x1f%ae%x1f%aI%x1f%B%x1e")
                commits: dict[str, Commit] = {}
                for record in out.decode(errors="replace").split("\x1e"):
                    record = record.removeprefix("\n")  # git's newline between records, not the message's
                    if not record.strip():
                        continue
                    sha, parents, name, email, date, message = record.split("\x1f", 5)
                    commits[sha] = Commit(
                        hash=sha,
                        parents=tuple(parents.split()),
                        author_name=name,
                        author_email=email,
                        date=datetime.fromisoformat(date),
                        message=message,
                    )
                self._commits = commits
            return self._commits

    def refresh(self) -> None:
        with self._lock:
            self._commits = None
            self._size = None

    def commit(self, rev: str) -> Commit | None:
        sha = self.resolve(rev)
        return self._load_commits().get(sha) if sha else None

    def commit_by_hash(self, sha: str) -> Commit | None:
        return self._load_commits().get(sha)

    def all_commits(self) -> dict[str, Commit]:
        return self._load_commits()

    def rev_list(self, include: list[str], exclude: list[str] = (), path: str | None = None) -> list[str]:
        """Commit hashes reachable from `include` and not from `exclude`, newest first (topological)."""
        args = ["rev-list", "--topo-order", *include, *(f"^{e}" for e in exclude)]
        if not include:
            args.insert(2, "--all")
        if path:
            args += ["--", path]
        return self.git(*args).decode().split()

    # -- content -------------------------------------------------------------------------------
    def object_kind(self, commit: str, path: str) -> str | None:
        """'blob', 'tree' or None for a path at a commit ('' is the root tree)."""
        spec = f"{commit}:{path}" if path else f"{commit}^{{tree}}"
        try:
            return self.git("cat-file", "-t", spec).decode().strip()
        except GitError:
            return None

    def list_tree(self, commit: str, path: str, recursive: bool = False) -> list[TreeEntry]:
        spec = f"{commit}:{path}" if path else f"{commit}^{{tree}}"
        args = ["ls-tree", "-l", "-z"] + (["-r", "-t"] if recursive else []) + [spec]
        out = self.git(*args)
        entries = []
        prefix = f"{path.rstrip('/')}/" if path else ""
        for item in out.split(b"\0"):
            if not item:
                continue
            meta, name = item.split(b"\t", 1)
            mode, kind, _sha, size = meta.decode().split()
            entries.append(
                TreeEntry(
                    path=prefix + name.decode(errors="replace"),
                    kind=kind,
                    mode=mode,
                    size=None if size == "-" else int(size),
                )
            )
        return entries

    def read_blob(self, commit: str, path: str) -> bytes:
        return self.git("cat-file", "blob", f"{commit}:{path}")

    def blob_mode(self, commit: str, path: str) -> TreeEntry | None:
        parent, _, name = path.rstrip("/").rpartition("/")
        for entry in self.list_tree(commit, parent):
            if entry.path == path.rstrip("/"):
                return entry
        return None

    def disk_size(self) -> int:
        if self._size is None:
            self._size = sum(f.stat().st_size for f in self.path.rglob("*") if f.is_file())
        return self._size


def replace_bare_repository(git_dir: Path) -> None:
    """Make room for a repository the sandbox (re)creates at `git_dir`. A restart on an existing
    --data-dir regenerates its world, and the world's pull requests and commits refer to the fresh
    history: an earlier bare repository there (another seed or size, pushes of a past session) is
    replaced. Anything else at that path is not the sandbox's to delete."""
    if not git_dir.exists():
        return
    if not (git_dir.is_dir() and (git_dir / "HEAD").is_file() and (git_dir / "objects").is_dir()):
        raise ValueError(f"{git_dir} exists and is not a sandbox repository; remove it or choose another --data-dir")
    shutil.rmtree(git_dir)
