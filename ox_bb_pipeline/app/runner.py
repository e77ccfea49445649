"""Run the pipeline's Dagster assets in-process from a terminal (cron, CI, the demo): the same
assets as the UI, one connection partition at a time, so one failing account spoils nothing else."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg

from ..config import data_home, load_connections, remember_data_home
from ..defs.metadata import FIRST_ERRORS, STATUS_TAG
from ..production import check_instance, ensure_pools
from ..redaction import redact_snippet
from ..run_failures import root_cause_message

STAGES = ("extract", "scan", "warehouse")
CONNECTION_STAGES = ("extract", "scan")  # one run per connection partition; the warehouse runs once


OK, DEGRADED, FAILED = "ok", "degraded", "failed"
EXIT_CODES = {OK: 0, DEGRADED: 2, FAILED: 1}  # the convention of `ox-bb verify`, for cron and monitoring


@dataclass
class StageResult:
    """One stage of one connection (or the warehouse, connection `*`). `success` means the stage
    produced its tables; `status` says whether they are complete (ok) or partly stale (degraded)."""

    stage: str
    connection: str
    success: bool
    metadata: dict = field(default_factory=dict)
    error: str = ""
    status: str = OK
    problems: dict[str, int] = field(default_factory=dict)  # what failed inside a successful stage, by kind
    first_errors: list[str] = field(default_factory=list)
    run_id: str = ""

    def __post_init__(self) -> None:
        if not self.success:
            self.status = FAILED


@dataclass
class ConnectionOutcome:
    """A connection's night: ok only when every stage was; failed when one could not produce its tables."""

    connection: str
    stages: list[StageResult]

    @property
    def status(self) -> str:
        return max((s.status for s in self.stages), key=list(EXIT_CODES).index, default=OK)

    @property
    def problems(self) -> dict[str, int]:
        return {k: v for s in self.stages for k, v in s.problems.items()}

    @property
    def first_errors(self) -> list[str]:
        failed = [s.error.splitlines()[0] for s in self.stages if not s.success and s.error]
        return (failed + [e for s in self.stages for e in s.first_errors])[:FIRST_ERRORS]

    def line(self) -> str:
        counts = ", ".join(f"{n} {kind}" for kind, n in self.problems.items())
        return f"{self.connection}: {self.status}" + (f" ({counts})" if counts else "")


def outcomes(results: list[StageResult]) -> list[ConnectionOutcome]:
    """Stage results grouped per connection, in run order (the warehouse is `*`)."""
    grouped: dict[str, list[StageResult]] = {}
    for result in results:
        grouped.setdefault(result.connection, []).append(result)
    return [ConnectionOutcome(name, stages) for name, stages in grouped.items()]


def exit_code(results: list[StageResult]) -> int:
    """0 when everything is ok, 2 when something is degraded, 1 when any connection (or the warehouse) failed."""
    return max((EXIT_CODES[o.status] for o in outcomes(results)), key=[0, 2, 1].index, default=0)


def summary(results: list[StageResult]) -> str:
    """The closing line: connections, not stages."""
    found = [o for o in outcomes(results) if o.connection != "*"]
    counts = {status: sum(1 for o in found if o.status == status) for status in EXIT_CODES}
    text = f"{len(found)} connection(s): " + ", ".join(f"{n} {status}" for status, n in counts.items())
    warehouse = next((r for r in results if r.stage == "warehouse"), None)
    return text + (f"; warehouse {warehouse.status}" if warehouse else "")


def as_json(results: list[StageResult]) -> dict:
    """What `ox-bb run --format json` prints: per connection its status, problem counts, first
    errors and each stage's kept metadata."""
    return {
        "status": {0: OK, 2: DEGRADED, 1: FAILED}[exit_code(results)],
        "exit_code": exit_code(results),
        "connections": [
            {
                "connection": o.connection,
                "status": o.status,
                "problems": o.problems,
                "first_errors": o.first_errors,
                "stages": [
                    {"stage": s.stage, "status": s.status, "run_id": s.run_id, "error": s.error, "metadata": s.metadata}
                    for s in o.stages
                ],
            }
            for o in outcomes(results)
        ],
    }


class Interrupted(KeyboardInterrupt):
    """Ctrl-C (SIGINT) or SIGTERM: the run stops; the shell convention is exit status 128 + signal."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@contextmanager
def stop_on_signals() -> Iterator[Callable[[], None]]:
    """SIGINT and SIGTERM stop the run instead of failing one stage and moving on to the next
    connection. Dagster swaps in its own handlers while a step runs (the step then fails as
    interrupted) and they do not say which signal came: the wakeup fd, written by the interpreter
    for every signal whatever the handler, does. Yields a check that raises `Interrupted`."""

    def handler(signum, _frame):
        raise Interrupted(signum)

    read, write = os.pipe()
    os.set_blocking(read, False)
    os.set_blocking(write, False)
    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    previous_fd = signal.set_wakeup_fd(write)

    def check() -> None:
        try:
            received = os.read(read, 512)
        except BlockingIOError:
            return
        stops = [n for n in received if n in (signal.SIGINT, signal.SIGTERM)]
        if stops:
            raise Interrupted(stops[0])

    try:
        yield check
    finally:
        signal.set_wakeup_fd(previous_fd)
        for signum, old in previous.items():
            signal.signal(signum, old)
        os.close(read)
        os.close(write)


def instance() -> dg.DagsterInstance:
    """The DAGSTER_HOME instance when one is configured (runs show up in the UI), else ephemeral."""
    if os.environ.get("DAGSTER_HOME"):
        check_instance()  # a PostgreSQL that is down or refuses us says so before anything writes
        inst = dg.DagsterInstance.get()
        ensure_pools(inst)
        return inst
    return dg.DagsterInstance.ephemeral()


def _stage_assets() -> dict[str, tuple]:
    """stage -> (multi-asset and its blocking checks, progress line built from its metadata)."""
    from ..defs.bitbucket.assets import bitbucket_raw_tables
    from ..defs.quality.checks import bitbucket_raw_expectations, scanning_findings_expectations
    from ..defs.scanning.assets import scan_findings

    def extract_line(meta: dict) -> str:
        repos = meta.get("repositories", {})
        return (
            f"{repos.get('dagster/row_count', 0)} repositories, {repos.get('rest_requests', 0)} REST requests, "
            f"{repos.get('git_operations', 0)} git operations"
        )

    def scan_line(meta: dict) -> str:
        runs = meta.get("scan_runs", {})
        findings = sum(v.get("dagster/row_count", 0) for k, v in meta.items() if k.endswith("_findings"))
        line = (
            f"{findings} findings, {runs.get('repositories_cloned', 0)} repositories cloned, "
            f"{runs.get('repositories_from_cache', 0)} from cache, {runs.get('errors', 0)} scanner errors"
        )
        missing = runs.get("not_evaluated") or {}
        if missing:  # never a silent zero: say which ecosystems SCA could not judge, and the fix
            line += f"; SCA not evaluated for {', '.join(missing)} (no advisory data: run `ox-bb advisories sync`)"
        return line

    return {
        "extract": ([bitbucket_raw_tables, bitbucket_raw_expectations], extract_line),
        "scan": ([scan_findings, scanning_findings_expectations], scan_line),
    }


KEPT_METADATA = (
    "dagster/row_count",
    "rest_requests",
    "git_operations",
    "repositories_changed",
    "severity",
    "repositories_cloned",
    "repositories_from_cache",
    "errors",
    "status",
    "not_evaluated",
    "problems",
    "first_problems",
    "errors_by_scanner",
    "first_errors",
)


def run_stages(
    stage: str,
    connections_file: Path,
    only: str | list[str] | None = None,
    *,
    full_refresh: bool = False,
    progress: Callable[[str], None] = print,
    dagster_instance: dg.DagsterInstance | None = None,
    log_level: str = "WARNING",
    interrupted: Callable[[], None] = lambda: None,
) -> list[StageResult]:
    """Run every stage up to and including `stage` for each connection (or only one). A failing
    stage stops the later stages of that connection only; `interrupted` (see `stop_on_signals`)
    raises after a stage a signal stopped, so the run ends there."""
    from ..defs.bitbucket.partitions import connections_partitions
    from ..defs.bitbucket.resources import BitbucketResource
    from ..defs.storage.resources import StorageResource

    if stage not in (*STAGES, "all"):
        raise ValueError(f"unknown stage {stage!r}; use one of {', '.join(STAGES)} or all")
    config = load_connections(connections_file)
    try:
        remember_data_home(data_home())  # so that a command run elsewhere can say where the data is
    except OSError:
        pass
    names = config.names if only is None else [only] if isinstance(only, str) else list(only)
    unknown = [n for n in names if n not in config.names]
    if unknown:
        raise ValueError(f"no connection named {unknown[0]!r} in {connections_file}; it has: {', '.join(config.names)}")
    wanted = STAGES if stage == "all" else STAGES[: STAGES.index(stage) + 1]
    stages = [s for s in wanted if s in CONNECTION_STAGES]
    inst = dagster_instance or instance()
    existing = set(inst.get_dynamic_partitions(connections_partitions.name))
    missing = [n for n in names if n not in existing]
    if missing:
        inst.add_dynamic_partitions(connections_partitions.name, missing)
    resources = {
        "bitbucket": BitbucketResource(connections_file=str(connections_file)),
        "storage": StorageResource(home=str(data_home())),  # the app layer names the home; assets read it here
    }
    assets = _stage_assets()
    results = []
    for name in names:
        for current in stages:
            definitions, describe = assets[current]
            progress(f"{current:<8} {name} …")
            ops = (
                {"bitbucket_raw_tables": {"config": {"full_refresh": full_refresh}}}
                if current == "extract"
                else {"scan_findings": {"config": {"local_pool": True}}}
            )  # shards: a local process pool
            outcome = dg.materialize(
                definitions,
                partition_key=name,
                instance=inst,
                resources=resources,
                raise_on_error=False,
                run_config=dg.RunConfig(ops=ops, loggers={"console": {"config": {"log_level": log_level}}}),
                tags={"ox_bb/connection": name, "ox_bb/stage": current},
            )
            interrupted()
            result = _stage_result(current, name, outcome)
            if result.success:
                progress(f"{current:<8} {name} {result.status}: {describe(result.metadata)}")
                for error in result.first_errors:
                    progress(f"{'':<8} {name}   {error.splitlines()[0]}")
            else:
                progress(f"{current:<8} {name} FAILED: {result.error.splitlines()[0]}")
            results.append(result)
            if not result.success:
                break
        _record(inst, [r for r in results if r.connection == name], name)
    if "warehouse" in wanted:
        results.append(run_warehouse(inst, progress, log_level, connections_file=connections_file))
        interrupted()
    return results


def run_warehouse(
    inst: dg.DagsterInstance,
    progress: Callable[[str], None] = print,
    log_level: str = "WARNING",
    connections_file: Path | None = None,
) -> StageResult:
    """Build the warehouse over every connection's partitions, check the marts, then exports,
    reports and workflows (a failing mart check blocks them) — what the `build_warehouse` job runs."""
    from ..defs.bitbucket.resources import BitbucketResource
    from ..defs.quality.checks import warehouse_expectations
    from ..defs.storage.resources import StorageResource
    from ..defs.warehouse.assets import compliance_report, exports, warehouse_models
    from ..defs.warehouse.interchange import explorer
    from ..defs.warehouse.workflows import workflows

    progress("warehouse …")
    bitbucket = BitbucketResource(connections_file=str(connections_file) if connections_file else "")
    outcome = dg.materialize(
        [warehouse_models, warehouse_expectations, exports, compliance_report, explorer, workflows],
        instance=inst,
        resources={"bitbucket": bitbucket, "storage": StorageResource(home=str(data_home()))},
        raise_on_error=False,
        run_config=dg.RunConfig(loggers={"console": {"config": {"log_level": log_level}}}),
        tags={"ox_bb/stage": "warehouse"},
    )
    result = _stage_result("warehouse", "*", outcome)
    _record(inst, [result], None)
    if result.success:
        rows = {k: v.get("dagster/row_count", 0) for k, v in result.metadata.items()}
        progress(
            f"warehouse ok: {rows.get('findings', 0)} findings, {rows.get('findings_queue', 0)} in the queue, "
            f"{rows.get('applications', 0)} applications"
        )
    else:
        progress(f"warehouse FAILED: {result.error}")  # every line: a settings file lists each problem
    return result


def _stage_result(stage: str, connection: str, outcome) -> StageResult:
    """What a stage's run did: the kept metadata per asset when it and its checks passed, else the
    failed checks or the root cause of the failed step."""
    failed_checks = _failed_checks(outcome)
    result = StageResult(stage, connection, outcome.success and not failed_checks, run_id=outcome.run_id)
    if not result.success:
        result.error = failed_checks or _failure_message(outcome)
        return result
    for event in outcome.get_asset_materialization_events():
        mat = event.event_specific_data.materialization
        result.metadata[mat.asset_key.path[-1]] = {k: v.value for k, v in mat.metadata.items() if k in KEPT_METADATA}
    repositories, scan_runs = result.metadata.get("repositories", {}), result.metadata.get("scan_runs", {})
    if repositories.get("problems"):
        result.problems["repositories not refreshed"] = repositories["problems"]
        result.first_errors += repositories.get("first_problems") or []
    if scan_runs.get("errors"):
        result.problems |= {f"{scanner} errors": n for scanner, n in (scan_runs.get("errors_by_scanner") or {}).items()}
        result.first_errors += scan_runs.get("first_errors") or []
    result.first_errors = result.first_errors[:FIRST_ERRORS]
    if result.problems:
        # every scan of every repository failing (e.g. git unreachable) leaves nothing fresh: failed
        every = scan_runs.get("errors") and scan_runs["errors"] == scan_runs.get("dagster/row_count")
        result.status = FAILED if every else DEGRADED
        if every:
            result.error = f"every scan failed ({scan_runs['errors']} scanner errors): {result.first_errors[0]}"
    return result


def _record(inst: dg.DagsterInstance, results: list[StageResult], connection: str | None) -> None:
    """The connection's status as a tag on each of its runs (the UI's run list filters on it), and a
    run-failure record when it failed or degraded, as the run-failure sensor writes for scheduled runs."""
    from ..clock import SystemClock
    from ..run_failures import record_run_failure

    status = ConnectionOutcome(connection or "*", results).status
    for result in results:
        if result.run_id:
            inst.add_run_tags(result.run_id, {STATUS_TAG: status})
    worst = next((r for r in results if r.status == status), None)
    if status == OK or worst is None or not worst.run_id:
        return
    record_run_failure(
        run_id=worst.run_id,
        job_name=f"ox-bb run ({worst.stage})",
        connection=connection,
        trigger="ox-bb run",
        night=None,
        failed_steps=[worst.stage] if status == FAILED else [],
        error=worst.error or "\n".join(worst.first_errors),
        failed_at=SystemClock().now(),
        home=data_home(),
        status=status,
    )


def _failure_message(outcome) -> str:
    failure = next((e for e in outcome.all_events if e.is_step_failure), None)
    if failure is None:
        return "run failed"
    _debug_log(f"run {outcome.run_id} step {failure.step_key}", failure.step_failure_data.error.to_string())
    return root_cause_message(failure.step_failure_data.error)


def debug_log_path() -> Path:
    """Where `ox-bb run` keeps the full stack traces it does not print (one line per failure is enough
    on a terminal; a bug report needs the rest)."""
    return data_home() / "logs" / "ox-bb-run.log"


def _debug_log(heading: str, text: str) -> None:
    from ..clock import SystemClock

    path = debug_log_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as log_file:  # an append-only log; a torn last entry harms nothing
        log_file.write(f"--- {SystemClock().now().isoformat()} {heading}\n{redact_snippet(text)}\n")


def _failed_checks(outcome) -> str:
    """One line per failed data-quality check: the table and what it expected (the Dagster UI and
    the check's metadata hold the examples)."""
    lines = []
    for evaluation in outcome.get_asset_check_evaluations():
        if evaluation.passed:
            continue
        failed = evaluation.metadata.get("failed_expectations")
        names = (
            sorted(
                {f"{f['expectation']}({f['column']})" if f.get("column") else f["expectation"] for f in failed.value}
            )
            if failed
            else []
        )
        lines.append(
            f"data-quality check failed on {evaluation.asset_key.to_user_string()}: "
            f"{', '.join(names) or 'see the check in the Dagster UI'}"
        )
    return "\n".join(lines)
