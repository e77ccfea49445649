"""What every code scanner provides, and how tool environments and severity tables are found.

A code scanner takes a batch of snapshots (process-heavy tools run once per batch) and returns
one `ScanOutput` per snapshot. A failure on one snapshot is that snapshot's `error`, never an
exception that loses the others.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Protocol

import yaml

from .finding import Finding
from .snapshot import Snapshot

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
    extra: dict = field(default_factory=dict)  # scanner-specific tables (e.g. SCA components)


class CodeScanner(Protocol):
    name: str  # short, stable: secrets | bandit | semgrep | checkov | sca
    category: str

    def version(self) -> str:
        """Tool version + rules version; results are cached by commit + this string."""

    def scan(self, snapshots: list[Snapshot]) -> list[ScanOutput]:
        """One output per snapshot, in order."""


def tool_executable(tool: str, executable: str | None = None) -> Path:
    """A tool from its own environment (`.tools/<tool>/bin/<exe>`, made by `make tools`);
    `OX_BB_TOOLS_DIR` moves the environments elsewhere."""
    root = Path(os.environ.get("OX_BB_TOOLS_DIR", PROJECT_ROOT / ".tools"))
    path = root / tool / "bin" / (executable or tool)
    if not path.exists():
        raise FileNotFoundError(f"{tool} is not installed at {path}; run `make tools` (or set OX_BB_TOOLS_DIR)")
    return path


@lru_cache(maxsize=None)
def severity_table(scanner: str) -> dict[str, dict]:
    """`severity/<scanner>.yaml`: rule id -> {severity, title?, remediation?, cwe?}, plus `default`."""
    path = SEVERITY_DIR / f"{scanner}.yaml"
    return yaml.safe_load(path.read_text()) or {}


def rules_digest(*paths: Path) -> str:
    """A short hash of rule files, so a rules change invalidates cached results."""
    digest = hashlib.sha256()
    for path in sorted(p for root in paths for p in (root.rglob("*") if root.is_dir() else [root]) if p.is_file()):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]
