"""The one list of scanners. Everything that names scanners is derived from it: the scan stage's code
scanners (`stage.default_scanners()`), the lake finding tables and their Dagster assets
(`defs/scanning/assets.py`), the warehouse's inputs (`warehouse/runner.lake_inputs()`), the UNION of
findings in the dbt model `findings` (`dbt_vars()`), the warehouse assets' upstream keys and the
expectation suites (`quality/expectations.finding_suites()`).

Adding a scanner: its module (a `CodeScanner`), its severity map, its tests, and one `Scanner` entry in
`SCANNERS` below. Order matters only for display: it is the order of tables, assets and the UNION.

Two kinds: `code` scanners run in the scan stage on repository snapshots (their class is imported
lazily, by `factory`: tools take time to import); `connection` scanners are computed once per
connection by the scan asset itself from the raw tables or files (posture checks, SARIF imports).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from .base import CodeScanner

KINDS = ("code", "connection")


@dataclass(frozen=True)
class Scanner:
    """One scanner: where its code is, where its findings go and what checks them."""

    name: str  # short and stable: the `scanner` column, the lake table findings/<name>, asset <name>_findings
    kind: Literal["code", "connection"]
    categories: tuple[str, ...]  # finding categories it reports (finding.CATEGORIES)
    factory: str | Callable[[], CodeScanner] | None = None  # code scanners: "module:Class" (lazy) or a callable
    severity_map: str | None = None  # our per-rule severities, relative to scanners/ (None: from the tool/data)
    description: str = ""  # one line, for the asset and the docs
    guard_row_count: bool = True  # expectation suite: the table may not collapse from one run to the next

    def __post_init__(self) -> None:
        if not self.name.isidentifier() or self.name != self.name.lower():
            raise ValueError(f"scanner name {self.name!r} must be a lower-case identifier (it names tables)")
        if self.kind not in KINDS:
            raise ValueError(f"scanner {self.name}: kind must be one of {', '.join(KINDS)}, not {self.kind!r}")
        if (self.kind == "code") != (self.factory is not None):
            raise ValueError(f"scanner {self.name}: a code scanner needs a factory, a connection scanner has none")

    @property
    def lake_table(self) -> str:
        """The lake table lake/findings/<table>/connection=<name>/ (one finding schema)."""
        return self.name

    @property
    def asset_name(self) -> str:
        return f"{self.name}_findings"

    @property
    def warehouse_input(self) -> str:
        """The warehouse input (a view over the lake table) that sql/findings.sql reads."""
        return f"findings_{self.name}"

    @property
    def asset_kinds(self) -> set[str]:
        return {"parquet", "git"} if self.kind == "code" else {"parquet"}

    def create(self) -> CodeScanner:
        """A fresh instance of a code scanner."""
        if self.factory is None:
            raise TypeError(f"scanner {self.name} is computed per connection; it has no CodeScanner to create")
        if callable(self.factory):
            return self.factory()
        module, _, attribute = self.factory.partition(":")
        try:
            return getattr(importlib.import_module(module, __package__), attribute)()
        except (ImportError, AttributeError) as exc:
            raise ImportError(
                f"scanner {self.name}: cannot load its factory {self.factory!r} ({exc}); "
                "fix its entry in ox_bb_pipeline/scanners/registry.py"
            ) from exc


# fmt: off
SCANNERS: list[Scanner] = [
    Scanner("secrets", "code", ("secrets",), ".secrets:SecretsScanner", "severity/secrets.yaml",
            "Hard-coded secrets (detect-secrets and our detectors) and secret-looking pipeline variables."),
    Scanner("bandit", "code", ("sast",), ".bandit:BanditScanner", "severity/bandit.yaml",
            "Python SAST (bandit)."),
    Scanner("semgrep", "code", ("sast",), ".semgrep:SemgrepScanner", None,
            "SAST with semgrep and our rules (rules/<language>/<family>.yaml; severity in each rule)."),
    Scanner("checkov", "code", ("iac",), ".checkov:CheckovScanner", "severity/checkov.yaml",
            "Infrastructure as code (checkov)."),
    Scanner("sca", "code", ("sca",), ".sca:ScaScanner", None,
            "Vulnerable dependencies from manifests and lock files (OSV advisories; severity from CVSS)."),
    Scanner("git_history", "connection", ("secrets",), None, "severity/secrets.yaml",
            "Secrets removed from the tip but still in git history (opt-in per connection: history_scan).",
            guard_row_count=False),  # the connection may turn it off, or a limit may cut a full re-read short
    Scanner("posture", "connection", ("scm_posture", "cicd_posture"), None, "posture/catalog.yaml",
            "Bitbucket posture checks BB-001…BB-033 that failed (catalog.yaml)."),
    Scanner("sarif", "connection", ("external",), None, None,
            "Findings imported from SARIF files under OX_BB_HOME/imports (severity from the SARIF level)."),
]
# fmt: on


def scanners() -> list[Scanner]:
    """Every registered scanner, in order (read at call time, so a test may register one)."""
    return list(SCANNERS)


def names() -> tuple[str, ...]:
    return tuple(s.name for s in SCANNERS)


def get(name: str) -> Scanner:
    for entry in SCANNERS:
        if entry.name == name:
            return entry
    raise KeyError(f"no scanner {name!r} in the registry; known: {', '.join(names())}")


def code_scanners() -> list[Scanner]:
    return [s for s in SCANNERS if s.kind == "code"]


def finding_tables() -> tuple[str, ...]:
    """The lake finding tables (lake/findings/<table>), one per scanner."""
    return tuple(s.lake_table for s in SCANNERS)


def warehouse_inputs() -> tuple[str, ...]:
    """The warehouse inputs over those tables: findings_<scanner>."""
    return tuple(s.warehouse_input for s in SCANNERS)


def dbt_vars() -> dict[str, list[str]]:
    """The same list for a dbt project, passed by its invoker (`dbt build --vars '<json>'`, or
    dagster-dbt's `dbt.cli(["build", "--vars", json.dumps(dbt_vars())])`): a macro loops over
    `var('scanners')` to write the UNION of their findings."""
    return {"scanners": list(names())}


def register(entry: Scanner) -> None:
    """Add a scanner (tests, plug-ins). Its name must be new."""
    if entry.name in names():
        raise ValueError(f"scanner {entry.name!r} is already registered")
    SCANNERS.append(entry)


def unregister(name: str) -> None:
    SCANNERS.remove(get(name))


@contextmanager
def registered(entry: Scanner) -> Iterator[Scanner]:
    """The registry with `entry` added for the duration of the block."""
    register(entry)
    try:
        yield entry
    finally:
        unregister(entry.name)
