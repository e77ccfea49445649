"""Layering: product code never imports the sandbox (the test double of Bitbucket and OSV)."""

from __future__ import annotations

import ast
from pathlib import Path

import ox_bb_pipeline

PACKAGE = Path(ox_bb_pipeline.__file__).parent
SANDBOX = "ox_bb_sandbox"
# The app layer starts the sandbox for `ox-bb sandbox serve`, `ox-bb demo` and the dev UI, importing it
# inside those commands only. The restructure (issue 13) moves these modules into `app/` and the sandbox
# into its own package; until then they are the only modules allowed to name it.
APP_MODULES_THAT_START_THE_SANDBOX = {"ox_bb_pipeline.app.cli", "ox_bb_pipeline.app.devui"}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def sandbox_imports(source: str, module: str, is_package: bool = False) -> list[tuple[int, bool]]:
    """(line, at module level) of every import of the sandbox package in `source`, absolute or relative."""
    package = module.split(".") if is_package else module.split(".")[:-1]
    tree = ast.parse(source)
    top_level = {id(node) for node in tree.body}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - (node.level - 1)] if node.level else []
            prefix = ".".join(base + ([node.module] if node.module else []))
            names = [prefix] + [f"{prefix}.{alias.name}" for alias in node.names]
        else:
            continue
        if any(n == SANDBOX or n.startswith(SANDBOX + ".") for n in names):
            found.append((node.lineno, id(node) in top_level))
    return found


def _product_modules() -> list[Path]:
    return [p for p in sorted(PACKAGE.rglob("*.py")) if not _module_name(p).startswith(SANDBOX)]


def test_no_product_module_imports_the_sandbox():
    offenders = {}
    for path in _product_modules():
        module = _module_name(path)
        hits = sandbox_imports(path.read_text(), module, path.name == "__init__.py")
        if module in APP_MODULES_THAT_START_THE_SANDBOX:
            hits = [hit for hit in hits if hit[1]]  # lazily, inside the commands, is allowed
        if hits:
            offenders[module] = [line for line, _ in hits]
    assert offenders == {}


def test_the_checker_sees_relative_absolute_and_nested_imports():
    source = ("from ox_bb_sandbox.content import advisories_dir\nimport ox_bb_sandbox.server\n"
              "from .ecosystems import name_key\nfrom ... import clock\n"
              "def f():\n    import ox_bb_sandbox\n")
    assert sandbox_imports(source, "ox_bb_pipeline.scanners.sca.osv") == [(1, True), (2, True), (6, False)]
    assert sandbox_imports("from ox_bb_sandbox import server\n", "ox_bb_pipeline", is_package=True) == [(1, True)]
