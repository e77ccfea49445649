"""How the history scan reads `git log -p` over real git, without a sandbox: the stream cut into commits in
large blocks and parsed per file section gives exactly the added lines a line-by-line reading gives (odd paths,
bytes that are not UTF-8, line breaks inside a line, several hunks, binary and deleted files, merges), and the
history scan reads the files the tip scan reads, no others (lock files, non-text extensions, swagger)."""

from __future__ import annotations

import io
import os
import re
import string
import subprocess
from pathlib import Path

import pytest

from ox_bb_pipeline.findings import RepoRef
from ox_bb_pipeline.scanners import history
from ox_bb_pipeline.scanners import secrets as tip
from ox_bb_pipeline.scanners.secrets import SecretsScanner

from .test_secrets import random_text, repo_with

pytestmark = pytest.mark.usefixtures("secret_salt")

SECRET = random_text(string.ascii_letters + string.digits, 40, seed=11)


def _git(work: Path, *args: str, data: bytes | None = None) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update({"GIT_AUTHOR_NAME": "Ana Lyst", "GIT_AUTHOR_EMAIL": "ana@example.com"})
    env.update({"GIT_COMMITTER_NAME": "Ana Lyst", "GIT_COMMITTER_EMAIL": "ana@example.com"})
    return subprocess.run(
        ["git", "-c", "safe.directory=*", "-c", "init.defaultBranch=main", *args],
        cwd=work,
        env=env,
        input=data,
        capture_output=True,
        check=True,
    ).stdout.decode()


def _commit(work: Path, files: dict[str, bytes | None], message: str) -> None:
    for path, data in files.items():
        if data is None:
            _git(work, "rm", "--quiet", path)
            continue
        (work / path).parent.mkdir(parents=True, exist_ok=True)
        (work / path).write_bytes(data)
        _git(work, "add", path)
    _git(work, "commit", "--quiet", "--allow-empty", "-m", message)


def _odd_history(work: Path) -> list[str]:
    """A repository whose history has what a diff parser can trip on; returns its commits, parents first."""
    work.mkdir()
    _git(work, "init", "--quiet")
    _commit(
        work,
        {
            "x y.txt": f'token = "{SECRET}"\n'.encode(),  # a space in the name: git ends `+++ b/x y.txt` with a tab
            "f.txt": b"one\ntwo\nthree\nfour\nfive\n",
            "weird.txt": b"bad \xff\xc3 bytes\r\nvertical\x0btab\nline\xe2\x80\xa8sep\n\xf0\x9f\x98\x80 ok\n",
            "bin.dat": b"\x00\x01binary" * 10,
            "style.css": f'a {{ content: "{SECRET}" }}\n'.encode(),
            "yarn.lock": f'resolved "{SECRET}"\n'.encode(),
            "no-newline.txt": b"last line without newline",
            'quo"te.txt': f'token = "{SECRET}"\n'.encode(),  # git quotes the name: not read (as before)
            # over the tip scan's file cap (it never reads the file): left out
            "big.txt": f'token = "{SECRET}"\n'.encode() + b"x" * history.MAX_FILE_BYTES + b"\n",
            "just-under.txt": b"y" * (history.MAX_FILE_BYTES - 1) + b"\n",
        },
        "first",
    )
    _commit(
        work,
        {
            "f.txt": b"one\nTWO\nthree\nfour\n++ b/not-a-header\n@@ not a hunk\nfive\nsix\n",
            "bin.dat": b"\x00\x02binary" * 10,
        },
        "two hunks",
    )
    _git(work, "checkout", "--quiet", "-b", "side")
    _commit(work, {"side.txt": b"side\n"}, "side")
    _git(work, "checkout", "--quiet", "main")
    _commit(work, {"main.txt": b"main\n"}, "main")
    _git(work, "merge", "--quiet", "--no-edit", "side")  # a merge shows no diff
    _commit(work, {"f.txt": None}, "deletion only")
    (work / "main.txt").chmod(0o755)
    _git(work, "add", "main.txt")
    _commit(work, {}, "mode change only")
    return _git(work, "rev-list", "--reverse", "--topo-order", "main").split()


def _stream(git_dir: Path, commits: list[str]) -> bytes:
    command = history.log_command(git_dir)
    return subprocess.run(command, input=("\n".join(commits) + "\n").encode(), capture_output=True, check=True).stdout


def _line_by_line(stream: bytes) -> list[tuple[str, dict[str, tuple[list[int], list[str]]]]]:
    """The straightforward reading: one line at a time, a state machine over headers and hunks."""
    commits: list[tuple[str, dict]] = []
    path, header, next_line = None, False, 0
    sizes: dict[tuple[str, str], int] = {}  # bytes each commit adds to a file, with the newlines between lines
    for raw in io.BytesIO(stream):
        line = raw.decode("utf-8", errors="replace").rstrip("\n")
        if line.startswith("\x00"):
            commits.append((line[1:].partition("\x1f")[0], {}))
            path, header = None, False
        elif line.startswith("diff --git "):
            path, header = None, True
        elif header and line.startswith("+++ "):
            path = line[6:] if line.startswith("+++ b/") else None
            path = path[:-1] if path and path.endswith("\t") and " " in path else path
            path = None if path is None or tip.skipped_by_name(path) else path
        elif line.startswith("@@ "):
            header = False
            match = re.match(r"^@@ -\S+ \+(\d+)(?:,\d+)? @@", line)
            next_line = int(match.group(1)) if match else 0
        elif not header and line.startswith("+") and path:
            numbers, texts = commits[-1][1].setdefault(path, ([], []))
            numbers.append(next_line)
            texts.append(history.LINE_BREAKS.sub(" ", line[1:]))
            next_line += 1
            key = (commits[-1][0], path)
            sizes[key] = sizes.get(key, -1) + len(raw) - 1  # the line without its "+", and a newline
    for sha, files in commits:  # what the tip scan would skip for its size
        for path in [p for p in files if sizes[sha, p] > history.MAX_FILE_BYTES]:
            del files[path]
    return commits


def test_the_stream_cut_into_commits_and_parsed_per_file_reads_what_a_line_by_line_reading_reads(tmp_path):
    commits = _odd_history(tmp_path / "work")
    stream = _stream(tmp_path / "work" / ".git", commits)

    chunks = list(history._commit_chunks(io.BytesIO(stream)))
    for size in (1, 2, 7, 64):  # a mark split across blocks, blocks inside a line
        assert list(history._commit_chunks(io.BytesIO(stream), size=size)) == chunks
    assert b"".join(chunks) == stream
    with tip._engine():
        parsed = [(history._commit_header(chunk)[0], history._added_lines(chunk)) for chunk in chunks]
        expected = _line_by_line(stream)
    assert parsed == expected

    files = dict(parsed[0][1])
    assert sorted(files) == ["f.txt", "just-under.txt", "no-newline.txt", "weird.txt", "x y.txt"]
    assert files["weird.txt"] == (
        [1, 2, 3, 4],
        ["bad \ufffd\ufffd bytes ", "vertical tab", "line sep", "\U0001f600 ok"],
    )
    assert parsed[1][1] == {"f.txt": ([2, 5, 6, 8], ["TWO", "++ b/not-a-header", "@@ not a hunk", "six"])}
    # in the order given; merges, deletions and mode changes add nothing
    shas = [sha for sha, _ in parsed]
    assert shas[:2] == commits[:2] and shas == [c for c in commits if c in shas]
    assert sorted(path for _, added in parsed[2:] for path in added) == ["main.txt", "side.txt"]


def test_the_history_scan_reads_the_files_the_tip_scan_reads(tmp_path):
    files = {
        "app/settings.py": f'API_TOKEN = "{SECRET}"\n',
        "app/style.css": f'.x {{ background: url("{SECRET}") }}\n',
        "app/logo.svg": f'<svg id="{SECRET}"></svg>\n',
        "docs/swagger.json": f'{{"example": "{SECRET}"}}\n',
        "yarn.lock": f'  resolved "{SECRET}"\n',
        "Cargo.lock": f'checksum = "{SECRET}"\n',
        "src/with space.js": f'const key = "{SECRET}";\n',
    }
    snapshot = repo_with(tmp_path / "tip", files)
    [output] = SecretsScanner().scan([snapshot])
    at_tip = sorted((f.rule_id, f.file_path, f.start_line) for f in output.findings)

    work = tmp_path / "work"
    work.mkdir()
    _git(work, "init", "--quiet")
    _commit(work, {path: text.encode() for path, text in files.items()}, "all at once")
    repo = RepoRef("test", "ws", "{repo-uuid}", "repo", None)
    result = history.scan_history(work / ".git", repo, ["refs/heads/main"], set(), tmp_path / "cursor")
    in_history = sorted((f.evidence.partition(":")[0], f.file_path, f.start_line) for f in result.findings)

    assert at_tip == in_history
    assert {path for _, path, _ in at_tip} == {"app/settings.py", "src/with space.js"}
