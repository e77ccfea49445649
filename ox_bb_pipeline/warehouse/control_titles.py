"""Short titles of the framework controls (control_titles.yaml), shown as "id — title" by the compliance
report, its CSV and the explorer, so that an analyst need not look up CICD-SEC-1 (issue 16)."""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

from ..files import load_yaml

CONTROL_TITLES_PATH = Path(__file__).resolve().parent / "control_titles.yaml"
CONTROL_ID = re.compile(r"(CIS-SSC-\d+(\.\d+)+|SSDF-[A-Z]{2}\.\d+\.\d+|CICD-SEC-\d+)")


class ControlTitleError(ValueError):
    pass


def _load(path: Path) -> dict[str, str]:
    data = load_yaml(path.read_text()) or {}
    if not isinstance(data, dict):
        raise ControlTitleError(f"{path}: expected a mapping of control id to title")
    problems = [
        f"{cid!r}: not a flattened control id (CIS-SSC-1.1.16, SSDF-PS.1.1, CICD-SEC-1)"
        for cid in data
        if not isinstance(cid, str) or not CONTROL_ID.fullmatch(cid)
    ]
    problems += [f"{cid}: missing title" for cid, title in data.items() if not isinstance(title, str) or not title]
    if problems:
        raise ControlTitleError(f"{path}: " + "; ".join(problems))
    return {cid: title.strip() for cid, title in data.items()}


@lru_cache(maxsize=4)
def load_control_titles(path: Path = CONTROL_TITLES_PATH) -> dict[str, str]:
    """The validated id -> title mapping."""
    return _load(path)


def control_title(control_id: str, titles: dict[str, str] | None = None) -> str:
    """The title of an id the project uses; an id without one is a clear error naming it."""
    titles = load_control_titles() if titles is None else titles
    try:
        return titles[control_id]
    except KeyError:
        raise ControlTitleError(f"control {control_id!r} has no title: add it to {CONTROL_TITLES_PATH.name}") from None


def display_title(control_id: str) -> str:
    """The title for the report and the explorer, or "" for an id the catalog lacks (e.g. from an imported tool):
    a report never fails over a missing title; the coverage test keeps every id the project emits titled."""
    return load_control_titles().get(control_id, "")


def control_label(control_id: str) -> str:
    """ "id — title", as the report and the explorer show a control (the id alone when it has no title)."""
    title = display_title(control_id)
    return f"{control_id} — {title}" if title else control_id
