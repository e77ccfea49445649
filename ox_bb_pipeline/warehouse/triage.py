"""Triage decisions that last: `ox-bb triage FINGERPRINT --status …` appends who decided what, when and why
to `OX_BB_HOME/triage/decisions.jsonl`, and every warehouse build reads the file as the input table
`triage_decisions`. `findings_queue` applies a finding's latest decision like a suppression (false_positive
and accepted_risk until they expire; open withdraws the earlier one) and shows it in its triage_* columns.

The file is the audit trail: lines are only ever added, never changed or removed. Each write rewrites the
whole file to a temporary one and renames it (readers see the old file or the new one), under a lock so two
people triaging at once both keep their line.
"""

from __future__ import annotations

import getpass
import json
import os
import re
from datetime import UTC, date, datetime
from pathlib import Path

import pyarrow as pa

from ..config import ConfigError
from ..files import atomic_write_text
from ..locks import home_lock

STATUSES = ("false_positive", "accepted_risk", "open")
TRIAGE_SCHEMA = pa.schema(
    [
        ("decision_order", pa.int64()),  # line number in the file: the later line wins at the same decided_at
        ("finding_id", pa.string()),
        ("status", pa.string()),  # false_positive | accepted_risk | open (withdraws the earlier decision)
        ("reason", pa.string()),
        ("owner", pa.string()),  # who answers for the decision (the risk owner)
        ("expires", pa.date32()),  # last day the decision holds (null: until withdrawn)
        ("decided_by", pa.string()),  # who ran the command
        ("decided_at", pa.timestamp("us", tz="UTC")),
    ]
)
FINGERPRINT = re.compile(r"^[0-9a-f]{32}$")


class TriageError(ValueError):
    """A decision that cannot be recorded; the message names the field and what to do."""


def triage_path(home: Path) -> Path:
    return home / "triage" / "decisions.jsonl"


def read_triage(home: Path) -> pa.Table:
    """Every decision so far, in file order (empty when there is no file)."""
    path = triage_path(home)
    if not path.exists():
        return TRIAGE_SCHEMA.empty_table()
    rows = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            rows.append(
                {
                    "decision_order": number,
                    "finding_id": record["finding_id"],
                    "status": record["status"],
                    "reason": record.get("reason"),
                    "owner": record.get("owner"),
                    "expires": date.fromisoformat(record["expires"]) if record.get("expires") else None,
                    "decided_by": record.get("decided_by"),
                    "decided_at": datetime.fromisoformat(record["decided_at"]),
                }
            )
        except (ValueError, KeyError, TypeError) as exc:
            problem = (
                f"line {number} is not a triage decision ({type(exc).__name__}: {exc}); fix or remove "
                "that line (the file is append-only: every other line is kept as it is)"
            )
            raise ConfigError(str(path), [problem]) from exc
    return pa.Table.from_pylist(rows, schema=TRIAGE_SCHEMA)


def validate(
    finding_id: str, status: str, reason: str | None, owner: str | None, expires: date | None, now: datetime
) -> None:
    problems = []
    if not FINGERPRINT.match(finding_id or ""):
        problems.append(
            f"fingerprint {finding_id!r} is not a finding_id (32 hex characters, as in findings_queue.finding_id)"
        )
    if status not in STATUSES:
        problems.append(f"status {status!r} is not one of {', '.join(STATUSES)}")
    if not (reason or "").strip():
        problems.append("--reason is required: say why (it is kept with the decision)")
    if not (owner or "").strip():
        problems.append("--owner is required: who answers for this decision")
    if expires is not None and expires < now.astimezone(UTC).date():
        problems.append(f"--expires {expires.isoformat()} is in the past; give a later day or none")
    if status == "open" and expires is not None:
        problems.append("--expires has no meaning for --status open (it withdraws the earlier decision)")
    if problems:
        raise TriageError("; ".join(problems))


def record_triage(
    finding_id: str,
    status: str,
    *,
    reason: str,
    owner: str,
    expires: date | None = None,
    decided_by: str | None = None,
    now: datetime | None = None,
    home: Path,
    known: set[str] | None = None,
) -> dict:
    """Append one decision (validated; `known`: the warehouse's fingerprints, when it was built) and return it."""
    now = (now or datetime.now(UTC)).astimezone(UTC)
    finding_id = (finding_id or "").strip().lower()
    validate(finding_id, status, reason, owner, expires, now)
    if known is not None and finding_id not in known:
        raise TriageError(
            f"no finding {finding_id} in the warehouse's findings_queue; copy the finding_id from "
            '`ox-bb query "SELECT finding_id, title FROM findings_queue"`'
        )
    record = {
        "finding_id": finding_id,
        "status": status,
        "reason": reason.strip(),
        "owner": owner.strip(),
        "expires": expires.isoformat() if expires else None,
        "decided_by": decided_by or os.environ.get("OX_BB_USER") or getpass.getuser(),
        "decided_at": now.isoformat(),
    }
    path = triage_path(home)
    with home_lock(path.with_name(".decisions.lock"), home, "triage "):
        old = path.read_text() if path.exists() else ""
        if old and not old.endswith("\n"):
            old += "\n"
        atomic_write_text(path, old + json.dumps(record, sort_keys=True) + "\n")
    return record
