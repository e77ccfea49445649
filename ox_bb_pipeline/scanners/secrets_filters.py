"""Precision filters of the secrets scanner, as data: `secrets_filters.yaml` names each filter and the
candidate values it removes; this module interprets it and counts, per filter, what it removed.

detect-secrets calls `is_known_noise` from its own filter chain (it injects the arguments by name), after its
default heuristics, so a count is what our filters removed from what detect-secrets would have reported.
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from dataclasses import dataclass
from fnmatch import fnmatch
from functools import lru_cache
from pathlib import Path

import yaml
from detect_secrets.plugins.base import BasePlugin
from detect_secrets.plugins.basic_auth import BasicAuthDetector
from detect_secrets.plugins.high_entropy_strings import HighEntropyStringsPlugin
from detect_secrets.plugins.keyword import KeywordDetector

FILTERS_FILE = Path(__file__).with_name("secrets_filters.yaml")
KINDS = frozenset({"entropy", "keyword", "pattern"})
CONDITIONS = {"value", "value_search", "value_words", "key", "key_not", "before", "line", "min_line_length", "path"}

# The name a value is assigned to, at the end of the text before it: `git_commit = "`, `"sha-256": "`,
# `- fixed: `, `nonce="`, `const oid =`.
_KEY_BEFORE = re.compile(r"""([A-Za-z_$][\w.$-]*)["'`\])]*\s*(?::=|=>|==|=|:)\s*[-"'`(\[{]*\s*$""")
# The same read backwards, from the end of the reversed text: _KEY_BEFORE.search tries every start and, on a long
# line (a minified file's 40,000 characters before a value), takes time quadratic in its length. Next to each
# other its parts use disjoint characters (a name, closing quotes, spaces, the operator, spaces, opening quotes,
# spaces), so read from the end each greedy part is exactly the one of a match.
_KEY_BEFORE_REVERSED = re.compile(r"""\s*[-"'`(\[{]*\s*(?:=:|>=|==|=|:)\s*["'`\])]*([\w.$-]*)""")
_NAME_START = re.compile(r"[A-Za-z_$]")
_QUOTES = "'\"`\\"

# (filter name, detector type) -> candidates removed; detect-secrets' settings are process-wide and the scanner
# holds its lock while scanning, so one counter serves; the scanner reads and resets it per snapshot.
REMOVED: Counter = Counter()


class FilterFileError(ValueError):
    """secrets_filters.yaml is malformed; the message names the filter and what to fix."""


@dataclass(frozen=True)
class Candidate:
    """What a filter looks at: the value, the line it sits on, the line before it, the file, the detector."""

    value: str
    line: str = ""
    previous_line: str = ""
    path: str = ""
    kind: str = "entropy"

    @property
    def before(self) -> str:
        index = self.line.find(self.value)
        return self.line[:index] if index >= 0 else ""

    @functools.cached_property
    def key(self) -> str:
        for text in (self.before, self.previous_line.rstrip()):
            if name := key_before(text):
                return name
            if text.strip():
                return ""  # text on the line before the value, but no assignment: no name
        return ""


def key_before(text: str) -> str:
    """The name a value is assigned to at the end of `text`: what `_KEY_BEFORE.search(text)` captures ("" when it
    matches nothing), in time linear in the length of `text`."""
    match = _KEY_BEFORE_REVERSED.match(text[::-1])
    name = match.group(1)[::-1] if match else ""
    start = _NAME_START.search(name)  # the leftmost start _KEY_BEFORE.search finds: the first letter, `_` or `$`
    return name[start.start() :] if start else ""


@dataclass(frozen=True)
class Clause:
    conditions: tuple[tuple[str, object], ...]

    def holds(self, candidate: Candidate) -> bool:
        value = candidate.value.strip(_QUOTES)
        for name, test in self.conditions:
            if name == "value" and not test.fullmatch(value):
                return False
            if name == "value_search" and not test.search(value):
                return False
            if name == "value_words" and not test.fullmatch(re.sub(r"[^a-z0-9]", "", value.lower())):
                return False
            if name == "key" and not test.search(candidate.key):
                return False
            if name == "key_not" and test.search(candidate.key):
                return False
            if name == "before" and not test.search(candidate.before):
                return False
            if name == "line" and not test.search(candidate.line):
                return False
            if name == "min_line_length" and len(candidate.line) < test:
                return False
            if name == "path" and not any(fnmatch(candidate.path, glob) for glob in test):
                return False
        return True


@dataclass(frozen=True)
class NoiseFilter:
    name: str
    why: str
    detectors: frozenset[str]
    clauses: tuple[Clause, ...]

    def removes(self, candidate: Candidate) -> bool:
        return candidate.kind in self.detectors and any(clause.holds(candidate) for clause in self.clauses)


def _compile(filter_name: str, name: str, raw, named: dict[str, str]):
    try:
        if name == "min_line_length":
            return int(raw)
        if name == "path":
            return tuple([raw] if isinstance(raw, str) else raw)
        if name == "value_words":
            if not all(isinstance(word, str) for word in raw):  # YAML reads a bare no/yes/null as a bool/None
                raise TypeError(f"every word must be a string; quote {[w for w in raw if not isinstance(w, str)]}")
            words = sorted({word.lower() for word in raw}, key=len, reverse=True)
            return re.compile(r"(?:" + "|".join(map(re.escape, words)) + r"|\d+)+")
        return re.compile(named.get(raw, raw))
    except (re.error, TypeError, ValueError) as exc:
        raise FilterFileError(
            f"{FILTERS_FILE.name}: filter {filter_name!r}, condition {name!r}: {exc}; fix the pattern"
        ) from None


@lru_cache(maxsize=4)
def load_filters(path: Path = FILTERS_FILE) -> tuple[NoiseFilter, ...]:
    """The filters of `path`, validated: an unknown condition or detector kind is an error naming the filter."""
    data = yaml.safe_load(Path(path).read_text()) or {}
    named = {"secret_names": data.get("secret_names", "")}
    filters = []
    for entry in data.get("filters") or []:
        name = entry.get("name") or "?"
        kinds = frozenset(entry.get("detectors") or ())
        if not kinds or kinds - KINDS:
            raise FilterFileError(f"{Path(path).name}: filter {name!r}: detectors must be some of {sorted(KINDS)}")
        clauses = []
        for clause in entry.get("when") or []:
            if unknown := set(clause) - CONDITIONS:
                raise FilterFileError(
                    f"{Path(path).name}: filter {name!r}: unknown condition(s) {sorted(unknown)}; "
                    f"use {sorted(CONDITIONS)}"
                )
            clauses.append(Clause(tuple((k, _compile(name, k, v, named)) for k, v in clause.items())))
        if not clauses:
            raise FilterFileError(f"{Path(path).name}: filter {name!r} has no `when` clause")
        filters.append(NoiseFilter(name, entry.get("why", ""), kinds, tuple(clauses)))
    return tuple(filters)


def detector_kind(plugin: BasePlugin | type | None) -> str:
    """entropy | keyword | pattern: how much the detector knows about what it found."""
    cls = plugin if isinstance(plugin, type) else type(plugin)
    if plugin is None:
        return "entropy"
    if issubclass(cls, HighEntropyStringsPlugin):
        return "entropy"
    if issubclass(cls, (KeywordDetector, BasicAuthDetector)):
        return "keyword"
    return getattr(cls, "kind", "pattern")


def first_filter(candidate: Candidate, filters: tuple[NoiseFilter, ...] | None = None) -> str | None:
    """The name of the first filter that removes `candidate`, or None when it is kept."""
    return next((f.name for f in (filters or load_filters()) if f.removes(candidate)), None)


def is_known_noise(secret: str, line: str, plugin, filename: str, context) -> bool:
    """detect-secrets filter entry point (arguments injected by name); counts what it removes."""
    previous = context.previous_line if context is not None else ""
    candidate = Candidate(secret or "", line or "", previous or "", filename or "", detector_kind(plugin))
    name = first_filter(candidate)
    if name is None:
        return False
    REMOVED[(name, getattr(plugin, "secret_type", "?"))] += 1
    return True
