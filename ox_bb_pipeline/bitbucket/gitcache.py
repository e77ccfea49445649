"""A bare, shallow cache of each repository's main branch: recent history and single files at the
head, read with git instead of REST (git has its own, much larger hourly allowance)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from .errors import BitbucketError
from .git import GitAccess

LOG_FORMAT = "%H%x1f%P%x1f%an <%ae>%x1f%ae%x1f%aI%x1f%s%x1e"


class GitHistory:
    def __init__(self, git: GitAccess, root: Path) -> None:
        self.git = git
        self.root = Path(root)

    def path(self, workspace: str, slug: str) -> Path:
        return self.root / workspace / f"{slug}.git"

    def update(self, workspace: str, slug: str, branch: str, head: str, depth: int) -> list[dict]:
        """Fetch the branch (shallow) unless the cache already has `head`; return its recent commits."""
        repo = self.path(workspace, slug)
        if not (repo / "HEAD").exists():
            repo.parent.mkdir(parents=True, exist_ok=True)
            self.git.run(["init", "--quiet", "--bare", str(repo)], what="git init", remote=False)
        if not self._has(repo, head):
            self.git.run(["--git-dir", str(repo), "fetch", "--quiet", "--no-tags", f"--depth={depth}",
                          self.git.remote_url(workspace, slug), f"+refs/heads/{branch}:refs/heads/{branch}"],
                         what=f"{workspace}/{slug}.git fetch")
        out = self.git.run(["--git-dir", str(repo), "log", f"--max-count={depth}", f"--format={LOG_FORMAT}", head],
                           what=f"{workspace}/{slug}.git log", remote=False)
        commits = []
        for record in out.split("\x1e"):
            record = record.strip("\n")
            if not record:
                continue
            sha, parents, author, email, date, summary = record.split("\x1f", 5)
            parent_list = parents.split()
            commits.append({"commit": sha, "parents": parent_list, "author": author, "author_email": email,
                            "committed_at": datetime.fromisoformat(date), "summary": summary,
                            "is_merge": len(parent_list) > 1})
        return commits

    def read_file(self, workspace: str, slug: str, head: str, path: str) -> str | None:
        repo = self.path(workspace, slug)
        try:
            return self.git.run(["--git-dir", str(repo), "show", f"{head}:{path}"], what=f"{workspace}/{slug}:{path}", remote=False)
        except BitbucketError:
            return None

    def _has(self, repo: Path, commit: str) -> bool:
        try:
            self.git.run(["--git-dir", str(repo), "cat-file", "-e", f"{commit}^{{commit}}"], what="git cat-file", remote=False)
            return True
        except BitbucketError:
            return False
