"""The import contracts of pyproject.toml ([tool.importlinter]): the layers app -> defs -> {warehouse, quality}
-> scanners -> {bitbucket, advisories} -> core, no import cycles, and the product never importing the sandbox.

`lint-imports` (import-linter) checks them on the real code; each kind of violation is then planted in a copy of
the packages, to show the check catches it (function-local imports included)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = str(Path(sys.executable).with_name("lint-imports"))
PACKAGES = ("ox_bb_pipeline", "ox_bb_sandbox")


def lint_imports(root: Path) -> subprocess.CompletedProcess:
    # --no-cache: nothing written into the checkout; PYTHONPATH: the packages under `root`, not an installed copy
    return subprocess.run(
        [LINT_IMPORTS, "--config", str(ROOT / "pyproject.toml"), "--no-cache"],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_code_keeps_every_import_contract():
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 3 kept, 0 broken." in result.stdout


PLANTED = {  # case: (file, code appended to it, what the report must say)
    "upward import (bitbucket -> scanners)": (
        "ox_bb_pipeline/bitbucket/errors.py",
        "\nfrom ..scanners import base  # noqa\n",
        [
            "ox_bb_pipeline.bitbucket is not allowed to import ox_bb_pipeline.scanners",
            "ox_bb_pipeline.bitbucket.errors -> ox_bb_pipeline.scanners.base",
        ],
    ),
    "the product imports the sandbox, inside a function": (
        "ox_bb_pipeline/scanners/sca/osv.py",
        "\ndef _planted():\n    from ox_bb_sandbox.content import advisories_dir\n",
        ["The product never imports the sandbox BROKEN", "ox_bb_pipeline.scanners.sca.osv -> ox_bb_sandbox.content"],
    ),
    "a cycle between two sibling modules": (
        "ox_bb_pipeline/scanners/planted_a.py",
        "from . import planted_b  # noqa\n",
        [
            "No import cycles between sibling packages or modules BROKEN",
            "No cycles are allowed in ox_bb_pipeline.scanners",
        ],
    ),
    "a top-level module the layers do not place": (
        "ox_bb_pipeline/planted.py",
        "X = 1\n",
        ["The following modules are not listed as layers:", "- ox_bb_pipeline.planted"],
    ),
}


@pytest.mark.parametrize("case", sorted(PLANTED))
def test_a_planted_violation_breaks_its_contract(tmp_path, case):
    for package in PACKAGES:
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    path, code, expected = PLANTED[case]
    target = tmp_path / path
    target.write_text((target.read_text() if target.exists() else "") + code)
    if case.startswith("a cycle"):
        (tmp_path / "ox_bb_pipeline/scanners/planted_b.py").write_text("from . import planted_a  # noqa\n")

    result = lint_imports(tmp_path)

    assert result.returncode == 1, result.stdout + result.stderr
    assert "0 broken" not in result.stdout
    for text in expected:
        assert text in result.stdout, result.stdout
