"""Detectors for credential formats detect-secrets lacks, built from `secrets_detectors.yaml`: one
detect-secrets plugin class per entry, so the formats are data and detect-secrets stays the engine.

detect-secrets loads custom plugins from a file path (`plugins_used: [{name, path: file://…}]`) and imports
that file itself: this module must stay importable on its own, by path. It does so once per custom plugin it
loads (two dozen module copies per scan): each copy hands out the classes the package module built, parsed once
per process and version of the data file.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Generator
from fnmatch import fnmatch
from pathlib import Path

import yaml
from detect_secrets.core.potential_secret import PotentialSecret
from detect_secrets.plugins.base import RegexBasedDetector

DETECTORS_FILE = Path(__file__).with_name("secrets_detectors.yaml")
PACKAGE_MODULE = "ox_bb_pipeline.scanners.secrets_detectors"  # this module as the package imports it
# (path, mtime, size) of a data file -> its classes: a changed file is read again
_LOADED: dict[tuple[str, int, int], dict[str, type[DataDetector]]] = {}


class DataDetector(RegexBasedDetector):
    """A regex detector from the data file (abstract: its subclasses set secret_type and the rest)."""

    kind = "pattern"  # read by the precision filters
    specificity = -1  # more specific than any built-in detector: it names the vendor
    files: tuple[str, ...] = ()
    supersedes: tuple[str, ...] = ()
    denylist: tuple[re.Pattern, ...] = ()

    def analyze_line(self, filename: str, line: str, line_number: int = 0, **kwargs) -> set[PotentialSecret]:
        if self.files and not any(fnmatch(Path(filename).name, glob) for glob in self.files):
            return set()
        return super().analyze_line(filename=filename, line=line, line_number=line_number, **kwargs)

    def analyze_string(self, string: str) -> Generator[str, None, None]:
        for regex in self.denylist:
            for match in regex.finditer(string):
                yield match.group("secret") if "secret" in regex.groupindex else match.group(match.lastindex or 0)


def _class_name(secret_type: str) -> str:
    return re.sub(r"[^A-Za-z0-9]", "", secret_type.title()) + "Detector"


def load_detectors(path: Path = DETECTORS_FILE) -> dict[str, type[DataDetector]]:
    """Class name -> plugin class for every entry of the data file; a bad entry is an error naming it. Parsed
    once per version of the file, by the package module when it is loaded (a copy imported by path asks it)."""
    home = sys.modules.get(PACKAGE_MODULE)
    shared = getattr(home, "load_detectors", load_detectors)
    if shared is not load_detectors:
        return shared(path)
    stat = Path(path).stat()
    key = (str(Path(path).resolve()), stat.st_mtime_ns, stat.st_size)
    if key not in _LOADED:
        _LOADED[key] = _parse(Path(path))
    return dict(_LOADED[key])


def _parse(path: Path) -> dict[str, type[DataDetector]]:
    classes = {}
    for entry in (yaml.safe_load(path.read_text()) or {}).get("detectors") or []:
        secret_type = entry.get("type")
        try:
            patterns = tuple(re.compile(p) for p in entry["patterns"])
        except (KeyError, TypeError, re.error) as exc:
            raise ValueError(f"{path.name}: detector {secret_type!r}: bad or missing `patterns` ({exc})") from None
        kind = entry.get("kind", "pattern")
        # a vendor format outranks every built-in detector; a secret-named assignment only the keyword plugin
        attributes = {
            "secret_type": secret_type,
            "denylist": patterns,
            "kind": kind,
            "specificity": -1 if kind == "pattern" else 0.5,
            "files": tuple(entry.get("files") or ()),
            "supersedes": tuple(entry.get("supersedes") or ()),
        }
        classes[_class_name(secret_type)] = type(_class_name(secret_type), (DataDetector,), attributes)
    return classes


globals().update(load_detectors())  # detect-secrets finds plugin classes among the module's attributes
