"""Repository shards of one connection's scan: a stable assignment (a hash of the repository UUID, mod N),
one scan per shard, run side by side, and a merge into the one report the connection's lake partition
is written from. A shard that fails costs only its own repositories: they get an error row per scanner
(their last findings are carried forward, so nothing looks fixed), the other shards' rows are kept.

The results cache and the snapshot cache are per repository, so a repository's shard never matters to
them; the same assignment is used whatever runs the shards (a local process pool here).
"""

from __future__ import annotations

import hashlib
import logging
import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

from .stage import ScanStageReport, scan_repositories

log = logging.getLogger(__name__)

DEFAULT_REPOSITORIES_PER_SHARD = 100  # a shard's work should outweigh its process start-up many times over
MAX_SHARDS = 64


def shard_of(repository_uuid: str, shards: int) -> int:
    """The shard a repository belongs to: stable across runs and machines (not Python's salted hash)."""
    digest = hashlib.sha256(repository_uuid.strip("{}").lower().encode()).digest()
    return int.from_bytes(digest[:8], "big") % shards


def shard_count(repositories: int, configured: int | None = None) -> int:
    """`configured` when set; else one shard per DEFAULT_REPOSITORIES_PER_SHARD repositories (1…MAX_SHARDS)."""
    if configured:
        return configured
    return max(1, min(MAX_SHARDS, -(-repositories // DEFAULT_REPOSITORIES_PER_SHARD)))


def split(repositories: list[dict], shards: int) -> list[list[dict]]:
    """The rows of each shard, in their original order."""
    out: list[list[dict]] = [[] for _ in range(shards)]
    for row in repositories:
        out[shard_of(row["repository_uuid"], shards)].append(row)
    return out


@dataclass
class ShardFailure:
    shard: int
    error: str


def merge(
    results: list[ScanStageReport | ShardFailure],
    shards: list[list[dict]],
    scanner_names: list[str],
    previous: Callable[[set[str]], ScanStageReport] | None = None,
    now=None,
) -> ScanStageReport:
    """One report from every shard's. A failed shard's repositories get an `error` scan run per scanner
    and, from `previous` (the last partition's rows of those repositories), their last findings."""
    merged = ScanStageReport(findings={name: [] for name in scanner_names})
    failed_uuids: set[str] = set()
    for result, rows in zip(results, shards):
        if isinstance(result, ShardFailure):
            for row in rows:
                if not row.get("selected") or not row.get("main_head"):
                    continue
                failed_uuids.add(row["repository_uuid"])
                merged.scan_runs += [_failed_run(row, name, result, now) for name in scanner_names]
            continue
        for name, found in result.findings.items():
            merged.findings.setdefault(name, []).extend(found)
        for table, extra in result.extra.items():
            merged.extra.setdefault(table, []).extend(extra)
        merged.scan_runs += result.scan_runs
        merged.repository_files += result.repository_files
        merged.cloned += result.cloned
        merged.cached_repositories += result.cached_repositories
        merged.git_operations += result.git_operations
        merged.seconds = max(merged.seconds, result.seconds)  # shards run side by side: the longest one
    if failed_uuids and previous is not None:
        kept = previous(failed_uuids)
        for name, found in kept.findings.items():
            merged.findings.setdefault(name, []).extend(found)
        for table, extra in kept.extra.items():
            merged.extra.setdefault(table, []).extend(extra)
        merged.repository_files += kept.repository_files
    return merged


def _failed_run(row: dict, scanner: str, failure: ShardFailure, now) -> dict:
    return {
        "connection": row["connection"],
        "workspace": row["workspace"],
        "repository_uuid": row["repository_uuid"],
        "repository": row["repository"],
        "commit": row["main_head"],
        "scanner": scanner,
        "scanner_version": "",
        "status": "error",
        "cached": False,
        "duration_seconds": 0.0,
        "files_scanned": 0,
        "bytes_scanned": 0,
        "findings": 0,
        "error": f"shard {failure.shard} failed: {failure.error}"[:500],
        "scanned_at": now,
    }


# -- running the shards --------------------------------------------------------------------------
_JOB: dict = {}  # what forked workers inherit: git access and scanners hold locks and cannot be pickled


def _scan_one(index: int) -> ScanStageReport:
    job = _JOB
    return scan_repositories(job["shards"][index], job["git"], **job["options"])


def run_shards(
    shards: list[list[dict]],
    git,
    *,
    workers: int | None = None,
    scan: Callable[[int], ScanStageReport] | None = None,
    **options,
) -> list[ScanStageReport | ShardFailure]:
    """Scan every shard, `workers` at a time in forked processes (default: the cores), each shard's
    outcome a report or a ShardFailure. `scan` replaces the per-shard scan (tests inject a failure)."""
    workers = max(1, min(workers or os.cpu_count() or 1, len(shards)))
    scan = scan or _scan_one
    _JOB.update(shards=shards, git=git, options=options)
    results: list[ScanStageReport | ShardFailure] = []
    try:
        if workers == 1:
            for index in range(len(shards)):
                results.append(_guarded(scan, index))
            return results
        with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("fork")) as pool:
            futures = [pool.submit(scan, index) for index in range(len(shards))]
            for index, future in enumerate(futures):
                try:
                    results.append(future.result())
                except Exception as exc:  # noqa: BLE001 - a shard's crash (even its process dying) is its own
                    log.error("scan shard %d of %d failed: %s", index, len(shards), exc)
                    results.append(ShardFailure(index, f"{type(exc).__name__}: {exc}"))
        return results
    finally:
        _JOB.clear()


def _guarded(scan, index: int) -> ScanStageReport | ShardFailure:
    try:
        return scan(index)
    except Exception as exc:  # noqa: BLE001 - as in the pool: one shard's failure is only its own
        log.error("scan shard %d failed: %s", index, exc)
        return ShardFailure(index, f"{type(exc).__name__}: {exc}")
