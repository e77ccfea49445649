"""What every code scanner provides, and how tool environments and severity tables are found.

A code scanner takes a batch of snapshots (process-heavy tools run once per batch) and returns
one `ScanOutput` per snapshot. A failure on one snapshot is that snapshot's `error`, never an
exception that loses the others.
"""

from __future__ import annotations

import hashlib
import math
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Protocol

import yaml

from ..files import load_yaml
from ..findings import Finding, RepoRef
from .snapshot import Snapshot, is_marker

PACKAGE_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = PACKAGE_DIR.parent.parent
SEVERITY_DIR = PACKAGE_DIR / "severity"


@dataclass
class ScanOutput:
    repository_uuid: str
    findings: list[Finding] = field(default_factory=list)
    files_scanned: int = 0
    bytes_scanned: int = 0
    error: str | None = None  # set when the scanner failed or timed out on this snapshot
    not_evaluable: str | None = None  # why part of it could not be judged (e.g. no advisory data for npm)
    extra: dict = field(default_factory=dict)  # scanner-specific tables (e.g. SCA components)


class CodeScanner(Protocol):
    name: str  # short, stable: secrets | bandit | semgrep | checkov | sca
    category: str

    def version(self) -> str:
        """Tool version + rules version; results are cached by commit + this string."""

    def scan(self, snapshots: list[Snapshot]) -> list[ScanOutput]:
        """One output per snapshot, in order."""


def tools_dir() -> Path:
    """Where the scanners' own environments are: `OX_BB_TOOLS_DIR`, else `.tools` beside the project when run
    from a checkout (where `make tools` puts them). An installed package has no such place: it must be set."""
    configured = os.environ.get("OX_BB_TOOLS_DIR", "").strip()
    if configured:
        return Path(configured)
    if (PROJECT_ROOT / "pyproject.toml").is_file():
        return PROJECT_ROOT / ".tools"
    raise FileNotFoundError(
        "OX_BB_TOOLS_DIR is not set: point it at the folder holding the semgrep and checkov "
        "environments (<dir>/<tool>/bin/<tool>; `make tools` builds them in a checkout)"
    )


def tool_executable(tool: str, executable: str | None = None, root: Path | None = None) -> Path:
    """A tool from its own environment (`<tools dir>/<tool>/bin/<exe>`, made by `make tools`); `root` defaults
    to tools_dir()."""
    path = (root or tools_dir()) / tool / "bin" / (executable or tool)
    if not path.exists():
        raise FileNotFoundError(f"{tool} is not installed at {path}; run `make tools` (or set OX_BB_TOOLS_DIR)")
    return path


@cache
def severity_table(scanner: str) -> dict[str, dict]:
    """`severity/<scanner>.yaml`: rule id -> {severity, title?, remediation?, cwe?}, plus `default`."""
    path = SEVERITY_DIR / f"{scanner}.yaml"
    return load_yaml(path.read_text()) or {}


# Aliases let a few lines of YAML stand for billions of nodes ("billion laughs"): a tool that walks the
# loaded document never finishes, or exhausts memory first (checkov took 12 GB and counting). Real files
# gain a few hundred nodes through aliases at most.
YAML_ALIAS_LIMIT = 100_000


def yaml_alias_expansion(path: Path) -> float:
    """How many nodes a YAML file gains once its aliases are expanded (0 without aliases; infinite when
    it nests deeper than can be followed). Costs the file's size, not its expansion: aliases stay
    shared nodes in the composed graph, counted once each."""
    sizes: dict[int, int] = {}

    def expanded(node) -> int:
        if id(node) not in sizes:
            sizes[id(node)] = 1  # a recursive alias counts once
            if isinstance(node, yaml.SequenceNode):
                sizes[id(node)] += sum(expanded(child) for child in node.value)
            elif isinstance(node, yaml.MappingNode):
                sizes[id(node)] += sum(expanded(key) + expanded(value) for key, value in node.value)
        return sizes[id(node)]

    try:
        documents = list(
            yaml.compose_all(
                path.read_text(encoding="utf-8", errors="replace"), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)
            )
        )
        return sum(expanded(document) for document in documents if document is not None) - len(sizes)
    except yaml.YAMLError:
        return 0  # not YAML a tool could load either
    except RecursionError:
        return math.inf


def rules_digest(*paths: Path) -> str:
    """A short hash of rule files, so a rules change invalidates cached results."""
    digest = hashlib.sha256()
    for path in sorted(p for root in paths for p in (root.rglob("*") if root.is_dir() else [root]) if p.is_file()):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


# -- running a tool from its own environment over a batch of snapshots ----------------------------
class BatchRoots:
    """Attributes an absolute path from a batch run to the snapshot whose root holds it."""

    def __init__(self, snapshots: list[Snapshot]) -> None:
        self.roots = {s.root.resolve(): i for i, s in enumerate(snapshots)}

    def owner(self, path: str) -> tuple[int, str] | None:
        """(snapshot index, repository-relative path), or None for a path outside every root. The innermost
        root wins (a root nested in another is never expected); a lookup per folder up the path, not a test
        per root: a shard's batch has hundreds of roots and thousands of paths."""
        if not path:
            return None
        resolved = Path(path).resolve()
        for folder in (resolved, *resolved.parents):
            if (index := self.roots.get(folder)) is not None:
                return index, resolved.relative_to(folder).as_posix()
        return None


def batch_targets(roots: list[Path]) -> list[Path]:
    """The fewest folders to give a tool for `roots`: a folder that holds those roots and nothing else
    (snapshot markers and empty folders aside) stands for all of them. The scan stage lays each batch out
    in a folder of its own, so a whole batch is one target: semgrep and checkov set up per target (checkov
    ~0.5 s of CPU a `-d`, semgrep ~0.1 s), and the same findings come out (path attribution by BatchRoots).
    A root that does not exist is passed as it is, for the tool to report."""
    wanted = {Path(r).resolve() for r in roots}
    present = {r for r in wanted if r.is_dir()}
    if len(present) < 2:
        return sorted(wanted)
    ancestors = {a for r in present for a in r.parents}

    def cover(folder: Path) -> tuple[bool, list[Path]]:  # (holds only roots, the targets within it)
        if folder in present:
            return True, [folder]
        pure, targets = True, []
        for entry in os.scandir(folder):
            path = Path(entry.path)
            if path in present or path in ancestors:
                inner_pure, inner = cover(path)
                pure, targets = pure and inner_pure, targets + inner
            elif entry.is_symlink() or not _holds_only_markers(path):
                pure = False
        return (True, [folder]) if pure else (False, targets)

    _, targets = cover(Path(os.path.commonpath(present)))
    return sorted(targets) + sorted(wanted - present)


def _holds_only_markers(path: Path) -> bool:
    """A snapshot marker file, or a folder with nothing but those (a repository whose clone failed)."""
    if path.is_file():
        return is_marker(path.name)
    return all(is_marker(name) for _, _, names in os.walk(path) for name in names)


def isolating_failures(
    snapshots: list[Snapshot],
    scan: Callable[[list[Snapshot], str], list[ScanOutput]],
    tool: str,
    version: Callable[[], str],
) -> list[ScanOutput]:
    """`scan(part, version)` (one tool process) over the whole batch; when the tool fails on it, over each
    half again, down to the repository that makes it fail, so that a bad repository fails alone however large
    the batch. A tool whose version cannot be read (it cannot start) is every snapshot's error. A timeout is
    not split (each half could cost the time limit again), and splitting stops after 2·log2(n) + 1 more runs
    (a tool that fails on everything): the rest is reported failed."""
    if not snapshots:
        return []

    def failed(part: list[Snapshot], exc: Exception) -> list[ScanOutput]:
        error = f"{tool} failed on the batch: {type(exc).__name__}: {exc}"
        return [ScanOutput(s.repo.repository_uuid, error=error) for s in part]

    try:
        tool_version = version()
    except Exception as exc:  # noqa: BLE001 - a tool that cannot start is every snapshot's error
        return failed(snapshots, exc)
    budget = [2 * math.ceil(math.log2(len(snapshots))) + 1 if len(snapshots) > 1 else 0]

    def attempt(part: list[Snapshot]) -> list[ScanOutput]:
        try:
            return scan(part, tool_version)
        except Exception as exc:  # noqa: BLE001 - a failed batch is its snapshots' error, never the run's
            if isinstance(exc, TimeoutError) or len(part) == 1 or budget[0] < 2:
                return failed(part, exc)
            budget[0] -= 2
            middle = len(part) // 2
            return attempt(part[:middle]) + attempt(part[middle:])

    return attempt(snapshots)


def skipped_file(repo: RepoRef, scanner: str, path: str, reason: str) -> dict:
    """A row of the `skipped_files` extra table (the same shape from every scanner)."""
    return {
        "connection": repo.connection,
        "workspace": repo.workspace,
        "repository_uuid": repo.repository_uuid,
        "repository": repo.repository,
        "commit": repo.commit,
        "scanner": scanner,
        "path": path,
        "reason": reason,
    }


# The leader of a tool's process group: it asks the kernel for SIGTERM when the pipeline dies (even by
# SIGKILL, when no handler of ours runs), and then kills the whole group: the tool and its workers. A
# death signal set on the tool itself would not reach its workers (it is not inherited across fork).
_GROUP_LEADER = r"""
import ctypes, os, signal, subprocess, sys
def stop(*_):
    os.killpg(0, signal.SIGKILL)
signal.signal(signal.SIGTERM, stop)
prctl = getattr(ctypes.CDLL(None, use_errno=True), "prctl", None)  # Linux only
if prctl is not None:
    prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG
if os.getppid() != int(sys.argv[1]):  # the pipeline died before the request was made
    stop()
code = subprocess.call(sys.argv[2:])
sys.exit(128 - code if code < 0 else code)
"""


def run_tool(
    argv: list[str],
    *,
    timeout: float,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    keep_stdout: bool = True,
) -> subprocess.CompletedProcess:
    """Run a tool-environment executable in its own process group, so that a timeout also kills its
    workers (semgrep-core, checkov's pool), not only the Python entry point; raises TimeoutError.
    The group dies with the pipeline process too (see `_GROUP_LEADER`), so a killed run leaves no tool
    running over a checkout."""
    # the main venv's interpreter settings would leak into the tool's own environment
    base = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    leader = [sys.executable, "-I", "-c", _GROUP_LEADER, str(os.getpid())]
    with subprocess.Popen(
        [*leader, *argv],
        cwd=cwd,
        env={**base, **(env or {})},
        stdout=subprocess.PIPE if keep_stdout else subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    ) as proc:
        try:
            stdout, stderr = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            raise TimeoutError(f"{Path(argv[0]).name} timed out after {timeout:g} s") from None
        except BaseException:  # Ctrl-C or a stop request: leaving the `with` would wait for the tool to finish
            os.killpg(proc.pid, signal.SIGKILL)
            raise
    return subprocess.CompletedProcess(argv, proc.returncode, stdout, stderr)


def installed_version(
    tool: str,
    version_argv: tuple[str, ...] = ("--version",),
    env: dict[str, str] | None = None,
    root: Path | None = None,
) -> str:
    """A tool's version, once per process and tool environment: from the environment's package
    metadata (instant), else from `<tool> --version` (semgrep and checkov take 10-20 s to start)."""
    executable = str(tool_executable(tool, root=root))
    return _installed_version(executable, tool, version_argv, tuple(sorted((env or {}).items())))


@cache
def _installed_version(
    executable: str, tool: str, version_argv: tuple[str, ...], env: tuple[tuple[str, str], ...]
) -> str:
    environment = Path(executable).parent.parent
    for site in sorted(environment.glob("lib/python*/site-packages")):
        for dist in metadata.distributions(name=tool, path=[str(site)]):
            return dist.version
    proc = run_tool([executable, *version_argv], timeout=120, env=dict(env))
    if proc.returncode != 0:
        raise RuntimeError(f"{tool} --version failed: {last_line(proc.stderr)}")
    return proc.stdout.strip().splitlines()[-1]


def last_line(text: str) -> str:
    lines = [line for line in (text or "").strip().splitlines() if line.strip()]
    return lines[-1][:500] if lines else ""
