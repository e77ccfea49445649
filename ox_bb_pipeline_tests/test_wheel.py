"""A wheel is the product: built from the checkout, it holds every data file the code reads (the SQL project,
semgrep rules, catalogs, templates, the tool lock files), and installed with the locked dependencies into a
fresh venv it runs `ox-bb demo` from a folder outside the repository, with nothing of the checkout on the path
but the scanners' own environments (OX_BB_TOOLS_DIR)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
UV = str(Path(sys.executable).with_name("uv"))
PACKAGES = ("ox_bb_pipeline", "ox_bb_sandbox")
BUILD_INPUTS = ("pyproject.toml", "README.md", "sql", *PACKAGES)
DEMO_SIZES = [
    "--workspaces",
    "1",
    "--projects",
    "1",
    "--repos",
    "2",
    "--branches",
    "0",
    "--pull-requests",
    "1",
    "--commits",
    "1",
]


def run(command: list[str], **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run(command, capture_output=True, text=True, **kwargs)
    assert result.returncode == 0, f"{command}: {result.returncode}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


def data_files() -> set[str]:
    """Every file of the packages that is not Python source, named as in the wheel (the sql/ symlink followed)."""
    found = set()
    for package in PACKAGES:
        for folder, dirs, names in os.walk(ROOT / package, followlinks=True):
            dirs[:] = [d for d in dirs if d != "__pycache__"]
            rel = Path(folder).relative_to(ROOT)
            found |= {(rel / name).as_posix() for name in names if not name.endswith((".py", ".pyc"))}
    return found


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel, built from a copy of the checkout (the build writes build/ and *.egg-info beside its input)."""
    tmp = tmp_path_factory.mktemp("wheel")
    (tmp / "src").mkdir()
    for name in BUILD_INPUTS:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, tmp / "src" / name, symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, tmp / "src" / name)
    run(
        [
            UV,
            "build",
            "--quiet",
            "--wheel",
            "--no-build-isolation",
            "--python",
            sys.executable,
            "--out-dir",
            str(tmp / "dist"),
            str(tmp / "src"),
        ],
        timeout=600,
    )
    (built,) = (tmp / "dist").glob("*.whl")
    return built


def test_the_wheel_holds_every_data_file_and_the_sql_project(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    missing = data_files() - names
    assert missing == set()
    sql = {n for n in names if n.startswith("ox_bb_pipeline/warehouse/sql/")}
    assert {
        f"ox_bb_pipeline/warehouse/sql/{p.relative_to(ROOT / 'sql').as_posix()}"
        for p in (ROOT / "sql").rglob("*")
        if p.is_file()
    } <= sql
    assert "ox_bb_pipeline/scanners/tools/semgrep.lock" in names
    assert "ox_bb_sandbox/templates/python-service/.gitignore.tmpl" in names  # dotfiles too
    assert not any(n.startswith("ox_bb_pipeline_tests/") for n in names)
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "[ox_bb.cli]" in text and "demo = ox_bb_sandbox.cli:demo_command" in text


@pytest.mark.timeout(1800)
def test_a_wheel_install_runs_the_demo_outside_the_repository(wheel, tmp_path):
    venv = tmp_path / "venv"
    run([UV, "venv", "--quiet", "--python", sys.executable, str(venv)], timeout=300)
    python = str(venv / "bin" / "python")
    # The locked versions, as `make install` does, then the wheel alone: no checkout, no editable install.
    run(
        [UV, "pip", "install", "--quiet", "--python", python, "--no-deps", "-r", str(ROOT / "requirements.lock")],
        timeout=900,
    )
    run([UV, "pip", "install", "--quiet", "--python", python, "--no-deps", str(wheel)], timeout=300)

    outside = tmp_path / "elsewhere"
    outside.mkdir()
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTHONPATH", "VIRTUAL_ENV") and not k.startswith(("OX_BB_", "DAGSTER_"))
    }
    env |= {"OX_BB_HOME": str(tmp_path / "home"), "OX_BB_TOOLS_DIR": str(ROOT / ".tools")}
    where = run(
        [python, "-c", "import ox_bb_pipeline, ox_bb_sandbox; print(ox_bb_pipeline.__file__)"],
        cwd=outside,
        env=env,
        timeout=120,
    )
    assert where.stdout.strip().startswith(str(venv)), where.stdout

    demo = run([str(venv / "bin" / "ox-bb"), "demo", *DEMO_SIZES], cwd=outside, env=env, timeout=1700)

    assert "warehouse ok:" in demo.stdout, demo.stdout
    assert "0 scanner errors" in demo.stdout and "Open findings by severity: critical" in demo.stdout
    assert (tmp_path / "home" / "warehouse.duckdb").is_file()
    assert (tmp_path / "home" / "reports" / "compliance.html").is_file()
    assert list(outside.iterdir()) == []  # nothing written where it was started
