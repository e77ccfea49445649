"""Content rules of code_context.yaml at scan time: which generated-code or minified markers a
finding's file carries (the warehouse has paths only; the scan stage still has the file).

The markers become the finding's `file_markers`; the warehouse applies path and content rules
together (sql/findings.sql) and decides exclude / lower per finding.
"""

from __future__ import annotations

import hashlib
import json
import re
from functools import lru_cache
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ..config import ConfigError
from ..files import load_yaml
from ..findings import CATEGORIES, Finding
from .snapshot import Snapshot

RULES_PATH = Path(__file__).resolve().parent / "code_context.yaml"
HEAD_BYTES = 8192  # generated-code markers sit in the header; minified files show in their first line


class CodeContextRule(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str = Field(min_length=1)
    context: Literal["vendored", "minified", "bundled", "lock_file", "generated", "test", "example"]
    path: str | None = None  # regular expression on the repository-relative path (RE2 syntax: DuckDB's)
    content: str | None = None  # regular expression on the file's first HEAD_BYTES
    decision: Literal["exclude", "lower"]
    categories: list[Literal[CATEGORIES]] = Field(min_length=1)
    rationale: str = Field(min_length=1)

    @field_validator("path", "content")
    @classmethod
    def _regex(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"not a regular expression: {exc}") from None
        return value

    @model_validator(mode="after")
    def _one_matcher(self) -> CodeContextRule:
        if (self.path is None) == (self.content is None):
            raise ValueError("give exactly one of 'path' (a regex on the path) or 'content' (a regex on the text)")
        return self


class CodeContextFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rules: list[CodeContextRule]

    @model_validator(mode="after")
    def _unique(self) -> CodeContextFile:
        names = [r.name for r in self.rules]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"rule names used twice: {', '.join(duplicates)}")
        return self


@lru_cache(maxsize=4)
def load_rules(path: Path = RULES_PATH) -> tuple[CodeContextRule, ...]:
    try:
        return tuple(CodeContextFile.model_validate(load_yaml(path.read_text()) or {}).rules)
    except (yaml.YAMLError, ValidationError) as exc:
        raise ConfigError(str(path), [str(exc)]) from exc


def rules_version() -> str:
    """The content rules' digest: cached scan results carry markers made with these rules (a change of
    path rules needs no rescan; the warehouse applies them)."""
    material = json.dumps([(r.name, r.content) for r in load_rules() if r.content is not None])
    return hashlib.sha256(material.encode()).hexdigest()[:12]


def file_markers(snapshot: Snapshot, path: str, rules: tuple[CodeContextRule, ...] | None = None) -> list[str]:
    """Names of the content rules the file's head matches (none for a file outside the snapshot)."""
    rules = load_rules() if rules is None else rules
    content_rules = [r for r in rules if r.content is not None]
    root = snapshot.root.resolve()
    file = snapshot.root / path
    if not content_rules or file.is_symlink() or not file.resolve().is_relative_to(root) or not file.is_file():
        return []
    with file.open("rb") as handle:
        head = handle.read(HEAD_BYTES).decode("utf-8", errors="replace")
    return [r.name for r in content_rules if re.search(r.content, head)]


def mark(findings: list[Finding], snapshot: Snapshot) -> None:
    """Sets `file_markers` on every finding with a file, reading each file once."""
    seen: dict[str, list[str]] = {}
    for finding in findings:
        if finding.file_path:
            if finding.file_path not in seen:
                seen[finding.file_path] = file_markers(snapshot, finding.file_path)
            finding.file_markers = list(seen[finding.file_path])
