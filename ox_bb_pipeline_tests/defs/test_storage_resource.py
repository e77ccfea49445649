"""The `storage` resource: where assets find the data home and the tools. Empty fields fall back to
OX_BB_HOME / OX_BB_TOOLS_DIR, which only config.data_home_setting() and scanners.base.tools_dir() read."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import ox_bb_pipeline
from ox_bb_pipeline.definitions import defs
from ox_bb_pipeline.defs.storage.resources import StorageResource

PACKAGE = Path(ox_bb_pipeline.__file__).parent
READERS = {"OX_BB_HOME": {"config.py:data_home_setting"}, "OX_BB_TOOLS_DIR": {"scanners/base.py:tools_dir"}}


def test_an_empty_resource_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("OX_BB_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("OX_BB_TOOLS_DIR", str(tmp_path / "tools"))
    storage = StorageResource()

    assert storage.home_path() == tmp_path / "home"
    assert storage.lake() == tmp_path / "home" / "lake"
    assert storage.warehouse() == tmp_path / "home" / "warehouse.duckdb"
    assert storage.tools_path() == tmp_path / "tools"


def test_configured_paths_win_over_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("OX_BB_HOME", str(tmp_path / "ignored"))
    storage = StorageResource(home=str(tmp_path / "home"), tools=str(tmp_path / "tools"))

    assert (storage.home_path(), storage.lake(), storage.tools_path()) == (
        tmp_path / "home",
        tmp_path / "home" / "lake",
        tmp_path / "tools",
    )


def test_the_code_location_provides_the_resource():
    assert isinstance(defs().resources["storage"], StorageResource)


def environment_reads(source: str) -> list[tuple[str, str]]:
    """(variable, enclosing function) for every string constant naming an OX_BB_ path variable that is
    an argument or subscript of an `os.environ` / `os.getenv` access."""
    found = []

    def visit(node: ast.AST, function: str) -> None:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            function = node.name
        if isinstance(node, ast.Call | ast.Subscript):
            accessed = ast.unparse(node.func if isinstance(node, ast.Call) else node.value)
            if accessed.startswith(("os.environ", "os.getenv", "environ")):
                for child in ast.walk(node):
                    if isinstance(child, ast.Constant) and child.value in READERS:
                        found.append((child.value, function))
        for child in ast.iter_child_nodes(node):
            visit(child, function)

    visit(ast.parse(source), "<module>")
    return found


def test_one_function_reads_each_location_variable():
    readers = {name: set() for name in READERS}
    for path in PACKAGE.rglob("*.py"):
        for name, function in environment_reads(path.read_text()):
            readers[name].add(f"{path.relative_to(PACKAGE).as_posix()}:{function}")
    assert readers == READERS


def test_the_reader_check_sees_get_and_subscript():
    source = (
        "import os\ndef a():\n    return os.environ.get('OX_BB_HOME')\n"
        "def b():\n    return os.environ['OX_BB_TOOLS_DIR']\n"
    )
    assert environment_reads(source) == [("OX_BB_HOME", "a"), ("OX_BB_TOOLS_DIR", "b")]


# Modules that may name the data home from the environment (`config.data_home()`): config itself, the CLI/app
# layer that builds the `storage` resource and passes the home to core functions, and the resource's default.
# Every other function takes its home (or a folder under it) from its caller.
HOME_NAMERS = {"config.py", "app/cli.py", "app/warehouse_cli.py", "app/runner.py", "defs/storage/resources.py"}


def home_namers(source: str) -> bool:
    """Whether the module imports or uses `data_home` / `data_home_setting` (reading OX_BB_HOME through config)."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and any(a.name in ("data_home", "data_home_setting") for a in node.names):
            return True
        if isinstance(node, ast.Name | ast.Attribute):
            name = node.id if isinstance(node, ast.Name) else node.attr
            if name in ("data_home", "data_home_setting"):
                return True
    return False


def test_only_config_and_the_app_layer_name_the_data_home_core_functions_and_assets_are_given_it():
    namers = {path.relative_to(PACKAGE).as_posix() for path in PACKAGE.rglob("*.py") if home_namers(path.read_text())}
    assert namers - HOME_NAMERS == set()
    assert HOME_NAMERS <= namers  # a stale entry fails too


def test_the_home_check_sees_imports_calls_and_attributes():
    assert home_namers("from ox_bb_pipeline.config import data_home\n")
    assert home_namers("from .. import config\nhome = config.data_home()\n")
    assert home_namers("def f(home=None):\n    return home or data_home_setting()\n")
    assert not home_namers("def f(home):\n    return home / 'lake'\n")


def test_the_tool_scanners_run_their_tools_from_the_given_folder(tmp_path):
    from ox_bb_pipeline.scanners.stage import default_scanners

    tools = tmp_path / "tools"
    using = {s.name: s.tools for s in default_scanners(tools) if hasattr(s, "tools")}
    assert using == {"semgrep": tools, "checkov": tools}
    for scanner in default_scanners(tools):
        if hasattr(scanner, "tools"):
            with pytest.raises(FileNotFoundError, match=str(tools / scanner.name / "bin")):
                scanner.version()  # nothing installed there: the folder given wins over OX_BB_TOOLS_DIR
