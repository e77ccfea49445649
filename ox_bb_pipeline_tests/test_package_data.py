"""Package data and tool locations: found the same way from a checkout and from a wheel (test_wheel.py), and a
missing piece is an error that names it, never an empty list."""

from __future__ import annotations

from pathlib import Path

import pytest

from ox_bb_pipeline.scanners import base
from ox_bb_pipeline.warehouse.models import SQL_DIR, discover
from ox_bb_pipeline.warehouse.project import PackageDataError, sql_project_dir

ROOT = Path(__file__).resolve().parents[1]


def test_the_sql_project_is_the_top_level_sql_folder_of_a_checkout():
    assert sql_project_dir() == SQL_DIR == (ROOT / "sql").resolve()
    assert {m.name for m in discover()} >= {"findings", "findings_queue", "compliance_report"}


def test_a_missing_or_empty_sql_folder_is_an_error_naming_it(tmp_path):
    with pytest.raises(PackageDataError, match=f"{tmp_path / 'nowhere'} is not a folder"):
        discover(tmp_path / "nowhere")
    with pytest.raises(PackageDataError, match=f"{tmp_path} holds no dbt project and no \\*.sql file"):
        discover(tmp_path)


def test_the_tools_folder_is_a_setting_with_the_checkouts_dot_tools_as_default(monkeypatch, tmp_path):
    monkeypatch.setenv("OX_BB_TOOLS_DIR", str(tmp_path / "tools"))
    assert base.tools_dir() == tmp_path / "tools"
    with pytest.raises(FileNotFoundError, match=f"semgrep is not installed at {tmp_path / 'tools'}/semgrep/bin"):
        base.tool_executable("semgrep")
    monkeypatch.delenv("OX_BB_TOOLS_DIR")
    assert base.tools_dir() == ROOT / ".tools"
    # An installed package (no pyproject.toml above it) has no default: it says what to set.
    monkeypatch.setattr(base, "PROJECT_ROOT", tmp_path)
    with pytest.raises(FileNotFoundError, match="OX_BB_TOOLS_DIR is not set"):
        base.tools_dir()
