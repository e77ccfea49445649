"""`kill -9` during each stage's writes, then a rerun: the run converges to the clean run's rows, no file
is left corrupt, no stale work directory remains and no scanner outlives the killed run. Real processes:
`ox-bb run` as a subprocess (in its own process group, killed whole) against a sandbox started here."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ox_bb_pipeline_tests.conftest import TINY
from ox_bb_pipeline_tests.test_cli import OX_BB
from ox_bb_sandbox.server import SandboxServer

CONNECTION = "sandbox-token"
WAREHOUSE_TABLES = ("findings", "findings_queue")
# What differs between two clean runs: clocks, run and build ids, durations, and whether a result came
# from the scan cache. Date and time columns are dropped by type (see `_stable`).
VOLATILE = re.compile(r"(^|_)(run_id|build_id|seconds|duration|cached|at)$|^(run_id|build_id)$")
BOUNDED_WAIT = 600  # seconds: a generous bound for a loaded 2-core machine, never a timing assumption


class Run:
    """`ox-bb run --stage all` for one connection into `home`, in a new process group; stdout is read
    by a thread so that the test can wait for a progress line without blocking."""

    def __init__(self, connections: Path, home: Path) -> None:
        env = {**os.environ, "OX_BB_HOME": str(home), "OX_BB_DUCKDB_THREADS": "1", "COLUMNS": "200"}
        for var in (
            "DAGSTER_HOME",
            "OX_BB_APPLICATIONS",
            "OX_BB_SUPPRESSIONS",
            "OX_BB_SLA",
            "OX_BB_SLA_DAYS",
            "OX_BB_WORKFLOWS",
        ):
            env.pop(var, None)
        home.mkdir(parents=True, exist_ok=True)
        self.stderr_path = home.parent / f"{home.name}.stderr"
        self.lines: list[str] = []
        with open(self.stderr_path, "w") as stderr:
            self.process = subprocess.Popen(
                [OX_BB, "run", "--stage", "all", "--connections", str(connections), "--connection", CONNECTION],
                env=env,
                cwd=connections.parent,
                stdout=subprocess.PIPE,
                stderr=stderr,
                text=True,
                start_new_session=True,
            )
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    def output(self) -> str:
        return "\n".join(self.lines) + "\n" + self.stderr_path.read_text()

    def wait_until(self, condition, what: str) -> None:
        """Poll `condition` until it holds; fail if the run ends first (it would never be killed mid-stage)."""
        deadline = time.monotonic() + BOUNDED_WAIT
        while not condition():
            assert self.process.poll() is None, f"the run ended before {what}:\n{self.output()}"
            assert time.monotonic() < deadline, f"no {what} within {BOUNDED_WAIT} s:\n{self.output()}"
            time.sleep(0.02)

    def kill_nine(self) -> dict[tuple[int, str], str]:
        """SIGKILL the whole process group; returns the processes it had started ((pid, start time) ->
        command line), taken just before the kill: scanner groups live in sessions of their own, so the
        kill does not reach them."""
        started = {process: _cmdline(process[0]) for process in _descendants(self.process.pid)}
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=60)
        self.reader.join(timeout=60)
        assert self.process.returncode == -signal.SIGKILL
        return started

    def finish(self) -> int:
        try:
            self.process.wait(timeout=BOUNDED_WAIT)
        finally:
            if self.process.poll() is None:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.reader.join(timeout=60)
        return self.process.returncode


def _stat(pid: int) -> tuple[int, str, str] | None:
    """(parent pid, state, start time) from /proc, or None when the process is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = text[text.rindex(")") + 2 :].split()  # after "pid (comm) "
    return int(fields[1]), fields[0], fields[19]


def _descendants(root: int) -> set[tuple[int, str]]:
    parents: dict[int, list[int]] = {}
    starts = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := _stat(int(entry.name))) is not None:
            parents.setdefault(stat[0], []).append(int(entry.name))
            starts[int(entry.name)] = stat[2]
    found, todo = set(), [root]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.add((child, starts[child]))
            todo.append(child)
    return found


def _alive(processes: set[tuple[int, str]]) -> set[tuple[int, str]]:
    """Those still running: same pid and start time (not a reused pid), and not a zombie awaiting its reaper."""
    alive = set()
    for pid, start in processes:
        stat = _stat(pid)
        if stat is not None and stat[2] == start and stat[1] != "Z":
            alive.add((pid, start))
    return alive


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _scanner_running(run: Run) -> bool:
    """A slow-starting scanner (semgrep or checkov: 10-20 s to start) runs under its process-group
    leader (`scanners.base.run_tool`), so it is still there when the kill comes."""
    processes = _descendants(run.process.pid)
    leaders = {
        pid
        for pid, _ in processes
        if "PR_SET_PDEATHSIG" in (line := _cmdline(pid)) and re.search(r"/(semgrep|checkov) ", line)
    }
    return any((stat := _stat(pid)) is not None and stat[0] in leaders for pid, _ in processes)


def _stable(table: pa.Table) -> list[str]:
    """The table's rows without the volatile columns, as sorted JSON lines."""
    keep = [
        f.name
        for f in table.schema
        if not VOLATILE.search(f.name)
        and not (
            pa.types.is_timestamp(f.type)
            or pa.types.is_date(f.type)
            or pa.types.is_time(f.type)
            or pa.types.is_duration(f.type)
        )
    ]
    return sorted(json.dumps(row, sort_keys=True, default=str) for row in table.select(keep).to_pylist())


def read_back(home: Path) -> dict[str, list[str]]:
    """Every lake table (all partitions) and the warehouse's findings tables, as comparable rows."""
    tables: dict[str, list[str]] = {}
    for path in sorted((home / "lake").rglob("*.parquet")):
        name = "lake/" + "/".join(
            p for p in path.relative_to(home / "lake").parent.parts if not p.startswith("connection=")
        )
        tables.setdefault(name, []).extend(_stable(pq.read_table(path)))
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
        for name in WAREHOUSE_TABLES:
            tables[f"warehouse/{name}"] = _stable(con.sql(f'SELECT * FROM "{name}"').to_arrow_table())
    return {name: sorted(rows) for name, rows in tables.items()}


def assert_no_corrupt_file(home: Path) -> None:
    """What a reader of the home meets after the kill opens: every Parquet file, every JSON state file and
    the warehouse (read-only), if present."""
    for path in home.rglob("*.parquet"):
        pq.read_table(path)  # raises on a torn file
    for path in (home / "cache" / "state").glob("*.json"):
        json.loads(path.read_text())
    if (home / "warehouse.duckdb").exists():
        with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
            con.execute("SELECT count(*) FROM findings").fetchone()


def stale_work(home: Path) -> list[Path]:
    return sorted([*(home / "cache" / "snapshots").glob("run-*"), *home.glob(".warehouse.duckdb.*.building*")])


@pytest.fixture(scope="module")
def sandbox_connections(tmp_path_factory):
    root = tmp_path_factory.mktemp("killnine")
    with SandboxServer(TINY) as server:
        yield server.write_connections(root / "connections.yaml")


@pytest.fixture(scope="module")
def reference(sandbox_connections):
    """A clean run's home and rows."""
    home = sandbox_connections.parent / "reference"
    run = Run(sandbox_connections, home)
    assert run.finish() == 0, run.output()
    rows = read_back(home)
    assert rows["warehouse/findings"] and rows["warehouse/findings_queue"]  # something to compare
    return home, rows


def _raw_partition_written(home: Path) -> bool:
    return any((home / "lake" / "raw").glob(f"*/connection={CONNECTION}/*"))


def _warehouse_building(home: Path) -> bool:
    return any(home.glob(".warehouse.duckdb.*.building"))


# stage -> (signal that the stage is writing, seed the home with the clean run's scan results cache): the
# extract and warehouse kills need no fresh scan (the cache is keyed by commit and scanner version).
KILL_POINTS = {
    "extract": (lambda run, home: _raw_partition_written(home), True),
    "scan": (lambda run, home: _scanner_running(run), False),
    "warehouse": (lambda run, home: _warehouse_building(home), True),
}


@pytest.mark.parametrize("stage", list(KILL_POINTS))
def test_kill_nine_during_a_stage_then_a_rerun_converges_to_the_clean_result(stage, reference, sandbox_connections):
    reference_home, expected = reference
    home = sandbox_connections.parent / f"killed-{stage}"
    writing, seed_cache = KILL_POINTS[stage]
    if seed_cache:
        shutil.copytree(reference_home / "cache" / "scan", home / "cache" / "scan")

    killed = Run(sandbox_connections, home)
    killed.wait_until(lambda: any(line.startswith(stage) for line in killed.lines), f"the {stage} stage")
    killed.wait_until(lambda: writing(killed, home), f"the {stage} stage writing")
    children = killed.kill_nine()
    if stage == "scan":  # the orphan check below has a scanner group to watch
        assert any("PR_SET_PDEATHSIG" in line for line in children.values()), children

    deadline = time.monotonic() + BOUNDED_WAIT  # the death signal reaches scanner groups asynchronously
    while _alive(set(children)) and time.monotonic() < deadline:
        time.sleep(0.05)
    survivors = _alive(set(children))
    assert not survivors, [children[process] for process in survivors]
    assert_no_corrupt_file(home)

    rerun = Run(sandbox_connections, home)
    assert rerun.finish() == 0, rerun.output()

    assert stale_work(home) == []
    got = read_back(home)
    assert sorted(got) == sorted(expected)
    for table in expected:
        assert got[table] == expected[table], table
