"""When a build compacts the warehouse file.

An incremental night deletes the rows it recomputes (1% of the findings) and appends their new versions. DuckDB
marks deleted rows and, at each checkpoint, vacuums: it merges row groups whose live rows fit in fewer, rewriting
them (decompressed and compressed again). A big row group that lost a few rows is merged with the night's small
tail, so nearly every night rewrites a few full row groups of the widest tables: ~1.8 s of a 5 s night at 1M
findings, for a few thousand rows reclaimed.

So a replayed night does not vacuum (`max_vacuum_tasks = 0`); deleted rows and the nights' tail row groups stay
until a compacting build, which vacuums every table it changes, as DuckDB does by default. A build compacts when the
last compaction is `EVERY` builds old, or when a table's deleted rows are `DEAD_SHARE` of what it stores; a dbt build
vacuums anyway (its own connections keep DuckDB's default). The state is `<home>/dbt/compaction.json`, written at
the end of every build: the builds since the last compaction and each table's deleted share then.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import duckdb

from ..files import atomic_write_text

STATE_FILE = "compaction.json"
EVERY = 7  # builds: at most six nights of tail row groups and deleted rows between compactions
DEAD_SHARE = 0.15  # of a table's stored rows: a night that changed much more than 1% compacts early
VACUUM_TASKS = 100  # DuckDB's default max_vacuum_tasks: a checkpoint vacuums every table it writes


@dataclass
class Decision:
    compact: bool
    reason: str  # why, in words for the build's progress line


def state_path(dbt_dir: Path) -> Path:
    return dbt_dir / STATE_FILE


def decide(dbt_dir: Path, force: bool | None = None) -> Decision:
    """Whether this build compacts: `force` True or False decides; else when due (see the module). An unreadable
    state is as none: the build compacts (as every build did before there was a state)."""
    if force is not None:
        return Decision(force, "asked for" if force else "not asked for")
    try:
        state = json.loads(state_path(dbt_dir).read_text())
        since = int(state["builds_since"])
        dead = {str(k): float(v) for k, v in state["dead_share"].items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return Decision(True, "no compaction recorded")
    if since + 1 >= EVERY:
        return Decision(True, f"{since} builds since the last compaction")
    worst = max(dead, key=dead.get, default=None)
    if worst is not None and dead[worst] >= DEAD_SHARE:
        return Decision(True, f"{dead[worst]:.0%} of {worst}'s stored rows are deleted")
    return Decision(False, f"due in {EVERY - since - 1} builds")


def dead_shares(con: duckdb.DuckDBPyConnection, rows: dict[str, int]) -> dict[str, float]:
    """Each counted table's deleted share: 1 - its rows / the rows it stores (DuckDB's estimated_size counts the
    deleted ones until a vacuum drops them). Only tables of more than one row group: a smaller one is rewritten
    whole at its next change."""
    stored = dict(
        con.execute(
            "SELECT table_name, estimated_size FROM duckdb_tables() "
            "WHERE database_name = current_database() AND schema_name = 'main' AND estimated_size > 122880"
        ).fetchall()
    )
    return {
        name: round(1 - rows[name] / stored[name], 4) for name in sorted(stored) if name in rows and stored[name] > 0
    }


def record(dbt_dir: Path, compacted: bool, dead: dict[str, float]) -> None:
    """After a build that was swapped in: the builds since the last compaction (0 when this one compacted) and the
    deleted shares now; atomically."""
    since = 0
    if not compacted:
        try:
            since = int(json.loads(state_path(dbt_dir).read_text())["builds_since"]) + 1
        except (OSError, ValueError, KeyError, TypeError):
            since = 1
    atomic_write_text(
        state_path(dbt_dir), json.dumps({"builds_since": since, "dead_share": dead}, indent=1, sort_keys=True)
    )
