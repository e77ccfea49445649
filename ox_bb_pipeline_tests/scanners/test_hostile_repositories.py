"""A hostile repository through the whole scan stage, every scanner included: symlinks out of the
checkout, a huge file, a binary, YAML bombs, odd file names, submodules over local transports, committed
hooks and a git template whose hook would run on checkout. Each is handled without reading outside the
checkout, hanging, exhausting memory, running repository code or fetching anything else."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ox_bb_pipeline.config import data_home
from ox_bb_pipeline.findings import normalise_path
from ox_bb_pipeline.scanners import posture
from ox_bb_pipeline.scanners.base import ScanOutput
from ox_bb_pipeline.scanners.checkov import CheckovScanner
from ox_bb_pipeline.scanners.posture.pipelines_yml import PipelinesYmlError, parse
from ox_bb_pipeline.scanners.semgrep import SemgrepScanner
from ox_bb_pipeline.scanners.snapshot import Snapshot, SnapshotLimits, walk
from ox_bb_pipeline.scanners.stage import default_scanners, scan_repositories
from ox_bb_pipeline_tests.conftest import TINY
from ox_bb_sandbox.gitrepo import run_git
from ox_bb_sandbox.server import SandboxServer

from .conftest import extract

WS, SLUG = "acme-payments", "hostile"
LIMITS = SnapshotLimits(max_file_bytes=64 * 1024)
BATCH_TIMEOUT = 300.0  # semgrep's and checkov's limit for the batch in this test
OUTSIDE_MARKER = "OUTSIDE-THE-CHECKOUT-7f3a9c1e"  # content of a file next to, not inside, the repository
SUBMODULE_MARKER = "SUBMODULE-CONTENT-5b8e2d40"  # content of the repository a submodule points at
HUGE_KEY = "AKIAW3N7Q2X9B4M8K5J1"  # an AWS key id inside the file over the size cap
BINARY_KEY = "AKIAR6T2Y8U4P1L9Z3C7"  # and inside the binary file
PASSWD_LINE = Path("/etc/passwd").read_text().splitlines()[0]  # root:x:0:0:…
# from the checkout, home/cache/snapshots/<connection>/<workspace>/<slug>/<commit>, to the outside file
ESCAPE = "../" * 7 + "outside-secret.txt"
LAUGHS = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]'] + [
    f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)
]  # 9^10 nodes once expanded
LINKS = {"passwd-link": "/etc/passwd", "outside-link": "../../outside-secret.txt", "escape-link": ESCAPE}
ODD_NAMES = [
    "ünïcödé файл 名前.py",
    "name with spaces.py",
    "-leading-dash.py",
    "--output=pwned.py",
    "l" + "o" * 240 + "ng.py",
    "new\nline.py",
    "tab\tand 'quotes\".py",
    "back\\slash.py",
]
ODD_CODE = "import subprocess\n\ndef run(cmd):\n    return subprocess.call(cmd, shell=True)\n"


def git(repo: Path, *args: str) -> str:
    return (
        run_git(["-C", str(repo), "-c", "user.name=mallory", "-c", "user.email=mallory@example.com", *args])
        .decode()
        .strip()
    )


def write(root: Path, path: str, content: str | bytes) -> None:
    target = root / path
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(content.encode() if isinstance(content, str) else content)


def build_hostile_repository(tmp_path: Path) -> Path:
    """The repository, and beside it the outside file and the submodule's repository."""
    write(tmp_path, "outside-secret.txt", f"{OUTSIDE_MARKER}\n")
    module = tmp_path / "module"
    write(module, "README.md", f"{SUBMODULE_MARKER}\n")
    run_git(["init", "--quiet", "--initial-branch=main", str(module)])
    git(module, "add", "-A")
    git(module, "commit", "--quiet", "-m", "module")

    repo = tmp_path / "src" / "hostile"
    run_git(["init", "--quiet", "--initial-branch=main", str(repo)])
    write(repo, "README.md", "A repository that tries everything.\n")
    # symlinks: a checkout with core.symlinks=false holds plain files with the target's path as text
    os.symlink("/etc/passwd", repo / "passwd-link")
    os.symlink("../../outside-secret.txt", repo / "outside-link")  # the outside file, seen from src/hostile
    os.symlink(ESCAPE, repo / "escape-link")  # the same file, seen from the checkout
    os.symlink("/etc", repo / "etc-dir-link")
    write(repo, "huge.py", f"KEY = '{HUGE_KEY}'\n" + "eval(input())\n" * (LIMITS.max_file_bytes // 14 + 1))
    write(repo, "blob.bin", b"\x89PNG\r\n\x1a\n\0\0\0" + f"aws_access_key_id={BINARY_KEY}\n".encode() + b"\0" * 64)
    write(
        repo,
        "bitbucket-pipelines.yml",
        "\n".join([*LAUGHS, "pipelines:", "  default:", "    - step:", "        script: [*a9]"]) + "\n",
    )
    write(
        repo,
        "k8s/bomb.yaml",
        "\n".join(
            ["apiVersion: v1", "kind: ConfigMap", "metadata: {name: bomb}", "data:", *(f"  {line}" for line in LAUGHS)]
        )
        + "\n",
    )
    for name in ODD_NAMES:
        write(repo, f"odd/{name}", ODD_CODE)
    # Committed hooks and a committed git config: git never runs the first nor reads the second (a
    # repository cannot set core.hooksPath for its clones; config is not part of what is cloned).
    write(repo, ".githooks/post-checkout", f"#!/bin/sh\necho ran > {tmp_path}/committed-hook-ran\n")
    (repo / ".githooks/post-checkout").chmod(0o755)
    write(repo, ".gitconfig", "[core]\n\thooksPath = .githooks\n")
    git(repo, "config", "core.hooksPath", ".githooks")  # the source's own config: not pushed, not cloned
    # submodules over local transports: ext:: would run a command, file:// would read this machine
    write(
        repo,
        ".gitmodules",
        "\n".join(
            [
                '[submodule "ext"]',
                "\tpath = vendor/ext",
                f"\turl = ext::sh -c touch% {tmp_path}/ext-transport-ran",
                '[submodule "local"]',
                "\tpath = vendor/local",
                f"\turl = file://{module}",
                "",
            ]
        ),
    )
    git(repo, "add", "-A")
    module_head = git(module, "rev-parse", "HEAD")
    for path in ("vendor/ext", "vendor/local"):
        git(repo, "update-index", "--add", "--cacheinfo", f"160000,{module_head},{path}")
    git(repo, "commit", "--quiet", "--no-verify", "-m", "hostile")
    return repo


def hook_template(tmp_path: Path) -> tuple[Path, Path]:
    """A git template whose post-checkout hook writes a marker file; (template dir, marker path)."""
    marker = tmp_path / "template-hook-ran"
    write(tmp_path, "template/hooks/post-checkout", f'#!/bin/sh\necho "$PWD" >> {marker}\n')
    (tmp_path / "template/hooks/post-checkout").chmod(0o755)
    return tmp_path / "template", marker


class Witness:
    """A scanner that inspects every snapshot it is given, before the real scanners run on it."""

    name, category = "witness", "external"

    def __init__(self) -> None:
        self.seen: list[dict] = []

    def version(self) -> str:
        return "witness 1"

    def scan(self, snapshots: list[Snapshot]):
        for s in snapshots:
            on_disk = [p for p in s.root.rglob("*") if p.relative_to(s.root).parts[0] != ".git"]
            self.seen.append(
                {
                    "paths": s.paths(),
                    "skipped": dict(s.skipped),
                    "symlinks": [p for p in on_disk if p.is_symlink()],
                    "on_disk": [p.relative_to(s.root).as_posix() for p in on_disk if p.is_file()],
                    "submodule_dirs": {
                        d: sorted(os.listdir(s.root / d))
                        for d in ("vendor/ext", "vendor/local")
                        if (s.root / d).is_dir()
                    },
                    "hooks": sorted(os.listdir(s.root / ".git" / "hooks")) if (s.root / ".git/hooks").is_dir() else [],
                    "link_texts": {name: (s.root / name).read_text() for name in LINKS},
                }
            )
        return [ScanOutput(s.repo.repository_uuid) for s in snapshots]


class OpenAudit:
    """(path, real path) of every file this process opens while active, links resolved at the time (an audit
    hook: the walker and the in-process scanners open files through Python, so none reads a file unseen)."""

    def __init__(self) -> None:
        self.active, self.opened = False, []
        sys.addaudithook(self._hook)

    def _hook(self, event: str, args) -> None:
        if self.active and event == "open" and isinstance(args[0], (str, bytes, os.PathLike)):
            path = os.path.abspath(os.fsdecode(args[0]))
            self.opened.append((path, os.path.realpath(path)))


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    """The hostile repository in a sandbox, extracted and scanned once with every scanner."""
    tmp_path = tmp_path_factory.mktemp("hostile")
    source = build_hostile_repository(tmp_path)
    template, hook_marker = hook_template(tmp_path)
    with SandboxServer(TINY, import_repos=[f"{source}={WS}/{SLUG}"]) as server, pytest.MonkeyPatch.context() as patch:
        server.world.workspaces[WS].repositories[SLUG].pipelines_enabled = True  # so its pipelines file counts
        home = tmp_path / "home"
        patch.setenv("OX_BB_HOME", str(home))
        # A machine whose git would run a hook on every checkout: git's environment must not reach our clones.
        patch.setenv("GIT_TEMPLATE_DIR", str(template))
        tables, git_access = extract(server.write_connections(tmp_path / "connections.yaml"))
        rows = [r for r in tables["repositories"] if r["repository"] == SLUG]
        witness, audit = Witness(), OpenAudit()
        scanners = [
            witness,
            *[s for s in default_scanners() if s.name not in ("semgrep", "checkov")],
            SemgrepScanner(timeout=BATCH_TIMEOUT),
            CheckovScanner(timeout=BATCH_TIMEOUT),
        ]
        started = time.perf_counter()
        audit.active = True
        try:
            report = scan_repositories(rows, git_access, scanners=scanners, limits=LIMITS, home=data_home())
        finally:
            audit.active = False
        seconds = time.perf_counter() - started
        result = posture.evaluate(
            {**tables, "repository_files": report.repository_files}, connection="sandbox-token", now=server.clock.now()
        )
        yield {
            "report": report,
            "seconds": seconds,
            "seen": witness.seen[0],
            "opened": audit.opened,
            "posture": [r for r in result.results if r["repository"] == SLUG],
            "tables": tables,
            "home": home,
            "tmp": tmp_path,
            "hook_marker": hook_marker,
            "template": template,
            "source": source,
        }


def everything_written(hostile) -> str:
    """Every output of the run as text: findings, scan runs, extra tables, posture results, and every
    file under OX_BB_HOME."""
    report = hostile["report"]
    parts = [
        repr(report.findings),
        repr(report.scan_runs),
        repr(report.extra),
        repr(report.repository_files),
        repr(hostile["posture"]),
        repr(hostile["tables"]),
    ]
    parts += [p.read_bytes().decode("utf-8", "replace") for p in hostile["home"].rglob("*") if p.is_file()]
    return "\n".join(parts)


def test_every_scanner_completes_on_the_hostile_repository_in_bounded_time(hostile):
    runs = {r["scanner"]: (r["status"], r["error"]) for r in hostile["report"].scan_runs}

    assert runs == {name: ("ok", None) for name in ("witness", "secrets", "bandit", "sca", "semgrep", "checkov")}
    assert hostile["seconds"] < BATCH_TIMEOUT / 2
    # peak memory of this process and of the tools it started (a bomb expanded in memory would be GBs)
    peak_kib = max(
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    )
    assert peak_kib < 2 * 1024 * 1024


def test_symlinks_are_never_followed_out_of_the_checkout(hostile):
    seen = hostile["seen"]

    # checked out as plain files holding the link's target path, never as links
    assert seen["symlinks"] == []
    assert seen["link_texts"] == LINKS
    # every file this process opened through the snapshot cache during the scan was really there, and
    # nothing it opened, links resolved, was the outside file or /etc/passwd
    snapshots = str(hostile["home"].resolve() / "cache" / "snapshots") + "/"
    through_checkout = [(path, real) for path, real in hostile["opened"] if path.startswith(snapshots)]
    assert through_checkout and all(real.startswith(snapshots) for _, real in through_checkout)
    real_paths = {real for _, real in hostile["opened"]}
    assert str((hostile["tmp"] / "outside-secret.txt").resolve()) not in real_paths
    assert "/etc/passwd" not in real_paths
    written = everything_written(hostile)
    assert OUTSIDE_MARKER not in written
    assert PASSWD_LINE not in written


def test_a_checkout_with_real_symlinks_is_walked_without_following_them(tmp_path):
    # Defence in depth, should a checkout ever hold links: the walker lists them as skipped.
    root = tmp_path / "checkout"
    write(root, "app.py", "print('hi')\n")
    write(tmp_path, "outside-secret.txt", f"{OUTSIDE_MARKER}\n")
    os.symlink("/etc/passwd", root / "passwd-link")
    os.symlink("../outside-secret.txt", root / "outside-link")
    os.symlink("/etc", root / "etc-dir-link")

    files, skipped, _ = walk(root, SnapshotLimits())

    assert [f.path for f in files] == ["app.py"]
    assert skipped == {
        "passwd-link": "not a regular file",
        "outside-link": "not a regular file",
        "etc-dir-link": "not a regular file",
    }


def test_the_huge_file_and_the_binary_are_skipped_by_every_scanner(hostile):
    seen = hostile["seen"]

    assert seen["skipped"] == {"huge.py": f"larger than {LIMITS.max_file_bytes} bytes", "blob.bin": "binary"}
    assert "huge.py" not in seen["paths"] and "blob.bin" not in seen["paths"]
    # gone from the checkout before the scanners run, so the tools that walk it themselves skip them too
    assert "huge.py" not in seen["on_disk"] and "blob.bin" not in seen["on_disk"]
    findings = [f for rows in hostile["report"].findings.values() for f in rows]
    assert [f for f in findings if f["file_path"] in ("huge.py", "blob.bin")] == []
    written = everything_written(hostile)
    assert HUGE_KEY not in written and BINARY_KEY not in written


def test_yaml_bombs_are_refused_with_a_clear_error(hostile):
    # checkov expands aliases (it held 12 GB and growing on this file): it is not given the bombs at all
    refused = {
        (r["scanner"], r["path"]) for r in hostile["report"].extra["skipped_files"] if "YAML bomb" in r["reason"]
    }
    assert refused == {("checkov", "bitbucket-pipelines.yml"), ("checkov", "k8s/bomb.yaml")}
    # the posture checks' parser refuses the pipelines file with a clear error
    with pytest.raises(PipelinesYmlError, match="YAML bomb"):
        parse((hostile["source"] / "bitbucket-pipelines.yml").read_text())
    pipeline_checks = [r for r in hostile["posture"] if r["check_id"] in ("BB-027", "BB-030")]
    assert pipeline_checks and {r["status"] for r in pipeline_checks} == {"not_evaluable"}
    assert all("YAML bomb" in r["evidence"] for r in pipeline_checks)


def test_odd_file_names_are_scanned_like_any_other(hostile):
    seen = hostile["seen"]

    assert {f"odd/{name}" for name in ODD_NAMES} <= set(seen["paths"])
    # bandit and semgrep both find the shell=True call in every one of them. The finding model reads a
    # backslash as a Windows separator (normalise_path), so `back\slash.py` is reported as `back/slash.py`.
    for scanner, rule in (("bandit", "B602"), ("semgrep", None)):
        hits = {
            f["file_path"]
            for f in hostile["report"].findings[scanner]
            if f["file_path"].startswith("odd/") and (rule is None or f["rule_id"] == rule)
        }
        assert hits == {normalise_path(f"odd/{name}") for name in ODD_NAMES}, scanner


def test_no_submodule_is_fetched(hostile):
    assert hostile["seen"]["submodule_dirs"] == {"vendor/ext": [], "vendor/local": []}
    assert not (hostile["tmp"] / "ext-transport-ran").exists()
    assert SUBMODULE_MARKER not in everything_written(hostile)


def test_no_hook_runs_on_checkout(hostile, tmp_path):
    # Our clone ran neither the template's hook nor the committed ones, and its .git has no hooks at all.
    assert not hostile["hook_marker"].exists()
    assert not (hostile["tmp"] / "committed-hook-ran").exists()
    assert hostile["seen"]["hooks"] == []

    # The trap was armed: a plain clone in the same environment runs the template's hook.
    env = {**os.environ, "GIT_TEMPLATE_DIR": str(hostile["template"])}
    subprocess.run(["git", "clone", "--quiet", str(hostile["source"]), str(tmp_path / "plain")], env=env, check=True)
    assert hostile["hook_marker"].read_text().strip() == str(tmp_path / "plain")
    hostile["hook_marker"].unlink()
