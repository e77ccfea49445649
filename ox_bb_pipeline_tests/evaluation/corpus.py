"""Where evaluation repositories come from: a local mirror folder or a clone, checked out at the
labelled commit into a scratch folder (never into the project).

Lookup order for `owner/name`:
1. `$OX_BB_EVAL_REPOS/owner+name` (a git directory, bare or not, or a folder holding `repo/`): for
   machines without access to the code host, fill that folder beforehand;
2. `$OX_BB_EVAL_CACHE/owner+name` (default `~/.cache/ox-bb-eval`), cloned from
   `https://github.com/owner/name` on first use.
"""

from __future__ import annotations

import os
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

TEXT_SUFFIXES_SKIPPED = {
    ".png",
    ".jpg",
    ".jpeg",
    ".gif",
    ".ico",
    ".woff",
    ".woff2",
    ".ttf",
    ".eot",
    ".pdf",
    ".zip",
    ".gz",
    ".jar",
    ".class",
    ".mp4",
    ".mp3",
    ".webp",
    ".svgz",
}


class CorpusUnavailable(RuntimeError):
    """A labelled repository or commit is not at hand; the message says how to provide it."""


@dataclass(frozen=True)
class CorpusRepo:
    repository: str  # owner/name
    commit: str  # full or abbreviated commit id the labels were made at

    @property
    def folder_name(self) -> str:
        return self.repository.replace("/", "+")


def _git_dir(candidate: Path) -> Path | None:
    for path in (candidate / "repo", candidate):
        if (path / "HEAD").is_file() or (path / ".git").exists():
            return path
    return None


def locate(repo: CorpusRepo) -> Path:
    """The git directory holding `repo.commit`, cloning into the cache when no mirror has it."""
    mirrors = os.environ.get("OX_BB_EVAL_REPOS")
    if mirrors and (found := _git_dir(Path(mirrors) / repo.folder_name)):
        return found
    cache = Path(os.environ.get("OX_BB_EVAL_CACHE", Path.home() / ".cache" / "ox-bb-eval"))
    target = cache / repo.folder_name
    if not _git_dir(target):
        cache.mkdir(parents=True, exist_ok=True)
        url = f"https://github.com/{repo.repository}.git"
        result = subprocess.run(
            ["git", "clone", "--quiet", "--bare", url, str(target)], capture_output=True, text=True, timeout=1800
        )
        if result.returncode != 0:
            raise CorpusUnavailable(
                f"{repo.repository}: not in OX_BB_EVAL_REPOS and cloning {url} failed "
                f"({result.stderr.strip()[:200]}); put a clone at $OX_BB_EVAL_REPOS/{repo.folder_name}"
            )
    return _git_dir(target)  # type: ignore[return-value]


def checkout(repo: CorpusRepo, into: Path | None = None, exclude: tuple[str, ...] = ()) -> Path:
    """The tree of `repo` at its labelled commit, extracted with `git archive` (no hooks, no .git).
    `exclude` leaves paths out (a mirror may lack its largest files, which no scanner reads anyway)."""
    git_dir = locate(repo)
    into = into or Path(tempfile.mkdtemp(prefix=f"ox-bb-eval-{repo.folder_name}-"))
    pathspec = ["--", ".", *(f":(exclude){path}" for path in exclude)] if exclude else []
    archive = subprocess.run(
        ["git", "-C", str(git_dir), "archive", "--format=tar", repo.commit, *pathspec], capture_output=True, timeout=600
    )
    if archive.returncode != 0:
        raise CorpusUnavailable(
            f"{repo.repository}: commit {repo.commit} is not in {git_dir} "
            f"({archive.stderr.decode(errors='replace').strip()[:200]}); fetch it first"
        )
    tar_path = into.parent / f".{into.name}.tar"
    tar_path.write_bytes(archive.stdout)
    with tarfile.open(tar_path) as tar:
        tar.extractall(into, filter="data")
    tar_path.unlink()
    return into


def count_lines(root: Path) -> int:
    """Lines of text under `root` (binary-looking suffixes skipped), the denominator for noise rates."""
    total = 0
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink() and path.suffix.lower() not in TEXT_SUFFIXES_SKIPPED:
            try:
                data = path.read_bytes()
            except OSError:
                continue
            if b"\0" not in data[:8192]:
                total += data.count(b"\n")
    return total
