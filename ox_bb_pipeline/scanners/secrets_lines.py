"""Plain-text secret scanning of numbered lines through detect-secrets' public plugin and filter API.

detect-secrets' `scan_file` picks a transformer by file type (a YAML file is read as its mapping values,
and a file without findings gets a second, "eager" pass through the config-file transformer); its
`scan_line` scans one line without the neighbouring lines the context filters need. For text that must be
read line by line as it stands (the pipeline file's `script:` items, a YAML bomb, text to redact) we run
the same steps scan_file runs on the lines once it has them, with public calls only: every configured
plugin's `analyze_line`, then the configured filters in detect-secrets' three stages (line, secret,
context). The filters are selected by the parameters they take (`get_filters_with_parameter`) and called
with them injected by name (`call_function_with_arguments`), as detect-secrets does.

In front of that, secrets_prefilter finds the lines any plugin could report on in one regex pass; the others
are skipped (with their line filters), and a candidate line meets only the plugins whose gate it matches.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from detect_secrets.core.potential_secret import PotentialSecret
from detect_secrets.core.scan import get_filters_with_parameter
from detect_secrets.settings import get_filters, get_plugins, get_settings
from detect_secrets.util.code_snippet import get_code_snippet
from detect_secrets.util.inject import call_function_with_arguments, get_injectable_variables

from .secrets_prefilter import Prefilter

PREFILTER = True  # the default of scan_lines' `prefilter` (the history benchmark turns it off for its reference)
_PREFILTER: list = []  # [(plugins, Prefilter)]: the gates of the plugins in place, built once per settings


def scan_lines(
    lines: Iterable[tuple[int, str]],
    filename: str,
    *,
    prefilter: bool | None = None,
    memo: dict | None = None,
) -> Iterator[PotentialSecret]:
    """Every secret the configured plugins find in `lines` ((line number, text) pairs) and no configured
    filter removes. Needs detect-secrets' settings in place (`transient_settings`). `prefilter=False` (None:
    the module's PREFILTER) runs every plugin on every line, with no memo and the line filters first, as
    detect-secrets' own scan does: the reference the shortcuts are tested against.

    `memo`: a dict the caller keeps across calls under the same settings (a history scan meets the same lines
    again and again): what a line yields is kept under everything it depends on, the file name, the line and
    the line before it, and given again (renumbered) without the plugins. Filters do not run for a line found
    there, so secrets_filters.REMOVED does not count it: only for callers that do not read the counts."""
    numbered = list(lines)
    content = [text for _, text in numbered]
    plugins = get_plugins()
    setup = _setup(plugins)
    reference = not (PREFILTER if prefilter is None else prefilter)
    if reference:
        todo = ((index, setup.every) for index in range(len(numbered)))
    else:
        # only the lines some plugin could report on, each with those plugins
        lines_plugins = _prefilter(plugins).plugins_by_line(content)
        todo = ((index, [setup.by_plugin[id(p)] for p in lines_plugins[index]]) for index in lines_plugins)
    memo = memo if memo is not None and setup.memo_safe and not reference else None
    for index, analyzers in todo:
        line_number, raw = numbered[index]
        context = get_code_snippet(lines=content, line_number=line_number)
        if memo is None or len(raw) > MEMO_LINE_CHARS:
            yield from _line_secrets(raw, line_number, filename, context, analyzers, eager=reference)
            continue
        key = (filename, raw, context.previous_line)
        found = memo.get(key)
        if found is None:
            found = memo[key] = list(_line_secrets(raw, line_number, filename, context, analyzers))
        for secret in found:
            yield _renumbered(secret, line_number)


MEMO_LINE_CHARS = 1_000  # longer lines (minified code) are seldom met twice: not worth keeping
# What reads a line's context under our settings: these filters read only its previous line; the plugins pass it
# to their `verify` alone, which runs only with detect-secrets' verification filter (never configured here)
_PREVIOUS_LINE_ONLY = {
    "detect_secrets.filters.allowlist.is_line_allowlisted",
    "ox_bb_pipeline.scanners.secrets_filters.is_known_noise",
}
_VERIFY_FILTER = "detect_secrets.filters.common.is_ignored_due_to_verification_policies"
_ANALYZE_LINE = {"BasePlugin.analyze_line", "HighEntropyStringsPlugin.analyze_line", "KeywordDetector.analyze_line"}
_ANALYZE_LINE |= {"DataDetector.analyze_line"}  # our data detectors: a file-name check, then the base method


@dataclass(frozen=True)
class _Setup:
    """What scan_lines works out once per settings (plugins and filters in place)."""

    plugins: list
    filters: list
    # each plugin's analyze_line with the parameters it takes (call_function_with_arguments inspects the method
    # on every call: most of the time of a long scan)
    every: list[tuple[Any, tuple[str, ...]]]
    by_plugin: dict[int, tuple[Any, tuple[str, ...]]]
    memo_safe: bool


def _setup(plugins: list) -> _Setup:
    filters = get_filters()
    if not _SETUP or _SETUP[0].plugins is not plugins or _SETUP[0].filters is not filters:
        every = [(plugin.analyze_line, _injectable(plugin.analyze_line)) for plugin in plugins]
        by_plugin = dict(zip(map(id, plugins), every, strict=True))
        _SETUP[:] = [_Setup(plugins, filters, every, by_plugin, _memo_safe(plugins))]
    return _SETUP[0]


_SETUP: list[_Setup] = []


def _memo_safe(plugins: list) -> bool:
    """True when a line's result depends on its context only through the line before it (the memo's key):
    no verification, every context filter one of _PREVIOUS_LINE_ONLY, every plugin's analyze_line a known one."""
    if _VERIFY_FILTER in get_settings().filters:
        return False
    if any(check.path not in _PREVIOUS_LINE_ONLY for check in get_filters_with_parameter("context")):
        return False
    return all(type(plugin).analyze_line.__qualname__ in _ANALYZE_LINE for plugin in plugins)


def _renumbered(secret: PotentialSecret, line_number: int) -> PotentialSecret:
    if secret.line_number == line_number:
        return secret
    again = copy.copy(secret)
    again.line_number = line_number
    return again


def _line_secrets(raw, line_number, filename, context, analyzers, eager=False) -> Iterator[PotentialSecret]:
    """What one line yields: the `analyzers`' secrets that no filter removes. The line filters are asked once a
    plugin reports something on the line (`eager`: first, as detect-secrets does): they never read what a plugin
    found, so the order changes no result, and most candidate lines yield nothing (a detect-secrets line filter's
    regex can cost more than all the plugins)."""
    line = raw.rstrip()
    if eager and _filtered(("line",), filename=filename, line=line, context=context):
        return
    offered = {"filename": filename, "line": line, "line_number": line_number, "context": context}
    line_kept = eager
    for analyze, names in analyzers:
        plugin = analyze.__self__
        found = analyze(**{name: offered[name] for name in names if name in offered})
        if not found:
            continue
        if not line_kept:
            if _filtered(("line",), filename=filename, line=line, context=context):
                return
            line_kept = True
        for secret in found:
            if _filtered(("secret",), filename=secret.filename, secret=secret.secret_value, plugin=plugin, line=line):
                continue
            if _filtered(
                ("context",),
                filename=secret.filename,
                secret=secret.secret_value,
                plugin=plugin,
                line=line,
                context=context,
            ):
                continue
            yield secret


def _prefilter(plugins: list) -> Prefilter:
    if (
        not _PREFILTER
        or len(_PREFILTER[0][0]) != len(plugins)
        or any(a is not b for a, b in zip(_PREFILTER[0][0], plugins, strict=True))
    ):
        _PREFILTER[:] = [(list(plugins), Prefilter(plugins))]
    return _PREFILTER[0][1]


def _injectable(method) -> tuple[str, ...]:
    """The parameters detect-secrets would inject into a bound method (its own names, without `self`)."""
    return get_injectable_variables(method)[1:]


def _filtered(parameters: tuple[str, ...], **arguments: Any) -> bool:
    """True when a filter taking at least `parameters` says so. A filter whose other parameters are not on
    offer here raises TypeError and is skipped (detect-secrets does the same)."""
    for check in get_filters_with_parameter(*parameters):
        try:
            if call_function_with_arguments(check, **arguments):
                return True
        except TypeError:
            continue
    return False
