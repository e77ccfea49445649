"""Recent main-branch history and single files at the head, read with git instead of REST (git has
its own, much larger hourly allowance).

Each read fetches the branch (shallow) into a scratch repository that is deleted as soon as it has
been read: its objects are the repository's content, raw secrets included, and none may stay at rest
under OX_BB_HOME (compressed is still at rest).
"""

from __future__ import annotations

import shutil
import tempfile
from datetime import datetime
from pathlib import Path

from .errors import BitbucketError
from .git import GitAccess

LOG_FORMAT = "%H%x1f%P%x1f%an <%ae>%x1f%ae%x1f%aI%x1f%s%x1e"


class GitHistory:
    def __init__(self, git: GitAccess, root: Path) -> None:
        self.git = git
        self.root = Path(root)  # where scratch repositories live while they are read

    def read(
        self, workspace: str, slug: str, branch: str, head: str, depth: int, path: str
    ) -> tuple[list[dict], str | None]:
        """The last `depth` commits up to `head`, and the text of `path` at `head` (None when absent)."""
        self.root.mkdir(parents=True, exist_ok=True)
        repo = Path(tempfile.mkdtemp(prefix=f"{workspace}-{slug}-", suffix=".git", dir=self.root))
        try:
            self.git.run(["init", "--quiet", "--bare", "--template=", str(repo)], what="git init", remote=False)
            self.git.run(
                [
                    "--git-dir",
                    str(repo),
                    "fetch",
                    "--quiet",
                    "--no-tags",
                    f"--depth={depth}",
                    self.git.remote_url(workspace, slug),
                    f"+refs/heads/{branch}:refs/heads/{branch}",
                ],
                what=f"{workspace}/{slug}.git fetch",
            )
            return self._commits(repo, workspace, slug, head, depth), self._file(repo, workspace, slug, head, path)
        finally:
            shutil.rmtree(repo, ignore_errors=True)

    def _commits(self, repo: Path, workspace: str, slug: str, head: str, depth: int) -> list[dict]:
        out = self.git.run(
            ["--git-dir", str(repo), "log", f"--max-count={depth}", f"--format={LOG_FORMAT}", head],
            what=f"{workspace}/{slug}.git log",
            remote=False,
        )
        commits = []
        for record in out.split("\x1e"):
            record = record.strip("\n")
            if not record:
                continue
            sha, parents, author, email, date, summary = record.split("\x1f", 5)
            parent_list = parents.split()
            commits.append(
                {
                    "commit": sha,
                    "parents": parent_list,
                    "author": author,
                    "author_email": email,
                    "committed_at": datetime.fromisoformat(date),
                    "summary": summary,
                    "is_merge": len(parent_list) > 1,
                }
            )
        return commits

    def _file(self, repo: Path, workspace: str, slug: str, head: str, path: str) -> str | None:
        try:
            return self.git.run(
                ["--git-dir", str(repo), "show", f"{head}:{path}"], what=f"{workspace}/{slug}:{path}", remote=False
            )
        except BitbucketError:
            return None
