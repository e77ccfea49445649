"""Declared dependencies match the imports: every third-party module the product imports comes from a
distribution pinned in pyproject's `dependencies` (the tests may also use the `test` extra), and every
pinned distribution is imported or named below as needed at run time without an import."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
FIRST_PARTY = ("ox_bb_pipeline", "ox_bb_pipeline_tests", "ox_bb_sandbox")
# Semgrep's rule fixtures: code the rules must match, never run (flask, django, Crypto, …).
NOT_RUN = ("scanners/rules/",)
# Pinned but never imported by name: why each one is needed.
USED_WITHOUT_IMPORT = {
    "dagster-webserver",  # `dagster dev` and the production UI
    "dagster-postgres",  # named as a module in deploy/dagster.yaml
    "sqlalchemy",  # a pin only: dagster-postgres breaks on 2.1
    "dbt-core",
    "dbt-duckdb",
    "dagster-dbt",  # the warehouse on dbt (issue 13)
    "pytest-xdist",
    "pytest-timeout",  # pytest plugins
    "import-linter",
    "ruff",  # command-line checks
}


def _name(requirement: str) -> str:
    """`bandit[sarif]==1.9.4` → `bandit`, normalised as PEP 503 does."""
    return re.sub(r"[-_.]+", "-", re.split(r"[\[=<>!~; ]", requirement, maxsplit=1)[0]).lower()


def declared() -> tuple[set[str], set[str], set[str]]:
    """(dependencies, the `test` extra, every other extra) as normalised distribution names."""
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    extras = project.get("optional-dependencies", {})
    return (
        {_name(r) for r in project["dependencies"]},
        {_name(r) for r in extras.get("test", [])},
        {_name(r) for group, rs in extras.items() if group != "test" for r in rs},
    )


def packages() -> list[Path]:
    """The product packages: ox_bb_pipeline, and ox_bb_sandbox once the sandbox is a package of its own."""
    return [REPO_ROOT / name for name in ("ox_bb_pipeline", "ox_bb_sandbox") if (REPO_ROOT / name).is_dir()]


def third_party_imports(root: Path) -> dict[str, set[str]]:
    """Top-level module → the files importing it, for absolute imports outside the standard library."""
    found: dict[str, set[str]] = {}
    for path in sorted(root.rglob("*.py")):
        relative = path.relative_to(REPO_ROOT).as_posix()
        if any(part in relative for part in NOT_RUN):
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules = [node.module]
            else:
                continue
            for module in modules:
                top = module.split(".")[0]
                if top not in sys.stdlib_module_names and top != "__future__" and not top.startswith(FIRST_PARTY):
                    found.setdefault(top, set()).add(relative)
    return found


def undeclared(imports: dict[str, set[str]], allowed: set[str]) -> dict[str, list[str]]:
    distributions = packages_distributions()
    missing = {}
    for module, files in imports.items():
        names = {_name(d) for d in distributions.get(module, [module])}
        if not names & allowed:
            missing[f"{module} ({', '.join(sorted(names))})"] = sorted(files)[:3]
    return missing


def test_every_product_import_is_a_declared_dependency():
    runtime, _, extras = declared()
    assert undeclared(third_party_imports(REPO_ROOT / "ox_bb_pipeline"), runtime) == {}
    for package in packages()[1:]:  # the sandbox may take its own extra
        assert undeclared(third_party_imports(package), runtime | extras) == {}


def test_every_test_import_is_declared_for_the_tests():
    runtime, test, extras = declared()
    assert undeclared(third_party_imports(REPO_ROOT / "ox_bb_pipeline_tests"), runtime | test | extras) == {}


def test_every_declared_dependency_is_used():
    runtime, test, extras = declared()
    distributions = packages_distributions()
    imported = set()
    for root in [*packages(), REPO_ROOT / "ox_bb_pipeline_tests"]:
        for module in third_party_imports(root):
            imported |= {_name(d) for d in distributions.get(module, [])}
    assert (runtime | test | extras) - imported - USED_WITHOUT_IMPORT == set()


def test_the_check_names_an_undeclared_import_and_its_distribution():
    imports = {"jinja2": {"somewhere.py"}, "yaml": {"somewhere.py"}}
    assert undeclared(imports, {"pyyaml"}) == {"jinja2 (jinja2)": ["somewhere.py"]}
