"""Bitbucket's partial responses: trim a full JSON representation to what the `fields=`
query parameter asks for, hiding the fields Bitbucket only returns on request."""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from enum import Enum
from typing import Any

__all__ = ["apply_fields"]

_Pattern = tuple[str, ...]  # dotted path split on ".", where "*" and "**" are wildcards
_SEGMENT = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]*|\*\*?")
_ALLOWED = re.compile(r"[A-Za-z0-9_.*+-]+")


class _Keep(Enum):
    DROP = "drop"
    NAMED = "named"  # selected itself (by an entry or by default): keep it with its subtree
    VIA = "via"  # only on the way to a named descendant: keep it only for that descendant


def _parse_path(entry: str, path: str) -> _Pattern:
    segments = tuple(path.split("."))
    valid = all(_SEGMENT.fullmatch(segment) for segment in segments)
    # "**" means "everything below", so anything after it would be meaningless.
    if not valid or "**" in segments[:-1]:
        raise ValueError(f'Invalid field name: "{entry}"')
    # A lone "*" means "everything including hidden", which is what "**" means at any depth.
    return ("**",) if segments == ("*",) else segments


def _covers(pattern: _Pattern, path: _Pattern) -> bool:
    """Whether `pattern` names `path` itself or one of its ancestors."""
    for index, segment in enumerate(pattern):
        if segment == "**":
            return True
        if index >= len(path) or segment not in ("*", path[index]):
            return False
    return True


def _leads_to(pattern: _Pattern, path: _Pattern) -> bool:
    """Whether `path` is a strict ancestor of something `pattern` names."""
    return len(pattern) > len(path) and all(segment in ("*", "**", key) for segment, key in zip(pattern, path))


def _reveals(pattern: _Pattern, hidden_depth: int) -> bool:
    """Whether `pattern` may show a path under a hidden path `hidden_depth` segments deep: it
    must spell that hidden path out (or start with `**` before it). `values` alone or a
    wildcard like `values.*` must not surface a hidden `values.participants`."""
    for segment in pattern[:hidden_depth]:
        if segment == "**":
            return True
        if segment == "*":
            return False
    return len(pattern) >= hidden_depth


@dataclass(frozen=True)
class _Selection:
    includes: tuple[_Pattern, ...]  # plain and "+" entries
    excludes: tuple[_Pattern, ...]  # "-" entries
    hidden: tuple[_Pattern, ...]
    only_listed: bool  # a plain entry is present, so unlisted paths are dropped

    def decide(self, path: _Pattern) -> _Keep:
        if any(_covers(pattern, path) for pattern in self.excludes):
            return _Keep.DROP
        hidden_depth = max((len(h) for h in self.hidden if _covers(h, path)), default=0)
        if not hidden_depth and not self.only_listed:
            return _Keep.NAMED
        includes = [p for p in self.includes if _reveals(p, hidden_depth)]
        if any(_covers(pattern, path) for pattern in includes):
            return _Keep.NAMED
        if any(_leads_to(pattern, path) for pattern in includes):
            return _Keep.VIA
        return _Keep.DROP


_ABSENT = object()  # a projection that leaves nothing worth returning


def _project(value: Any, path: _Pattern, keep: _Keep, selection: _Selection) -> Any:
    """A new copy of `value` trimmed to the selection, or _ABSENT.

    A VIA node only exists to carry a named descendant, so it is dropped when the requested
    descendant is not there. Containers that were already empty are kept: `values.id` on an
    empty page still yields `"values": []`."""
    if isinstance(value, dict):
        trimmed = {}
        for key, child in value.items():
            child_path = (*path, key)
            child_keep = selection.decide(child_path)
            if child_keep is _Keep.DROP:
                continue
            projected = _project(child, child_path, child_keep, selection)
            if projected is not _ABSENT:
                trimmed[key] = projected
        return _ABSENT if keep is _Keep.VIA and value and not trimmed else trimmed
    if isinstance(value, list):
        elements = []
        for element in value:
            projected = _project(element, path, keep, selection)
            if projected is not _ABSENT:
                elements.append(projected)
            elif isinstance(element, (dict, list)):
                # Keep object elements, even emptied, so the list keeps its length and order.
                elements.append(type(element)())
        return _ABSENT if keep is _Keep.VIA and value and not elements else elements
    return _ABSENT if keep is _Keep.VIA else value


def _selection(fields: str | None, hidden: Iterable[str]) -> _Selection:
    includes: list[_Pattern] = []
    excludes: list[_Pattern] = []
    only_listed = False
    # Empty entries (a trailing comma) are ignored; whitespace is not trimmed, because a
    # space usually is a "+" the client forgot to URL-encode.
    for entry in filter(None, (fields or "").split(",")):
        if not _ALLOWED.fullmatch(entry):
            raise ValueError(f'Invalid field name: "{entry}"')
        sign, path = (entry[0], entry[1:]) if entry[0] in "+-" else ("", entry)
        pattern = _parse_path(entry, path)
        if sign == "-":
            excludes.append(pattern)
        else:
            includes.append(pattern)
            only_listed = only_listed or not sign
    return _Selection(
        includes=tuple(includes),
        excludes=tuple(excludes),
        hidden=tuple(_parse_path(path, path) for path in hidden),
        only_listed=only_listed,
    )


def apply_fields(doc: dict, fields: str | None, hidden: Collection[str] = ()) -> dict:
    """A new document trimmed per Bitbucket's `fields=` semantics; `doc` is left untouched.

    `doc` is the full representation and `hidden` the dotted paths Bitbucket omits unless
    asked for. Entries: `path` keeps only listed paths, `+path` adds (a hidden path back),
    `-path` removes (applied last), `*` matches one key, `*`/`**` alone selects everything
    including hidden. Lists are transparent. Raises ValueError('Invalid field name: "..."')."""
    selection = _selection(fields, hidden)
    return _project(doc, (), _Keep.NAMED, selection)
