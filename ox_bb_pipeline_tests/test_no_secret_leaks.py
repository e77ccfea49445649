"""No planted secret leaves the pipeline as itself: after extract and scan for two connections of a
sandbox, through Dagster as `ox-bb run` runs them, no planted value (nor any of the sandbox's
credentials) appears in any file under OX_BB_HOME or the Dagster home, nor in any event of Dagster's
event log.

Files are searched as bytes and also in the forms that would hide a value from a byte search:
Parquet (compressed columns and schema metadata) read back as rows, and git objects decompressed.
"""

from __future__ import annotations

import subprocess
import zlib
from pathlib import Path

import dagster as dg
import pyarrow.parquet as pq
import pytest

from ox_bb_pipeline.app.runner import run_stages
from ox_bb_pipeline_tests.conftest import SMALL
from ox_bb_sandbox.server import SandboxServer

CONNECTIONS = ("sandbox-token", "sandbox-app")


def searchable_forms(path: Path) -> list[bytes]:
    """The file's bytes, plus what they hold once decoded where compression would hide a value."""
    data = path.read_bytes()
    forms = [data]
    if path.suffix == ".parquet":
        table = pq.read_table(path)
        forms.append(repr((table.to_pylist(), table.schema.metadata)).encode())
    elif path.parent.parent.name == "objects" and len(path.parent.name) == 2:  # a loose git object
        forms.append(zlib.decompress(data))
    return forms


def git_objects(repository: Path) -> bytes:
    """Every object of a git repository (packed ones too), decompressed."""
    return subprocess.run(
        ["git", "--git-dir", str(repository), "cat-file", "--batch-all-objects", "--batch"],
        capture_output=True,
        check=True,
    ).stdout


def needles(value: str) -> list[str]:
    """The value, and for a multi-line one (a PEM key) each of its body lines."""
    lines = [line for line in value.splitlines() if len(line) >= 16 and not line.startswith("-----")]
    return [value, *lines] if len(lines) > 1 else [value]


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    root = tmp_path_factory.mktemp("leaks")
    home, dagster_home = root / "home", root / "dagster"
    dagster_home.mkdir()
    with (
        SandboxServer(SMALL) as server,
        pytest.MonkeyPatch.context() as patch,
        dg.DagsterInstance.local_temp(str(dagster_home)) as instance,
    ):
        patch.setenv("OX_BB_HOME", str(home))
        patch.delenv("OX_BB_SECRET_SALT", raising=False)  # the installation's own salt file, as in production
        connections = server.write_connections(root / "connections.yaml")  # outside both homes: holds credentials
        results = [
            result
            for name in CONNECTIONS
            for result in run_stages("scan", connections, name, progress=lambda line: None, dagster_instance=instance)
        ]
        planted = [p for p in server.world.planted if p.get("value")]
        planted += [{"kind": "credential", "rule": name, "value": value} for name, value in server.secrets().items()]
        runs = instance.get_runs()
        events = {run.run_id: str(instance.all_logs(run.run_id)) for run in runs}
        yield {"results": results, "planted": planted, "home": home, "dagster_home": dagster_home, "events": events}


def leaks(pipeline, where: dict[str, list[bytes]]) -> list[tuple[str, str, str]]:
    """(kind, rule, place) for every planted value found in `where` (place -> searchable forms)."""
    found = []
    for planted in pipeline["planted"]:
        for needle in needles(planted["value"]):
            places = [place for place, forms in where.items() if any(needle.encode() in form for form in forms)]
            found += [(planted["kind"], planted["rule"], place) for place in places]
    return sorted(set(found))


def test_the_pipeline_ran_and_found_the_planted_secrets(pipeline):
    # Without this, an empty home would pass the searches below.
    assert [(r.stage, r.connection, r.success) for r in pipeline["results"]] == [
        (stage, name, True) for name in CONNECTIONS for stage in ("extract", "scan")
    ]
    assert pipeline["events"] and all(pipeline["events"].values())
    findings = pq.read_table(pipeline["home"] / "lake/findings/secrets/connection=sandbox-token/data.parquet")
    assert findings.num_rows >= len([p for p in pipeline["planted"] if p["kind"] == "secret"])


def test_no_planted_secret_in_any_file_under_the_data_home(pipeline):
    home = pipeline["home"]
    files = {str(p.relative_to(home)): searchable_forms(p) for p in sorted(home.rglob("*")) if p.is_file()}
    git_dirs = sorted({p.parent for p in home.rglob("HEAD") if (p.parent / "objects").is_dir()})
    files |= {f"{d.relative_to(home)} (git objects)": [git_objects(d)] for d in git_dirs}

    assert any(name.startswith("lake/") for name in files)
    assert leaks(pipeline, files) == []


def test_no_planted_secret_in_the_dagster_home_or_event_log(pipeline):
    dagster_home = pipeline["dagster_home"]
    files = {str(p.relative_to(dagster_home)): [p.read_bytes()] for p in sorted(dagster_home.rglob("*")) if p.is_file()}
    events = {f"event log of run {run_id}": [text.encode()] for run_id, text in pipeline["events"].items()}

    assert files and len(events) == 2 * len(CONNECTIONS)
    assert leaks(pipeline, files | events) == []
