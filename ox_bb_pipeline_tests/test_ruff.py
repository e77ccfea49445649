"""Lint and format: `ruff check` and `ruff format --check` pass on the whole tree, with the settings in
pyproject.toml ([tool.ruff]: line length 120, rules E F W I B UP). `ruff check --fix` and
`ruff format` repair most of what this reports."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
RUFF = str(Path(sys.executable).with_name("ruff"))


@pytest.mark.parametrize(
    "command", [["check", "--output-format", "concise"], ["format", "--check"]], ids=["check", "format"]
)
def test_ruff_passes_on_the_tree(command):
    result = subprocess.run(
        [RUFF, *command, "--no-cache", "."], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300, check=False
    )

    assert result.returncode == 0, (result.stdout + result.stderr)[-6000:]


def test_ruff_reads_the_project_settings():
    """The settings above are the ones in force (a stray ruff.toml would override pyproject.toml)."""
    result = subprocess.run(
        [RUFF, "check", "--show-settings", "ox_bb_pipeline/__init__.py"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )

    assert f'Settings path: "{REPO_ROOT / "pyproject.toml"}"' in result.stdout
    assert "linter.line_length = 120" in result.stdout
