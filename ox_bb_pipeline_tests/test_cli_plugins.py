"""`ox-bb` loads commands from the `ox_bb.cli` entry point group (the sandbox's `sandbox` and `demo`), and works,
saying what to install, when a plug-in is missing or cannot load."""

from __future__ import annotations

import subprocess
import sys

import click
from click.testing import CliRunner

from ox_bb_pipeline.app.cli import PluginGroup, main

INSTALL_HINT = "pip install 'ox-bb-pipeline[sandbox]'"


def test_the_sandbox_plugs_its_commands_in_through_the_entry_point_group():
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0, result.output
    commands = result.output.split("Commands:")[1]
    assert "sandbox " in commands and "demo " in commands and "run " in commands
    assert main.get_command(click.Context(main), "demo").callback.__module__ == "ox_bb_sandbox.cli"


def test_without_plugins_the_product_cli_works_and_says_what_to_install():
    @click.group(cls=PluginGroup, plugin_group="ox_bb.no_such_group")
    def bare() -> None:
        """A product CLI with no plug-ins installed."""

    @bare.command("run")
    def run() -> None:
        click.echo("ran")

    runner = CliRunner()
    assert runner.invoke(bare, ["run"]).output == "ran\n"
    help_text = runner.invoke(bare, ["--help"]).output
    assert "run" in help_text and "demo" not in help_text and "sandbox" not in help_text
    for argv in (["demo"], ["demo", "--ui", "--port", "3001"], ["sandbox", "serve", "--port", "0"]):
        result = runner.invoke(bare, argv)
        assert result.exit_code == 2, result.output
        assert f"`ox-bb {argv[0]}` is" in result.output and "which is not installed" in result.output
        assert INSTALL_HINT in result.output
    unknown = runner.invoke(bare, ["nonsense"])
    assert unknown.exit_code == 2 and "No such command 'nonsense'" in unknown.output


def test_a_plugin_whose_extra_is_missing_is_left_out_with_the_reason():
    # A real interpreter in which werkzeug (a [sandbox] dependency) cannot be imported.
    code = (
        "import sys; sys.modules['werkzeug'] = None\n"
        "from ox_bb_pipeline.app.cli import main\n"
        "main(sys.argv[1:], prog_name='ox-bb')\n"
    )
    demo = subprocess.run([sys.executable, "-c", code, "demo"], capture_output=True, text=True, timeout=120)
    assert demo.returncode == 2, demo.stderr
    assert "`ox-bb demo` is the demo" in demo.stderr and INSTALL_HINT in demo.stderr
    assert "failed to load: ModuleNotFoundError" in demo.stderr and "werkzeug" in demo.stderr
    listing = subprocess.run([sys.executable, "-c", code, "--help"], capture_output=True, text=True, timeout=120)
    assert listing.returncode == 0 and "verify" in listing.stdout and "demo" not in listing.stdout
