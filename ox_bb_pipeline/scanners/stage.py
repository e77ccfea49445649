"""The scan stage for one connection: snapshots, every scanner, results cached by commit.

An unchanged repository (same main head, same scanner and rules versions) is neither cloned
nor rescanned: its findings come from the results cache. Snapshots are taken in parallel and
scanned in bounded batches (by count and by bytes; process-heavy tools run once per batch, over the
batch's own folder), then deleted, so memory and disk stay bounded whatever the number of
repositories. A clone failure, or a scanner failing on one batch or repository, becomes a
`scan_runs` row with the error; nothing else stops. A scan that could not judge everything (SCA
without advisory data for an ecosystem it met) is `not_evaluable`, with the reason, cached as such:
new advisory data changes the scanner version, which rescans it.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from ..bitbucket.git import GitAccess
from ..clock import Clock, SystemClock
from ..files import atomic_write_bytes
from ..findings import FINDING_SCHEMA, Finding, RepoRef
from ..locks import private_workdir
from ..redaction import adopt_salt
from . import code_context, registry
from .base import CodeScanner, ScanOutput
from .snapshot import Snapshot, SnapshotLimits, take_snapshot

log = logging.getLogger(__name__)

# A batch is one semgrep and one checkov process (their start-up costs ~10 s of CPU together, a repository of
# the benchmark's ~0.1 s more): large enough that a shard (DEFAULT_REPOSITORIES_PER_SHARD = 100) is one batch,
# and bounded by the bytes checked out at once (a repository may hold up to SnapshotLimits.max_repo_bytes).
DEFAULT_BATCH_SIZE = 250
DEFAULT_BATCH_BYTES = 1024**3

REPOSITORY_FILES_SCHEMA = pa.schema(
    [
        ("connection", pa.string()),
        ("workspace", pa.string()),
        ("repository_uuid", pa.string()),
        ("repository", pa.string()),
        ("commit", pa.string()),
        ("path", pa.string()),
    ]
)
SCAN_RUN_SCHEMA = pa.schema(
    [
        ("connection", pa.string()),
        ("workspace", pa.string()),
        ("repository_uuid", pa.string()),
        ("repository", pa.string()),
        ("commit", pa.string()),
        ("scanner", pa.string()),
        ("scanner_version", pa.string()),
        ("status", pa.string()),
        ("cached", pa.bool_()),
        ("duration_seconds", pa.float64()),
        ("files_scanned", pa.int64()),
        ("bytes_scanned", pa.int64()),
        ("findings", pa.int64()),
        ("error", pa.string()),
        ("scanned_at", pa.timestamp("us", tz="UTC")),
    ]
)


def default_scanners(tools: Path | None = None) -> list[CodeScanner]:
    """A fresh instance of every code scanner of the registry, in its order; those that run a tool from its own
    environment (they have a `tools` attribute) use the one under `tools` (None: `tools_dir()`)."""
    scanners = [entry.create() for entry in registry.code_scanners()]
    for scanner in scanners:
        if tools is not None and hasattr(scanner, "tools"):
            scanner.tools = tools
    return scanners


class ResultsCache:
    """Findings (and extra tables) of one scanner on one repository at one commit and version."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def _path(self, scanner: str, repo_uuid: str) -> Path:
        return self.root / scanner / f"{repo_uuid.strip('{}')}.parquet"

    def get(self, scanner: str, repo: RepoRef, version: str) -> ScanOutput | None:
        """The cached output for this commit and version. The same repository seen through another
        connection reuses it (same commit, same content), relabelled for this connection."""
        path = self._path(scanner, repo.repository_uuid)
        if not path.exists():
            return None
        table = pq.read_table(path)
        meta = json.loads((table.schema.metadata or {}).get(b"ox_bb", b"{}"))
        if (
            meta.get("commit") != repo.commit
            or meta.get("version") != version
            or meta.get("code_context") != code_context.rules_version()
        ):
            return None  # another commit, scanner or rules version, or markers made with other rules
        where = {"connection": repo.connection, "workspace": repo.workspace, "repository": repo.repository}
        findings = [Finding(**{**row, **where, "anchor": ""}) for row in table.to_pylist()]
        extra = {
            name: [{**r, **where} if isinstance(r, dict) and "connection" in r else r for r in rows]
            for name, rows in (meta.get("extra") or {}).items()
            if isinstance(rows, list)
        }
        return ScanOutput(
            repository_uuid=repo.repository_uuid,
            findings=findings,
            files_scanned=meta.get("files", 0),
            bytes_scanned=meta.get("bytes", 0),
            extra=extra,
            not_evaluable=meta.get("not_evaluable"),
        )

    def files(self, repo: RepoRef) -> list[str] | None:
        """The shallow file listing recorded when this commit was last cloned."""
        path = self.root / "_files" / f"{repo.repository_uuid.strip('{}')}.json"
        try:
            saved = json.loads(path.read_text())
        except (FileNotFoundError, ValueError):
            return None
        return saved["paths"] if saved.get("commit") == repo.commit else None

    def put_files(self, repo: RepoRef, paths: list[str]) -> None:
        atomic_write_bytes(
            self.root / "_files" / f"{repo.repository_uuid.strip('{}')}.json",
            json.dumps({"commit": repo.commit, "paths": paths}).encode(),
        )

    def put(self, scanner: str, repo_uuid: str, commit: str, version: str, output: ScanOutput) -> None:
        rows = [f.row() for f in output.findings]
        table = pa.Table.from_pylist(rows, schema=FINDING_SCHEMA) if rows else FINDING_SCHEMA.empty_table()
        meta = {
            "commit": commit,
            "version": version,
            "code_context": code_context.rules_version(),
            "files": output.files_scanned,
            "bytes": output.bytes_scanned,
            "extra": output.extra,
            "not_evaluable": output.not_evaluable,
        }
        table = table.replace_schema_metadata({b"ox_bb": json.dumps(meta, default=str).encode()})
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink)
        atomic_write_bytes(self._path(scanner, repo_uuid), sink.getvalue().to_pybytes())


@dataclass
class ScanStageReport:
    findings: dict[str, list[dict]] = field(default_factory=dict)  # scanner -> finding rows
    extra: dict[str, list[dict]] = field(default_factory=dict)  # extra table name -> rows
    scan_runs: list[dict] = field(default_factory=list)
    repository_files: list[dict] = field(default_factory=list)  # shallow file listing (posture BB-019)
    cloned: int = 0
    cached_repositories: int = 0
    git_operations: int = 0
    seconds: float = 0.0


def scan_repositories(
    repositories: list[dict],
    git: GitAccess,
    *,
    scanners: list[CodeScanner] | None = None,
    home: Path,
    clock: Clock | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    batch_bytes: int = DEFAULT_BATCH_BYTES,
    clone_workers: int = 4,
    limits: SnapshotLimits | None = None,
    previous_files: list[dict] = (),
    progress: Callable[[str], None] | None = None,
) -> ScanStageReport:
    """Scan the selected rows of the `repositories` raw table (they carry `main_head`), in batches of up to
    `batch_size` repositories and `batch_bytes` of checked-out files (whichever comes first: the batch's
    checkouts are on disk together). `previous_files` (the last `repository_files`) is carried forward for
    repositories not cloned."""
    started = time.perf_counter()
    clock = clock or SystemClock()
    scanners = scanners if scanners is not None else default_scanners()
    adopt_salt(home)  # a home from before the state dir hands its salt over before any scanner hashes
    for scanner in scanners:
        if hasattr(scanner, "use_data_home"):  # scanners with data under the home (SCA's synced advisory index)
            scanner.use_data_home(home)
    cache = ResultsCache(home / "cache" / "scan")
    versions = {}
    for scanner in scanners:
        try:
            versions[scanner.name] = scanner.version()
        except Exception as exc:  # a tool that cannot even report its version: every run of it errors
            versions[scanner.name] = f"unavailable: {exc}"
    report = ScanStageReport(findings={s.name: [] for s in scanners})
    now = clock.now()
    git_before = git.operations
    todo: list[tuple[RepoRef, dict, list[CodeScanner]]] = []
    for row in repositories:
        if not row.get("selected") or not row.get("main_head"):
            continue
        ref = RepoRef(row["connection"], row["workspace"], row["repository_uuid"], row["repository"], row["main_head"])
        missing = []
        for scanner in scanners:
            hit = cache.get(scanner.name, ref, versions[scanner.name])
            if hit is None:
                missing.append(scanner)
            else:
                _record(report, scanner, versions[scanner.name], ref, hit, cached=True, seconds=0.0, now=now)
        if missing:
            todo.append((ref, row, missing))
        else:
            report.cached_repositories += 1
            paths = cache.files(ref)
            if paths is None:
                paths = [f["path"] for f in previous_files if f["repository_uuid"] == ref.repository_uuid]
            report.repository_files += _file_rows(ref, paths)
    # checkouts go to a directory of this run alone: another run on the same home never deletes them; each
    # batch to a folder of its own, which the process-heavy tools take as their one target (batch_targets)
    with private_workdir(home / "cache" / "snapshots") as workdir:
        start = 0
        while start < len(todo):
            batch_root = workdir / git.connection_name / f"batch-{start}"
            snapshots, start = _snapshots(
                todo,
                start,
                batch_size,
                batch_bytes,
                git,
                batch_root,
                limits,
                clone_workers,
                report,
                versions,
                now,
                cache,
            )
            try:
                for scanner in scanners:
                    _scan_batch(scanner, snapshots, versions[scanner.name], cache, report, now)
            finally:
                for _, snap, _ in snapshots:
                    shutil.rmtree(snap.root, ignore_errors=True)  # checkouts hold raw secrets: keep none at rest
                shutil.rmtree(batch_root, ignore_errors=True)
            if progress:
                progress(f"scanned {start}/{len(todo)} repositories")
    report.git_operations = git.operations - git_before
    report.seconds = time.perf_counter() - started
    return report


def _scan_batch(
    scanner: CodeScanner, snapshots, version: str, cache: ResultsCache, report: ScanStageReport, now: datetime
) -> None:
    group = [(ref, snap) for ref, snap, wanted in snapshots if scanner in wanted]
    if not group:
        return
    t0 = time.perf_counter()
    try:
        outputs = scanner.scan([snap for _, snap in group])
    except Exception as exc:  # a scanner bug must not cost the other scanners their results
        log.exception("%s failed on a batch", scanner.name)
        outputs = [ScanOutput(ref.repository_uuid, error=f"{type(exc).__name__}: {exc}") for ref, _ in group]
    per_repo = (time.perf_counter() - t0) / len(group)
    for (ref, snap), output in zip(group, outputs):
        if output.error is None and not snap.root.is_dir():  # whatever was found, it is not the whole checkout
            output.error = "the checkout vanished during the scan"
        code_context.mark(output.findings, snap)
        if output.error is None and not version.startswith("unavailable"):
            cache.put(scanner.name, ref.repository_uuid, ref.commit, version, output)
        _record(report, scanner, version, ref, output, cached=False, seconds=per_repo, now=now)


def _file_rows(ref: RepoRef, paths: list[str]) -> list[dict]:
    return [
        {
            "connection": ref.connection,
            "workspace": ref.workspace,
            "repository_uuid": ref.repository_uuid,
            "repository": ref.repository,
            "commit": ref.commit,
            "path": path,
        }
        for path in paths
    ]


def _snapshots(todo, start, batch_size, batch_bytes, git, root, limits, workers, report, versions, now, cache):
    """Check out the next batch of `todo` from `start` (`workers` clones at a time) until it holds `batch_size`
    repositories or `batch_bytes` of files; returns its snapshots and where the next batch starts."""

    def clone(item):
        ref, row, wanted = item
        try:
            return ref, take_snapshot(git, ref, row.get("mainbranch") or "main", root, limits), wanted
        except Exception as exc:  # noqa: BLE001 - git refused or timed out, or the checkout could not be written
            return ref, exc, wanted

    taken, size, end = [], 0, min(len(todo), start + batch_size)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        while start < end and size < batch_bytes:
            chunk = todo[start : min(end, start + workers)]
            start += len(chunk)
            for ref, result, wanted in pool.map(clone, chunk):
                if isinstance(result, Snapshot):
                    report.cloned += 1
                    size += result.bytes_total
                    taken.append((ref, result, wanted))
                    paths = [path for path in result.paths() if path.count("/") <= 1]
                    cache.put_files(ref, paths)
                    report.repository_files += _file_rows(ref, paths)
                    continue
                for scanner in wanted:  # a repository that cannot be cloned: a scan-error row per scanner
                    _record(
                        report,
                        scanner,
                        versions[scanner.name],
                        ref,
                        ScanOutput(ref.repository_uuid, error=f"clone failed: {result}"),
                        cached=False,
                        seconds=0.0,
                        now=now,
                    )
    return taken, start


def _record(
    report: ScanStageReport,
    scanner,
    version: str,
    ref: RepoRef,
    output: ScanOutput,
    *,
    cached: bool,
    seconds: float,
    now: datetime,
) -> None:
    for finding in output.findings:
        finding.scanned_at = finding.scanned_at or now
    report.findings.setdefault(scanner.name, []).extend(f.row() for f in output.findings)
    for table, rows in (output.extra or {}).items():
        if isinstance(rows, list):
            report.extra.setdefault(table, []).extend(rows)
    report.scan_runs.append(
        {
            "connection": ref.connection,
            "workspace": ref.workspace,
            "repository_uuid": ref.repository_uuid,
            "repository": ref.repository,
            "commit": ref.commit,
            "scanner": scanner.name,
            "scanner_version": version,
            "status": "error" if output.error else "not_evaluable" if output.not_evaluable else "ok",
            "cached": cached,
            "duration_seconds": seconds,
            "files_scanned": output.files_scanned,
            "bytes_scanned": output.bytes_scanned,
            "findings": len(output.findings),
            "error": output.error or output.not_evaluable,
            "scanned_at": now,
        }
    )
