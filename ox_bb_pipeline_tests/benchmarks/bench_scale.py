"""Scale benchmark (issue 14): one workspace of many small repositories (every 50th one grown to 2,000
files), simulated clock.

- Extraction: a first full extract through a workspace access token, paced at the base 1,000 requests/hour
  and at the scaled 10,000/hour (a Premium workspace of 1,000 paid seats); simulated hours and 429 answers,
  and what the extract costs here: wall time, requests/s, CPU seconds (client, in-process sandbox, git).
- Scan on Celery (the default): the first OX_BB_BENCH_SCALE_SCAN_REPOS repositories (default: all of them,
  the whole connection) scanned by the production path: the `scan_on_celery` job (plan, one `scan_shard`
  step per shard, merge) launched with `dagster job execute` on a PostgreSQL instance (deploy/dagster.yaml),
  its steps run by 1, 2 and 4 `dagster-celery` workers (`--concurrency=1` each) over a Redis broker; the
  benchmark starts PostgreSQL and Redis as the production tests do. Each worker count scans a data home of
  its own (nothing from a cache). Measured: wall time of the run, CPU seconds of every worker's process tree
  (the worker, its pool process and the scanner tools it waited for, read from /proc) and of the launcher,
  the critical path (plan + longest shard + merge, from the run's step events), each shard's cost and
  worker, and the peak RSS per worker (the worker process, and its process tree with the tools running).
  A projection to 16 workers of OX_BB_BENCH_SCALE_PROJECT_REPOS (default 2,000) repositories from the 1-worker
  run's per-shard costs, as measured and on dedicated cores (scaled by the share of a core the workers got).
- Scan on a local pool (OX_BB_BENCH_SCALE_EXECUTOR=local; --quick's default): the same repositories in 4
  shards by 1, 2 and 4 forked processes (the `ox-bb run` path), and once as one shard.

Sizes are parameters: OX_BB_BENCH_SCALE_REPOS (default 2,000; --quick 40), OX_BB_BENCH_SCALE_SCAN_REPOS
(default all; --quick 8) and OX_BB_BENCH_SCALE_SHARDS (Celery; default the production sizing, one shard per
100 repositories, but at least one per worker of the largest count). On the shared 2-core machine wall times
are noisy: read the CPU seconds.
"""

from __future__ import annotations

import contextlib
import math
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import requests
import yaml

from ox_bb_pipeline import lake
from ox_bb_pipeline.bitbucket import tables as raw_tables
from ox_bb_pipeline.bitbucket.client import BitbucketClient, RequestBudget
from ox_bb_pipeline.bitbucket.extract import Extractor
from ox_bb_pipeline.bitbucket.git import GitAccess
from ox_bb_pipeline.clock import ManualClock
from ox_bb_pipeline.config import load_connections
from ox_bb_pipeline.scanners import shards as shardmod
from ox_bb_pipeline.scanners.secrets import redact_text
from ox_bb_pipeline.scanners.stage import default_scanners
from ox_bb_pipeline_tests.production.conftest import running_postgres, running_redis
from ox_bb_pipeline_tests.production.helpers import REPO_ROOT, dagster_home, deployment_env, service
from ox_bb_pipeline_tests.production.test_celery import (
    celery_workers_of,
    scan_on_celery_command,
    wait_for_workers,
    worker_command,
)
from ox_bb_sandbox.generator import SandboxSpec
from ox_bb_sandbox.gitrepo import run_git
from ox_bb_sandbox.server import SandboxServer

LARGE_EVERY, LARGE_FILES = 50, 2000  # ~2% of the repositories have 2,000 files
SCAN_SHARDS = 4
WORKERS = (1, 2, 4)
PROJECTED_WORKERS = 16
LIMITS = {"base 1,000/h": ("free", 5, 1000), "scaled 10,000/h": ("premium", 1000, 10_000)}


def _grow(repo, files: int) -> None:
    """One commit on main adding `files` small Python files (git fast-import, no working tree)."""
    git_dir = str(repo.git.path)
    parent = run_git(["--git-dir", git_dir, "rev-parse", repo.mainbranch]).decode().strip()
    chunks = [
        f"commit refs/heads/{repo.mainbranch}\ncommitter bench <bench@example.com> 1790000000 +0000\n"
        f"data 10\ngrow files\nfrom {parent}\n".encode()
    ]
    for i in range(files):
        data = f"def handler_{i}(value):\n    return value * {i}\n".encode()
        chunks.append(b"M 100644 inline bulk/module_%04d.py\ndata %d\n%s\n" % (i, len(data), data))
    run_git(["--git-dir", git_dir, "fast-import", "--quiet"], input=b"".join(chunks) + b"\n")
    repo.git.refresh()


def _extract(server, clock, home: Path, label: str, plan: str, seats: int, budget: int) -> dict:
    requests.post(
        f"{server.base_url}/_sandbox/plan", json={"workspace": WS, "plan": plan, "seats": seats}, timeout=10
    ).raise_for_status()
    requests.post(f"{server.base_url}/_sandbox/rate-limit", json={"reset": True}, timeout=10).raise_for_status()
    requests.post(f"{server.base_url}/_sandbox/stats/reset", timeout=10).raise_for_status()
    conn = (
        load_connections(server.write_connections(home / f"connections-{budget}.yaml"))
        .get("sandbox-access-token")
        .model_copy(update={"requests_per_hour": budget})
    )
    client = BitbucketClient(
        conn, clock=clock, sleep=clock.advance, budget=RequestBudget(budget, clock, sleep=clock.advance)
    )
    git = GitAccess(conn.name, conn.git_url, client.auth.git_credentials)
    t0, sim0, cpu0 = time.perf_counter(), clock.now(), _cpu()
    report = Extractor(
        client, git, redact_yml=redact_text, previous={}, state={"repositories": {}}, clock=clock, home=home
    ).run()
    wall, cpu = time.perf_counter() - t0, _cpu() - cpu0
    stats = requests.get(f"{server.base_url}/_sandbox/stats", timeout=10).json()
    return {
        "limit": label,
        "announced": client.budget.announced,
        "paced_to": client.effective_limit,
        "rest_requests": stats["rest_total"],
        "rate_limited": stats["rate_limited"],
        "simulated_hours": (clock.now() - sim0).total_seconds() / 3600,
        "wall_seconds": wall,
        # this process (the client, the in-process sandbox serving it) and its git processes, both sides
        "cpu_seconds": cpu,
        "requests_per_second": stats["rest_total"] / max(wall, 1e-9),
        "rows": report.rows,
        "git": git,
    }


def _cpu() -> float:
    """CPU seconds of this process and of the child processes it has waited for."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _children() -> tuple[float, int]:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime, usage.ru_maxrss


def _scan(parts: list[list[dict]], git, workers: int, home: Path) -> dict:
    cpu0, _ = _children()
    self0 = time.process_time()
    t0 = time.perf_counter()
    results = shardmod.run_shards(parts, git, workers=workers, scanners=default_scanners(), home=home)
    wall = time.perf_counter() - t0
    cpu1, rss = _children()
    failed = [r for r in results if isinstance(r, shardmod.ShardFailure)]
    seconds = [r.seconds for r in results if not isinstance(r, shardmod.ShardFailure)]
    return {
        "workers": workers,
        "wall_seconds": wall,
        "cpu_seconds": cpu1 - cpu0 + time.process_time() - self0,
        "critical_path_seconds": max(seconds, default=0.0),
        "shard_seconds": seconds,
        "peak_rss_mb_any_child": rss / 1024,
        "failed_shards": len(failed),
        "repositories": sum(len(p) for p in parts),
    }


WS = "acme-payments"
CONNECTION = "sandbox-access-token"


# -- the Celery scan: the production path, measured from /proc -----------------------------------------
CLOCK_TICKS, PAGE_BYTES = os.sysconf("SC_CLK_TCK"), os.sysconf("SC_PAGE_SIZE")
SAMPLE_SECONDS = 0.5


def _proc_stat(pid: int) -> tuple[int, float, int] | None:
    """(parent pid, CPU seconds of the process and of the children it has waited for, RSS bytes)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:  # gone meanwhile
        return None
    fields = text[text.rindex(")") + 2 :].split()  # from field 3 (state) on: the name may hold spaces
    cpu = sum(int(f) for f in fields[11:15]) / CLOCK_TICKS  # utime, stime, cutime, cstime
    return int(fields[1]), cpu, int(fields[21]) * PAGE_BYTES


def _peak_rss(pid: int) -> int:
    """The process's own high-water mark (VmHWM), bytes."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def _trees(roots: list[int]) -> dict[int, dict[int, tuple[int, float, int]]]:
    """Each root's live process tree: pid -> its /proc reading."""
    procs = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit() and (stat := _proc_stat(int(entry.name))) is not None:
            procs[int(entry.name)] = stat
    children: dict[int, list[int]] = {}
    for pid, (ppid, _, _) in procs.items():
        children.setdefault(ppid, []).append(pid)
    out = {}
    for root in roots:
        tree, todo = {}, [root]
        while todo:
            pid = todo.pop()
            if pid in procs:
                tree[pid] = procs[pid]
                todo += children.get(pid, [])
        out[root] = tree
    return out


class _TreeSampler:
    """Samples the workers' process trees: the peak of each tree's summed RSS (a worker with its tools
    running) and each process's own peak (VmHWM), until stopped. CPU seconds of a tree = what its live
    processes used plus what they waited for (the tools that ended), so nothing is counted twice."""

    def __init__(self, roots: list[int]) -> None:
        self.roots = roots
        self.tree_peak = dict.fromkeys(roots, 0)
        self.process_peak = dict.fromkeys(roots, 0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def cpu(self) -> dict[int, float]:
        return {root: sum(cpu for _, cpu, _ in tree.values()) for root, tree in _trees(self.roots).items()}

    def sample(self) -> None:
        for root, tree in _trees(self.roots).items():
            self.tree_peak[root] = max(self.tree_peak[root], sum(rss for _, _, rss in tree.values()))
            self.process_peak[root] = max([self.process_peak[root], *map(_peak_rss, tree)])

    def _loop(self) -> None:
        while not self._stop.wait(SAMPLE_SECONDS):
            self.sample()

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()


def _step_seconds(instance: dg.DagsterInstance, run_id: str) -> dict[str, float]:
    """Step key -> seconds from its start to its end, from the run's events. A worker writes them as they
    happen; the orchestrator repeats them when the step's Celery task returns: the first of each counts."""
    kinds = {dg.DagsterEventType.STEP_START, dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE}
    start: dict[str, float] = {}
    end: dict[str, float] = {}
    for e in instance.all_logs(run_id, of_type=kinds):
        key = e.dagster_event.step_key
        if e.dagster_event.event_type == dg.DagsterEventType.STEP_START:
            start[key] = min(start.get(key, e.timestamp), e.timestamp)
        else:
            end[key] = min(end.get(key, e.timestamp), e.timestamp)
    return {key: end[key] - start[key] for key in start if key in end}


def _celery_scan(workers: int, raw: Path, connections: Path, postgres, redis_url: str, root: Path) -> dict:
    """One scan_on_celery run of the connection on `workers` fresh Celery workers."""
    home = root / f"celery-{workers}"
    shutil.copytree(raw / "lake" / "raw", home / "lake" / "raw")
    env = deployment_env(
        dagster_home(root / f"dagster-home-{workers}"),
        postgres.env(postgres.create_database()),
        OX_BB_HOME=str(home),
        OX_BB_CONNECTIONS=str(connections),
        OX_BB_REDIS_URL=redis_url,
    )
    os.environ.update(env)  # this process reads the same instance
    names = [f"bench-{workers}-{i}" for i in range(1, workers + 1)]
    with dg.DagsterInstance.get() as instance, contextlib.ExitStack() as stack:
        instance.add_dynamic_partitions("connections", [CONNECTION])
        processes = [
            stack.enter_context(service(worker_command(name), env, root / f"worker-{name}.log")) for name in names
        ]
        wait_for_workers(redis_url, names, processes)
        with _TreeSampler([p.pid for p in processes]) as sampler:
            cpu0 = sampler.cpu()  # the workers' start-up (imports) is not the scan's
            t0 = time.perf_counter()
            with open(root / f"launch-{workers}.log", "wb") as log:
                launch = subprocess.Popen(
                    scan_on_celery_command(CONNECTION), env=env, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT
                )
            _, status, usage = os.wait4(launch.pid, 0)  # the launcher's own rusage
            launch.returncode = os.waitstatus_to_exitcode(status)
            wall = time.perf_counter() - t0
            cpu1 = sampler.cpu()
        runs = instance.get_runs(dg.RunsFilter(job_name="scan_on_celery"))
        if launch.returncode or len(runs) != 1 or runs[0].status != dg.DagsterRunStatus.SUCCESS:
            raise RuntimeError(f"the scan_on_celery run with {workers} worker(s) failed: see {root}/launch-*.log")
        steps = _step_seconds(instance, runs[0].run_id)
        placed = celery_workers_of(instance, runs[0].run_id)
    scan_runs = lake.read_partition(lake.SCANS_ZONE, "scan_runs", CONNECTION, home)
    shards = {key: seconds for key, seconds in steps.items() if ".scan_shard[" in key}
    plan = steps.get("scan_findings.plan_scan_shards", 0.0)
    merge = steps.get("scan_findings.merge_scan_shards", 0.0)
    return {
        "workers": workers,
        "wall_seconds": wall,
        "worker_cpu_seconds": {name: cpu1[p.pid] - cpu0[p.pid] for name, p in zip(names, processes)},
        "cpu_seconds": sum(cpu1[p.pid] - cpu0[p.pid] for p in processes),
        "launcher_cpu_seconds": usage.ru_utime + usage.ru_stime,
        "critical_path_seconds": plan + max(shards.values(), default=0.0) + merge,
        "plan_seconds": plan,
        "merge_seconds": merge,
        "shard_seconds": shards,
        "steps": steps,
        "shard_workers": {key: sorted(placed.get(key, ())) for key in shards},
        "peak_rss_mb_worker_process": {n: sampler.process_peak[p.pid] / 2**20 for n, p in zip(names, processes)},
        "peak_rss_mb_worker_tree": {n: sampler.tree_peak[p.pid] / 2**20 for n, p in zip(names, processes)},
        "repositories_scanned": len({r["repository_uuid"] for r in scan_runs}),
        "scan_run_errors": sum(1 for r in scan_runs if r["status"] == "error"),
    }


def _write_raw(rows: dict[str, list[dict]], scanned: list[dict], home: Path) -> Path:
    """The extract's raw partitions, the repositories table cut to the ones to scan."""
    for table in raw_tables.TABLES:
        lake.write_partition(
            "raw",
            table,
            CONNECTION,
            scanned if table == "repositories" else rows[table],
            raw_tables.schema(table),
            home,
        )
    return home


def _connections_file(server, path: Path, shards: int) -> Path:
    """The sandbox's access-token connection alone, with the benchmark's shard count."""
    server.write_connections(path, {"scan_shards": shards})
    document = yaml.safe_load(path.read_text())
    document["connections"] = [c for c in document["connections"] if c["name"] == CONNECTION]
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def _progress(message: str) -> None:
    print(f"[scale {datetime.now(UTC):%H:%M:%S}] {message}", file=sys.stderr, flush=True)


def run(quick: bool = False) -> dict:
    n = int(os.environ.get("OX_BB_BENCH_SCALE_REPOS", "40" if quick else "2000"))
    m = int(os.environ.get("OX_BB_BENCH_SCALE_SCAN_REPOS", "8" if quick else str(n)))
    executor = os.environ.get("OX_BB_BENCH_SCALE_EXECUTOR", "local" if quick else "celery")
    if executor not in ("celery", "local"):
        raise ValueError(f"OX_BB_BENCH_SCALE_EXECUTOR={executor!r}: use celery or local")
    spec = SandboxSpec(
        seed=14,
        workspaces=1,
        projects=4,
        repos=n,
        branches=0,
        pull_requests=1,
        commits=1,
        anchor=datetime(2026, 11, 1, tzinfo=UTC),
    )
    home = Path(tempfile.mkdtemp(prefix="ox-bb-bench-scale-"))
    os.environ["OX_BB_HOME"] = str(home)
    saved_env = dict(os.environ)
    clock = ManualClock(datetime(2026, 11, 2, tzinfo=UTC))
    t0 = time.perf_counter()
    server = SandboxServer(spec, clock=clock).start()
    try:
        repos = list(server.world.workspaces[WS].repositories.values())
        for repo in repos[::LARGE_EVERY]:
            _grow(repo, LARGE_FILES)
        generated = time.perf_counter() - t0
        _progress(f"sandbox of {n} repositories generated in {generated:.0f} s")
        extracts = []
        for label, limit in LIMITS.items():
            extracts.append(_extract(server, clock, home, label, *limit))
            _progress(
                f"extract at {label}: {extracts[-1]['wall_seconds']:.0f} s, {extracts[-1]['cpu_seconds']:.0f} s CPU"
            )
        rows = extracts[-1]["rows"]
        git = extracts[-1]["git"]
        scanned = [r for r in rows["repositories"] if r.get("selected") and r.get("main_head")][:m]
        large = {r.slug for r in repos[::LARGE_EVERY]}
        large_scanned = sum(1 for r in scanned if r["repository"] in large)
        if executor == "celery":
            requests.post(f"{server.base_url}/_sandbox/rate-limit", json={"reset": True}, timeout=10).raise_for_status()
            shards = int(os.environ.get("OX_BB_BENCH_SCALE_SHARDS", "0")) or max(max(WORKERS), shardmod.shard_count(m))
            raw = _write_raw(rows, scanned, home / "extracted")
            connections = _connections_file(server, home / "connections.yaml", shards)
            scans = []
            with running_postgres() as postgres, running_redis() as redis:
                for w in WORKERS:
                    _progress(f"scan of {len(scanned)} repositories in {shards} shards on {w} Celery worker(s)")
                    scans.append(_celery_scan(w, raw, connections, postgres, redis.url, home))
                    _progress(f"... {scans[-1]['wall_seconds']:.0f} s wall, {scans[-1]['cpu_seconds']:.0f} s CPU")
        else:
            parts = shardmod.split(scanned, SCAN_SHARDS)
            scans = [_scan(parts, git, w, home / f"scan-{w}") for w in WORKERS]
            whole = _scan([scanned], git, 1, home / "scan-whole")  # the same repositories as one shard
    finally:
        server.stop()
        os.environ.clear()
        os.environ.update(saved_env)
    table = [
        ("repositories", n, f"1 workspace; {len(repos[::LARGE_EVERY])} of {LARGE_FILES:,} files"),
        ("sandbox generation (s)", generated, ""),
    ]
    for e in extracts:
        table += [
            (
                f"extract {e['limit']}: simulated hours",
                e["simulated_hours"],
                f"announced {e['announced']}, paced to {e['paced_to']}",
            ),
            (f"extract {e['limit']}: REST requests", e["rest_requests"], f"{e['rest_requests'] / n:.1f} / repo"),
            (f"extract {e['limit']}: 429 answers", e["rate_limited"], "target 0"),
            (
                f"extract {e['limit']}: wall (s)",
                e["wall_seconds"],
                f"{e['requests_per_second']:.0f} requests/s; CPU {e['cpu_seconds']:.0f} s "
                f"({1000 * e['cpu_seconds'] / max(1, e['rest_requests']):.1f} ms a request: client, in-process "
                "sandbox and git, both sides)",
            ),
        ]
    summary = {
        "repositories": n,
        "scan_repositories": len(scanned),
        "large_repositories": len(repos[::LARGE_EVERY]),
        "large_repositories_scanned": large_scanned,
        "generation_seconds": generated,
        "extract": [{k: v for k, v in e.items() if k not in ("rows", "git")} for e in extracts],
        "executor": executor,
        "scan": scans,
    }
    if executor == "celery":
        table += _celery_rows(scans, n, len(scanned), large_scanned, shards, summary)
    else:
        table += _local_rows(scans, whole, n, scanned, summary)
    return {
        "title": f"scale: one workspace, scaled rate limits, scan shards ({executor})",
        "table": table,
        "json": summary,
    }


def _celery_rows(scans: list[dict], n: int, m: int, large: int, shards: int, summary: dict) -> list[tuple]:
    table = []
    for s in scans:
        longest = max(s["shard_seconds"].values(), default=0.0)
        table += [
            (
                f"scan {m} repos ({large} large), {shards} shards, {s['workers']} Celery worker(s): wall (s)",
                s["wall_seconds"],
                f"CPU {s['cpu_seconds']:.0f} s in the workers + {s['launcher_cpu_seconds']:.0f} s launcher; "
                f"critical path {s['critical_path_seconds']:.0f} s (plan {s['plan_seconds']:.0f} + longest shard "
                f"{longest:.0f} + merge {s['merge_seconds']:.0f})",
            ),
            (
                f"  peak RSS per worker (MB), {s['workers']} worker(s)",
                max(s["peak_rss_mb_worker_tree"].values()),
                "with its tools; the worker process alone: "
                + ", ".join(f"{v:.0f}" for v in s["peak_rss_mb_worker_process"].values()),
            ),
        ]
    # Projection from the 1-worker run (each shard ran alone) to `target` repositories on 16 workers with a core
    # each: a shard costs its repositories × the measured cost per repository (the tools' start-ups, once per
    # shard, included); the steps outside the shards (plan, merge, the data-quality check) scale with the
    # repositories, the launch does not; S shards on W workers take ceil(S / W) rounds. On the shared machine a
    # step's wall time holds other people's load: `dedicated` scales every step by the workers' CPU seconds over
    # their step seconds (the share of a core they got) and counts the launcher's CPU seconds as its start.
    one = scans[0]
    target = int(os.environ.get("OX_BB_BENCH_SCALE_PROJECT_REPOS", "2000"))
    per_repo = sum(one["shard_seconds"].values()) / max(1, m)
    steps = sum(one["steps"].values())
    share = min(1.0, one["cpu_seconds"] / max(steps, 1e-9))
    serial = sum(v for k, v in one["steps"].items() if k not in one["shard_seconds"]) * target / max(1, m)
    launch = {
        "as measured": max(0.0, one["wall_seconds"] - steps),
        "dedicated cores": one["launcher_cpu_seconds"],
    }
    projections = []
    for s in sorted({shardmod.shard_count(target), PROJECTED_WORKERS, 2 * PROJECTED_WORKERS}):
        rounds = math.ceil(s / PROJECTED_WORKERS)
        for basis, factor in (("as measured", 1.0), ("dedicated cores", share)):
            shard = math.ceil(target / s) * per_repo * factor
            seconds = launch[basis] + serial * factor + rounds * shard
            projections.append({"shards": s, "basis": basis, "shard_seconds": shard, "seconds": seconds})
            table.append(
                (
                    f"projected: {target} repos, {s} shards, {PROJECTED_WORKERS} workers, {basis} (s)",
                    seconds,
                    f"{rounds} round(s) × {shard:.0f} s per shard + plan/merge/check {serial * factor:.0f} s "
                    f"+ launch {launch[basis]:.0f} s",
                )
            )
    table.append(
        (
            "scan cost per repository (s)",
            per_repo,
            f"1-worker run: shard step seconds / repositories; {per_repo * share:.2f} s on a dedicated core "
            f"(the workers got {share:.0%} of a core)",
        )
    )
    summary.update(
        shards=shards,
        per_repository_seconds=per_repo,
        core_share=share,
        one_worker_step_seconds=steps,
        projection={"workers": PROJECTED_WORKERS, "repositories": target, "runs": projections},
    )
    return table


def _local_rows(scans: list[dict], whole: dict, n: int, scanned: list[dict], summary: dict) -> list[tuple]:
    table = []
    # Two points give a shard's cost as start-up + per repository: 4 shards cost 4a + b·m, one shard a + b·m.
    four, one_shard = sum(scans[0]["shard_seconds"]), whole["critical_path_seconds"]
    startup = max(0.0, (four - one_shard) / (SCAN_SHARDS - 1))
    per_repo = max(0.0, (one_shard - startup) / max(1, len(scanned)))
    shards_full = shardmod.shard_count(n)
    per_shard = startup + per_repo * n / shards_full
    projected = math.ceil(shards_full / PROJECTED_WORKERS) * per_shard
    for s in scans:
        table += [
            (
                f"scan {s['repositories']} repos, {SCAN_SHARDS} shards, {s['workers']} local process(es): wall (s)",
                s["wall_seconds"],
                f"CPU {s['cpu_seconds']:.0f} s, critical path {s['critical_path_seconds']:.0f} s",
            ),
            (f"  peak RSS of a worker or tool (MB), {s['workers']} worker(s)", s["peak_rss_mb_any_child"], ""),
        ]
    table += [
        (
            f"scan {len(scanned)} repos as 1 shard, 1 worker: wall (s)",
            whole["wall_seconds"],
            f"CPU {whole['cpu_seconds']:.0f} s",
        ),
        ("shard start-up (s)", startup, "from the 4-shard and 1-shard runs"),
        ("scan cost per repository (s)", per_repo, "beyond the start-up"),
        (
            f"projected scan of {n} repos, {shards_full} shards, {PROJECTED_WORKERS} workers (s)",
            projected,
            f"ceil({shards_full}/{PROJECTED_WORKERS}) × {per_shard:.0f} s per shard",
        ),
    ]
    summary.update(
        scan_one_shard=whole,
        shard_startup_seconds=startup,
        per_repository_seconds=per_repo,
        projection={"workers": PROJECTED_WORKERS, "shards": shards_full, "seconds": projected},
    )
    return table
