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

from collections.abc import Iterable, Iterator
from typing import Any

from detect_secrets.core.potential_secret import PotentialSecret
from detect_secrets.core.scan import get_filters_with_parameter
from detect_secrets.settings import get_plugins
from detect_secrets.util.code_snippet import get_code_snippet
from detect_secrets.util.inject import call_function_with_arguments, get_injectable_variables

from .secrets_prefilter import Prefilter

PREFILTER = True  # the default of scan_lines' `prefilter` (the history benchmark turns it off for its reference)
_PREFILTER: list = []  # [(plugins, Prefilter)]: the gates of the plugins in place, built once per settings


def scan_lines(
    lines: Iterable[tuple[int, str]], filename: str, *, prefilter: bool | None = None
) -> Iterator[PotentialSecret]:
    """Every secret the configured plugins find in `lines` ((line number, text) pairs) and no configured
    filter removes. Needs detect-secrets' settings in place (`transient_settings`). `prefilter=False` (None:
    the module's PREFILTER) runs every plugin on every line: the reference the prefilter is tested against."""
    numbered = list(lines)
    content = [text for _, text in numbered]
    plugins = get_plugins()
    # each plugin's analyze_line with the parameters it takes, worked out once (call_function_with_arguments
    # inspects the method on every call: most of the time of a long scan)
    every = [(plugin.analyze_line, _injectable(plugin.analyze_line)) for plugin in plugins]
    gates = _prefilter(plugins) if (PREFILTER if prefilter is None else prefilter) else None
    candidates = gates.candidates(content) if gates is not None else None
    by_plugin = dict(zip(map(id, plugins), every, strict=True))
    for index, (line_number, raw) in enumerate(numbered):
        if candidates is not None and index not in candidates:
            continue  # no plugin could report on this line
        line = raw.rstrip()
        analyzers = every if gates is None else [by_plugin[id(p)] for p in gates.plugins_for(raw)]
        if not analyzers:
            continue
        context = get_code_snippet(lines=content, line_number=line_number)
        if _filtered(("line",), filename=filename, line=line, context=context):
            continue
        offered = {"filename": filename, "line": line, "line_number": line_number, "context": context}
        for analyze, names in analyzers:
            plugin = analyze.__self__
            found = analyze(**{name: offered[name] for name in names if name in offered})
            for secret in found or ():
                if _filtered(
                    ("secret",), filename=secret.filename, secret=secret.secret_value, plugin=plugin, line=line
                ):
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
