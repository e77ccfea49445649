"""Plain-text secret scanning of numbered lines through detect-secrets' public plugin and filter API.

detect-secrets' `scan_file` picks a transformer by file type (a YAML file is read as its mapping values,
and a file without findings gets a second, "eager" pass through the config-file transformer); its
`scan_line` scans one line without the neighbouring lines the context filters need. For text that must be
read line by line as it stands (the pipeline file's `script:` items, a YAML bomb, text to redact) we run
the same steps scan_file runs on the lines once it has them, with public calls only: every configured
plugin's `analyze_line`, then the configured filters in detect-secrets' three stages (line, secret,
context). The filters are selected by the parameters they take (`get_filters_with_parameter`) and called
with them injected by name (`call_function_with_arguments`), as detect-secrets does.

In front of that, secrets_prefilter finds the lines any plugin could report on in a few regex passes; the others
are skipped (with their line filters), and a candidate line meets only the plugins whose gate it matches. The line
filters run once a plugin has found something on the line (the allowlist filter only near a pragma's literal), and
the entropy plugins skip values too short to pass their limit before hashing and measuring them;
scan_lines(prefilter=False) does none of this (the reference).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from detect_secrets.core.potential_secret import PotentialSecret
from detect_secrets.core.scan import get_filters_with_parameter
from detect_secrets.plugins.base import BasePlugin
from detect_secrets.plugins.high_entropy_strings import HighEntropyStringsPlugin
from detect_secrets.settings import get_filters, get_plugins, get_settings
from detect_secrets.util.code_snippet import get_code_snippet
from detect_secrets.util.inject import call_function_with_arguments, get_injectable_variables

from .secrets_prefilter import Prefilter, _required_literals

PREFILTER = True  # the default of scan_lines' `prefilter` (the history benchmark turns it off for its reference)
_PREFILTER: list = []  # [(plugins, Prefilter)]: the gates of the plugins in place, built once per settings


def scan_lines(
    lines: Iterable[tuple[int, str]], filename: str, *, prefilter: bool | None = None
) -> Iterator[PotentialSecret]:
    """Every secret the configured plugins find in `lines` ((line number, text) pairs) and no configured
    filter removes. Needs detect-secrets' settings in place (`transient_settings`). `prefilter=False` (None:
    the module's PREFILTER) runs every plugin as it is on every line, the line filters first, as detect-secrets'
    own scan does: the reference the shortcuts are tested against."""
    numbered = list(lines)
    content = [text for _, text in numbered]
    plugins = get_plugins()
    setup = _setup(plugins)
    reference = not (PREFILTER if prefilter is None else prefilter)
    if reference:
        todo = ((index, setup.every) for index in range(len(numbered)))
    else:
        # only the lines some plugin could report on, each with those plugins
        lines_plugins = _prefilter(plugins).plugins_by_line(content, filename)
        todo = ((index, [setup.fast[id(p)] for p in lines_plugins[index]]) for index in lines_plugins)
    yield from _scan(numbered, content, filename, todo, reference)


def scan_files(
    files: Iterable[tuple[Iterable[tuple[int, str]], str]], *, prefilter: bool | None = None
) -> list[list[PotentialSecret]]:
    """scan_lines of each (lines, filename), in that order, with the prefilter's passes made once over the text of
    them all (the lines a commit adds to several files: a pass costs a set-up per text)."""
    numbered = [(list(lines), filename) for lines, filename in files]
    if not (PREFILTER if prefilter is None else prefilter):
        return [list(scan_lines(lines, filename, prefilter=False)) for lines, filename in numbered]
    plugins = get_plugins()
    setup = _setup(plugins)
    contents = [[text for _, text in lines] for lines, _ in numbered]
    found = _prefilter(plugins).plugins_by_files([(c, f) for c, (_, f) in zip(contents, numbered, strict=True)])
    return [
        list(_scan(lines, content, filename, ((i, [setup.fast[id(p)] for p in ps]) for i, ps in by_line.items())))
        for (lines, filename), content, by_line in zip(numbered, contents, found, strict=True)
    ]


def _scan(numbered, content, filename, todo, reference=False) -> Iterator[PotentialSecret]:
    """The secrets of the lines `todo` names (index in `numbered`, the analyzers to run on it)."""
    for index, analyzers in todo:
        line_number, raw = numbered[index]
        context = get_code_snippet(lines=content, line_number=line_number)
        yield from _line_secrets(raw, line_number, filename, context, analyzers, eager=reference)


Analyzer = tuple[BasePlugin, Callable[..., Any], tuple[str, ...]]  # plugin, its analyze_line, what that takes
_VERIFY_FILTER = "detect_secrets.filters.common.is_ignored_due_to_verification_policies"


@dataclass(frozen=True)
class _Setup:
    """What scan_lines works out once per settings (plugins and filters in place)."""

    plugins: list
    filters: list
    # each plugin's analyze_line with the parameters it takes (call_function_with_arguments inspects the method
    # on every call: most of the time of a long scan)
    every: list[Analyzer]
    fast: dict[int, Analyzer]  # id(plugin) -> the same, or an entropy plugin's _ShortValuesSkipped


def _setup(plugins: list) -> _Setup:
    filters = get_filters()
    if not _SETUP or _SETUP[0].plugins is not plugins or _SETUP[0].filters is not filters:
        every = [(plugin, plugin.analyze_line, _injectable(plugin.analyze_line)) for plugin in plugins]
        verifying = _VERIFY_FILTER in get_settings().filters
        fast = {
            id(plugin): (plugin, _ShortValuesSkipped(plugin), ("filename", "line", "line_number"))
            if _ShortValuesSkipped.applies(plugin) and not verifying
            else (plugin, analyze, names)
            for plugin, analyze, names in every
        }
        _SETUP[:] = [_Setup(plugins, filters, every, fast)]
    return _SETUP[0]


_SETUP: list[_Setup] = []


class _ShortValuesSkipped:
    """An entropy plugin's analyze_line (detect-secrets' own, no eager search, no verification) that leaves out
    the quoted values that cannot pass its limit before making, hashing and measuring them: the Shannon entropy
    of a text with n distinct characters is at most log2(n), and the plugin reports only values above its limit
    (the hex plugin's only lowers it). A minified line holds hundreds of quoted strings."""

    def __init__(self, plugin: HighEntropyStringsPlugin) -> None:
        self.plugin = plugin
        self.most_silent = 2**plugin.entropy_limit  # no value with this many distinct characters or fewer passes

    @staticmethod
    def applies(plugin: BasePlugin) -> bool:
        cls = type(plugin)
        return (
            isinstance(plugin, HighEntropyStringsPlugin)
            and cls.analyze_line is HighEntropyStringsPlugin.analyze_line
            and cls.analyze_string is HighEntropyStringsPlugin.analyze_string
        )

    def __call__(self, filename: str, line: str, line_number: int = 0) -> set[PotentialSecret]:
        plugin, most = self.plugin, self.most_silent
        # HighEntropyStringsPlugin.analyze_string: the quoted value of each of its regex's matches
        values = (value[1] if isinstance(value, tuple) else value for value in plugin.regex.findall(line))
        found = {
            PotentialSecret(type=plugin.secret_type, filename=filename, secret=value, line_number=line_number)
            for value in values
            if len(value) > most and len(set(value)) > most
        }
        return {s for s in found if plugin.calculate_shannon_entropy(s.secret_value) > plugin.entropy_limit}


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
    for plugin, analyze, names in analyzers:
        found = analyze(**{name: offered[name] for name in names if name in offered})
        if not found:
            continue
        if not line_kept:
            if _filtered(("line",), filename=filename, line=line, context=context, pragmas_known=True):
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
                pragmas_known=not eager,  # the allowlist filter takes the context too
            ):
                continue
            yield secret


_ALLOWLIST_FILTER = "detect_secrets.filters.allowlist.is_line_allowlisted"


def _no_pragma(arguments: dict) -> bool:
    """True when neither the line nor the line before it holds a literal every allowlist pragma contains."""
    literals = _pragma_literals()
    if literals is None:
        return False
    context = arguments.get("context")
    texts = (arguments.get("line") or "", context.previous_line if context is not None else "")
    return not any(literal in text for text in texts for literal in literals)


@functools.cache
def _pragma_literals() -> tuple[str, ...] | None:
    """Literals one of which every match of every allowlist regex (each comment style, this line's and the next
    line's) contains, read off the regexes as the prefilter reads its gates; None when not known."""
    try:
        from detect_secrets.filters.allowlist import (  # noqa: PLC0415, PLC2701 - the regexes it searches
            _get_comment_tuples,
            get_allowlist_regexes,
        )
    except ImportError:
        return None
    literals: set[str] = set()
    for comment in _get_comment_tuples():
        for nextline in (False, True):
            required = _required_literals(get_allowlist_regexes(comment_tuple=comment, nextline=nextline))
            if not required or any(flags & re.IGNORECASE for _, flags in required):
                return None
            literals.update(text for text, _ in required)
    return tuple(sorted(literals))


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


def _filtered(parameters: tuple[str, ...], *, pragmas_known: bool = False, **arguments: Any) -> bool:
    """True when a filter taking at least `parameters` says so. A filter whose other parameters are not on
    offer here raises TypeError and is skipped (detect-secrets does the same). `pragmas_known`: the allowlist
    filter is not asked about a line that, like the line before it, holds none of its pragmas' literals (its
    dozen regexes cost more on a long line than the plugins)."""
    for check in get_filters_with_parameter(*parameters):
        if pragmas_known and check.path == _ALLOWLIST_FILTER and _no_pragma(arguments):
            continue
        try:
            if call_function_with_arguments(check, **arguments):
                return True
        except TypeError:
            continue
    return False
