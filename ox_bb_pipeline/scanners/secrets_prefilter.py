"""A conservative prefilter in front of the per-line plugin pass: which lines ANY configured plugin could
report on, found with a few regex passes over a file's whole text instead of ~50 plugins (and detect-secrets'
line filters) per line; a candidate line then meets only the plugins whose gate it matches. Lines it leaves
out cannot yield a secret, so skipping them changes no result.

Each plugin gets a *gate*: a regex every match of the plugin contains, derived from the plugin itself, never
from a corpus:
- a regex plugin (detect-secrets' RegexBasedDetector, our data detectors): the pattern itself when it has no
  anchor, lookaround or way to match a newline; else a literal every match contains, read off the parsed
  pattern (a run of literal characters and fixed-string groups outside any optional part, or one of a group's
  alternatives when each has one), with the pattern's case flag; a few read off by hand where that rule finds a
  weak or slow one (_READ_OFF: a gate led by a literal is searched many times faster than one led by a class);
- the keyword plugin: its keyword list (every one of its regexes contains it), case-insensitive; with a file
  name, also a quote where each of the patterns it reads that file type with consumes one (not YAML or INI);
- the entropy plugins: a quoted run of their charset long enough to exceed their entropy limit (the Shannon
  entropy of n characters is at most log2 n, and the hex plugin only lowers it).
A plugin whose class or pattern is not one of these shapes gets no gate and sees every line. A data detector
limited to some file names (`files`) is not looked for in other files.

Gates never match a line break and use no anchors or lookarounds, so a match over the lines joined by
newlines lies within one line and is found there exactly as on the line alone. Case-insensitive gates are
searched as plain lower-case regexes over the folded text (_fold: sre's own case rules), which is far faster.
test_secrets_prefilter.py and the history benchmark check that results equal every plugin on every line.
"""

from __future__ import annotations

import functools
import re
import string
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from fnmatch import fnmatch
from itertools import accumulate
from pathlib import PurePath
from re import _constants as sre  # noqa: PLC2701 - the parsed form of a pattern has no public API
from re import _parser as sre_parse  # noqa: PLC2701

from detect_secrets.plugins import keyword
from detect_secrets.plugins.artifactory import ArtifactoryDetector
from detect_secrets.plugins.aws import AWSKeyDetector
from detect_secrets.plugins.base import BasePlugin, RegexBasedDetector
from detect_secrets.plugins.cloudant import CloudantDetector
from detect_secrets.plugins.discord import DiscordBotTokenDetector
from detect_secrets.plugins.high_entropy_strings import (
    Base64HighEntropyString,
    HexHighEntropyString,
    HighEntropyStringsPlugin,
)
from detect_secrets.plugins.ibm_cloud_iam import IbmCloudIamDetector
from detect_secrets.plugins.ip_public import IPPublicDetector
from detect_secrets.plugins.jwt import JwtTokenDetector
from detect_secrets.plugins.mailchimp import MailchimpDetector
from detect_secrets.plugins.softlayer import SoftlayerDetector
from detect_secrets.plugins.stripe import StripeDetector
from detect_secrets.plugins.telegram_token import TelegramBotTokenDetector
from detect_secrets.util.filetype import determine_file_type

# analyze_string/analyze_line methods whose output is a subset of what the plugin's regexes match
_REGEX_ANALYZERS = {RegexBasedDetector.analyze_string}
_REGEX_LINE_ANALYZERS = {BasePlugin.analyze_line}
_CASE_FLAGS = re.IGNORECASE | re.ASCII


@dataclass(frozen=True)
class Branch:
    """One alternative of a gate: a regex `body` (case-insensitive when `ci`), and for a case-insensitive one
    the same condition on lower-cased ASCII text (`lowered`; None: none known, the exact form is used)."""

    body: str
    ci: bool = False
    lowered: str | None = None
    run: tuple[str, int] | None = None  # `lowered` is a run of at least n characters of these: (characters, n)
    literal: str | None = None  # a case-sensitive body that is this plain string

    def exact(self) -> str:
        return f"(?i:{self.body})" if self.ci else f"(?:{self.body})"


class Prefilter:
    """The gates of `plugins` (instances, as detect-secrets' get_plugins() returns them)."""

    def __init__(self, plugins: Sequence[BasePlugin]) -> None:
        self.gates: list[tuple[BasePlugin, _Gate | None]] = []
        for plugin in plugins:
            branches = _gate(plugin)
            self.gates.append((plugin, _Gate(branches) if branches else None))
        ungated = any(gate is None for _, gate in self.gates)
        self._names: dict[str, set[int]] = {}  # file path -> _elsewhere's answer
        # position -> the file-name globs of a data detector that reads only such files (secrets_detectors)
        self.named = {
            position: plugin.files
            for position, (plugin, _) in enumerate(self.gates)
            if type(plugin).analyze_line.__qualname__ == "DataDetector.analyze_line" and getattr(plugin, "files", ())
        }
        # over the whole text: the case-sensitive gates one by one (each has a fast literal or class prefix; an
        # alternation of them all has none), the case-insensitive ones in one alternation over the folded text
        self.as_is = None if ungated else [gate for _, gate in self.gates if gate.as_is is not None]
        folded = [b for _, gate in self.gates if gate is not None for b in gate.branches if b.lowered]
        # the literals in one alternation; runs of a class (a free-form value) one by one, each but those another
        # one implies (a run of 64 letters and digits holds a run of 44 of them and `_-`)
        runs = sorted({b.run for b in folded if b.run})
        kept = [r for r in runs if not any(_implies(r, o) for o in runs)]
        self.folded_literals = _alternation([b.lowered for b in folded if not b.run])
        # a run of a class is a run of one byte once the class is mapped to it and all else to another: found by
        # bytes.find, not by a regex that tries every letter
        self.runs = [(_run_table(chars), b"a" * n) for chars, n in kept]
        # which passes can tell that a case-insensitive gate matches a line: its literals (only where the literal
        # pass found something on the line: then searched), each of its runs the run's own pass finds (1 + its
        # index in `kept`), and a run another one implies (searched where that one's pass found something)
        # the keyword plugin reads a file with its file type's patterns: those of most types need a quote on the line
        self.keyword = {position for position, (plugin, _) in enumerate(self.gates) if _keyword_shaped(plugin)}
        self.insensitive: list[tuple[int, re.Pattern | None, set[int], list[tuple[re.Pattern, int]]]] = []
        for position, (_, gate) in enumerate(self.gates):
            ci = [b for b in gate.branches if b.ci and b.lowered is not None] if gate is not None else []
            if not ci:
                continue
            literals = _alternation([b.lowered for b in ci if not b.run])
            own = {1 + kept.index(b.run) for b in ci if b.run in kept}
            implied = [
                (re.compile(b.lowered), 1 + kept.index(next(k for k in kept if _implies(b.run, k))))
                for b in ci
                if b.run and b.run not in kept
            ]
            self.insensitive.append((position, literals, own, implied))

    def ungated(self) -> list[str]:
        """Names of the plugins that see every line (no gate could be derived)."""
        return [type(p).__name__ for p, gate in self.gates if gate is None]

    def candidates(self, texts: Sequence[str]) -> set[int]:
        """Indices of the `texts` some plugin could report on (all of them when a plugin has no gate)."""
        return set(self.plugins_by_line(texts))

    def plugins_by_line(self, texts: Sequence[str], filename: str | None = None) -> dict[int, list[BasePlugin]]:
        """Index of each of the `texts` some plugin could report on -> the plugins whose gate matches it (what
        plugins_for says of it), in a few passes over the whole text: a case-sensitive gate's matches name their
        lines, and so do the case-insensitive passes' (a line the literal pass or an implying run's pass found is
        then searched by the gates it may concern: a minified line is long). With `filename`, the plugins that
        read only other file names (our data detectors' `files`) are left out."""
        return self.plugins_by_files([(texts, filename)])[0]

    def plugins_by_files(self, files: Sequence[tuple[Sequence[str], str | None]]) -> list[dict[int, list[BasePlugin]]]:
        """plugins_by_line of each (texts, filename), the passes made once over the texts of them all (the files
        a commit changes: a pass has a set-up cost per text). A gate never matches a line break, so a match lies
        within one line of one file; what depends on the file name is applied to its lines afterwards."""
        if self.as_is is None:
            return [
                {index: plugins for index, text in enumerate(texts) if (plugins := self.plugins_for(text))}
                for texts, _ in files
            ]
        alone = len(files) == 1
        texts = files[0][0] if alone else [text for part, _ in files for text in part]
        matched = self._matched(texts, self._elsewhere(files[0][1]) if alone else set())
        ordered = sorted(matched)
        out: list[dict[int, list[BasePlugin]]] = []
        first = at = 0
        for part, filename in files:
            end = first + len(part)
            elsewhere = self._elsewhere(filename)
            needed = None
            if self.keyword and filename is not None:
                needed = _keyword_needs(determine_file_type(filename))
            lines: dict[int, list[BasePlugin]] = {}
            while at < len(ordered) and ordered[at] < end:
                index = ordered[at]
                at += 1
                positions = matched[index] - elsewhere
                if needed and positions & self.keyword and not any(char in texts[index] for char in needed):
                    positions -= self.keyword
                if positions:
                    lines[index - first] = [self.gates[p][0] for p in sorted(positions)]
            out.append(lines)
            first = end
        return out

    def _matched(self, texts: Sequence[str], elsewhere: set[int]) -> dict[int, set[int]]:
        """Index of each of the `texts` some gate matches -> the positions of those gates (but `elsewhere`)."""
        joined = "\n".join(texts)
        starts = list(accumulate(map((1).__add__, map(len, texts)), initial=0))  # where each text starts in it
        matched: dict[int, set[int]] = {}  # line -> positions of the plugins whose gate matches it
        for position, (_, gate) in enumerate(self.gates):
            if gate.as_is is None or position in elsewhere:
                continue
            for regex in gate.passes_for(joined):
                for match in regex.finditer(joined):
                    matched.setdefault(bisect_right(starts, match.start()) - 1, set()).add(position)
        folded = _fold(joined)
        # folding may change the length of non-ASCII text, never its newlines
        fstarts = starts if len(folded) == len(joined) else _line_starts(folded)
        literal = self.folded_literals
        # lines found by the literal pass, then by each run's pass
        found = [{bisect_right(fstarts, m.start()) - 1 for m in literal.finditer(folded)} if literal else set()]
        if self.runs:
            ascii_text = folded.encode("ascii", errors="replace")  # one byte a character; non-ASCII (`?`) in no run
            found += [_run_lines(ascii_text.translate(table), needle, fstarts) for table, needle in self.runs]
        lines_folded: dict[int, str] = {}
        for position, literals, own, implied in self.insensitive:
            if position in elsewhere:
                continue
            lines = set().union(*(found[index] for index in own))
            searches = [(literals, found[0])] if literals is not None else []
            searches += [(regex, found[index]) for regex, index in implied]
            for regex, where in searches:
                for index in where - lines:
                    text = lines_folded.get(index)
                    if text is None:
                        text = lines_folded[index] = _fold(texts[index])
                    if regex.search(text):
                        lines.add(index)
            for index in lines:
                matched.setdefault(index, set()).add(position)
        return matched

    def _elsewhere(self, filename: str | None) -> set[int]:
        """Positions of the plugins that read only other file names than `filename`'s (None: none)."""
        if filename is None or not self.named:
            return set()
        if (known := self._names.get(filename)) is not None:
            return known
        if len(self._names) >= 10_000:  # a bound on the paths of a long history
            self._names.clear()
        name = PurePath(filename).name
        known = self._names[filename] = {
            p for p, globs in self.named.items() if not any(fnmatch(name, g) for g in globs)
        }
        return known

    def plugins_for(self, text: str) -> list[BasePlugin]:
        """The plugins whose gate matches `text` (a candidate line)."""
        as_is, folded = text, _fold(text)
        return [plugin for plugin, gate in self.gates if gate is None or gate.matches(as_is, folded)]


class _Gate:
    """Branches searched in one pass each: the case-sensitive ones over the text as it is, the case-insensitive
    ones as plain regexes over the folded text (sre has no fast search for case-insensitive alternatives)."""

    def __init__(self, branches: list[Branch]) -> None:
        self.branches = branches
        self.as_is = _alternation([b.exact() for b in branches if not b.ci or b.lowered is None])
        self.folded = _alternation([b.lowered for b in branches if b.ci and b.lowered is not None])
        plain = [b for b in branches if not b.ci or b.lowered is None]
        self.literals = [b.literal for b in plain] if all(b.literal for b in plain) else None
        # over a whole text: each branch in a pass of its own (one that starts with a literal is searched fast; an
        # alternation of several is not), after a look for the literals grouped by their first two characters
        self.passes = {b.literal or b.exact(): re.compile(b.exact()) for b in plain}
        groups: dict[str, list[str]] = {}
        for literal in self.literals or ():
            groups.setdefault(literal[:2], []).append(literal)
        self.literal_groups = list(groups.items()) if self.literals is not None else None

    def passes_for(self, text: str) -> list[re.Pattern]:
        """The passes to make over `text`: every branch's, or for a gate made of literals those of the literals
        in it (`in` is many times faster than a regex search for plain strings)."""
        if self.literal_groups is None:
            return list(self.passes.values())
        return [self.passes[t] for head, group in self.literal_groups if head in text for t in group if t in text]

    def matches(self, as_is: str, folded: str) -> bool:
        if self.literals is not None and self.as_is and not any(literal in as_is for literal in self.literals):
            return bool(self.folded and self.folded.search(folded))
        return bool(self.as_is and self.as_is.search(as_is) or self.folded and self.folded.search(folded))


_NEWLINE = re.compile("\n")


def _run_table(chars: str) -> bytes:
    """A bytes.translate table: the ASCII `chars` to `a`, every other byte to a space."""
    return bytes(ord("a") if chr(code) in chars else ord(" ") for code in range(256))


def _run_lines(mapped: bytes, needle: bytes, starts: list[int]) -> set[int]:
    """The lines (by their `starts`) of `mapped` text that hold `needle`."""
    lines: set[int] = set()
    at = mapped.find(needle)
    while at >= 0:
        line = bisect_right(starts, at) - 1
        lines.add(line)
        at = mapped.find(needle, starts[line + 1]) if line + 1 < len(starts) else -1
    return lines


def _keyword_shaped(plugin: BasePlugin) -> bool:
    """detect-secrets' keyword plugin as it is: its patterns chosen by file type (REGEX_BY_FILETYPE)."""
    cls = type(plugin)
    return (
        isinstance(plugin, keyword.KeywordDetector)
        and cls.analyze_line is keyword.KeywordDetector.analyze_line
        and cls.analyze_string is keyword.KeywordDetector.analyze_string
    )


_QUOTES = frozenset("'\"`")


@functools.cache
def _keyword_needs(filetype) -> frozenset[str] | None:
    """The quotes one of which every match of the keyword plugin's patterns for `filetype` holds (None: some
    pattern matches without one, as `password: value` in YAML does)."""
    patterns = keyword.REGEX_BY_FILETYPE.get(filetype, keyword.QUOTES_REQUIRED_DENYLIST_REGEX_TO_GROUP)
    if all(_consumes_one_of(list(sre_parse.parse(p.pattern, p.flags)), _QUOTES) for p in patterns):
        return _QUOTES
    return None


def _consumes_one_of(items: list, chars: frozenset[str]) -> bool:
    """True when every match of the node sequence `items` consumes one of `chars` (characters without case): a
    literal or a class of them only, in a group, a repeat of at least one, or every alternative of a branch."""
    for op, av in items:
        if op is sre.LITERAL and chr(av) in chars:
            return True
        if op is sre.IN and av and all(kind is sre.LITERAL and chr(code) in chars for kind, code in av):
            return True
        if op is sre.SUBPATTERN and _consumes_one_of(list(av[3]), chars):
            return True
        if op in (sre.MAX_REPEAT, sre.MIN_REPEAT) and av[0] >= 1 and _consumes_one_of(list(av[2]), chars):
            return True
        if op is sre.BRANCH and all(_consumes_one_of(list(branch), chars) for branch in av[1]):
            return True
    return False


def _implies(run: tuple[str, int], other: tuple[str, int]) -> bool:
    """A run of `run`'s characters and length is also a run of `other`'s (its characters are among them and
    it is at least as long)."""
    return run != other and set(run[0]) <= set(other[0]) and run[1] >= other[1]


def _line_starts(text: str) -> list[int]:
    return [0, *(m.end() for m in _NEWLINE.finditer(text))]


def _fold(text: str) -> str:
    """`text` lower-cased, each non-ASCII character that matches an ASCII letter case-insensitively (as `ſ`
    matches `s`, the Kelvin sign `k`) first replaced by that letter: a case-insensitive gate of ASCII letters
    that matches `text` matches its fold as a plain, lower-case regex."""
    if not text.isascii():
        table = _ascii_folds()
        text = _folds_regex().sub(lambda m: table[ord(m.group())], text)
    return text.lower()


@functools.cache
def _folds_regex() -> re.Pattern:
    return re.compile("[" + "".join(re.escape(chr(c)) for c in _ascii_folds()) + "]")


@functools.cache
def _ascii_folds() -> dict[int, str]:
    """Non-ASCII character -> the ASCII letter it matches case-insensitively (by sre's own rules)."""
    everything = "".join(map(chr, range(128, 0xD800))) + "".join(map(chr, range(0xE000, 0x110000)))
    table = {}
    for match in re.finditer("(?i)[a-z]", everything):
        letters = [a for a in string.ascii_lowercase if re.fullmatch(f"(?i){a}", match.group())]
        if len(letters) != 1:  # none seen; a fold to one letter would then lose the others
            raise RuntimeError(f"U+{ord(match.group()):04X} matches several ASCII letters case-insensitively")
        table[ord(match.group())] = letters[0]
    return table


def _alternation(bodies: list[str]) -> re.Pattern | None:
    return re.compile("|".join(f"(?:{body})" for body in dict.fromkeys(bodies))) if bodies else None


def _lowered_literal(text: str) -> str | None:
    """`text` as a plain regex over lower-cased ASCII text, for a case-insensitive literal: exact when each
    character is ASCII or matches no ASCII character case-insensitively (as `ſ` matches `s`)."""
    for char in text:
        if not char.isascii() and any(re.fullmatch(f"(?i:{re.escape(char)})", chr(c)) for c in range(128)):
            return None
    return re.escape(text.lower())


def _gate(plugin: BasePlugin) -> list[Branch] | None:
    cls = type(plugin)
    if isinstance(plugin, keyword.KeywordDetector) and cls.analyze_string is keyword.KeywordDetector.analyze_string:
        # every keyword regex (any file type) contains DENYLIST; IGNORECASE covers the case-sensitive ones too.
        # The words are lower-case letters and `_?`: over lower-cased text they are their own plain form.
        return [
            Branch(word, ci=True, lowered=word if _lowered_literal(word.replace("_?", "_")) else None)
            for word in keyword.DENYLIST
        ]
    if isinstance(plugin, HighEntropyStringsPlugin):
        gate = _entropy_gate(plugin)
        return [Branch(gate.pattern)] if gate else None
    if isinstance(plugin, RegexBasedDetector) and _regex_shaped(cls):
        branches: list[Branch] = []
        for pattern in plugin.denylist:
            if (cls.__name__, pattern.pattern) in _READ_OFF:
                branches.extend(_READ_OFF[cls.__name__, pattern.pattern])
            elif _line_safe(pattern) and not pattern.flags & re.IGNORECASE:
                # the pattern itself: no anchor, lookaround or line break to make it differ over joined lines
                fixed = _fixed(list(sre_parse.parse(pattern.pattern, pattern.flags)))
                literal = fixed[0] if fixed is not None and len(fixed) == 1 and fixed[0] else None
                branches.append(Branch(_scoped(pattern.pattern, pattern.flags), literal=literal))
            elif required := _required_literals(pattern):
                for text, flags in sorted(set(required)):
                    ci = bool(flags & re.IGNORECASE)
                    body = _scoped(re.escape(text), flags & re.ASCII)
                    branches.append(
                        Branch(body, ci, _lowered_literal(text) if ci else None, literal=None if ci else text)
                    )
            else:
                return None
        return branches or None
    return None


# Gates read off a pattern by hand where the literal rule finds only a weak one (the key is the pattern itself,
# so another detect-secrets version with another pattern falls back to the derived gate). Case-insensitive ones
# keep the pattern's flag; over lower-cased ASCII text their classes need only the lower-case letters.
_CLOUDANT, _IAM, _SOFTLAYER = CloudantDetector.denylist, IbmCloudIamDetector.denylist, SoftlayerDetector.denylist
_DIGITS, _LOWER = string.digits, string.ascii_lowercase
_CLOUDANT_NAME = Branch(
    "cl(?:oudant|ou)?[_-]?(?:api)?(?:key|pw|pass|token)",
    ci=True,
    lowered="cl(?:oudant|ou)?[_-]?(?:api)?(?:key|pw|pass|token)",
)
_CLOUDANT_HOST = Branch(r"\.cloudant\.com", ci=True, lowered=r"\.cloudant\.com")
_ALNUM64 = Branch("[a-z0-9]{64}", ci=True, lowered="[a-z0-9]{64}", run=(_DIGITS + _LOWER, 64))
# A gate that starts with a literal is searched many times faster than one that starts with a class (sre jumps
# from one occurrence of the literal to the next instead of trying every digit or letter), so where every match
# has a literal followed by a known part, that part is the gate.
_READ_OFF = {
    # every match has four dotted groups of 1-3 digits (lookarounds and the excluded ranges aside): from the first
    # dot on
    ("IPPublicDetector", IPPublicDetector.denylist[0].pattern): [Branch(r"\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]")],
    # `-us` and the datacenter digit after the 32-character key; the colon and the 35-character body of a bot token
    ("MailchimpDetector", MailchimpDetector.denylist[0].pattern): [Branch(r"-us[0-9]")],
    ("TelegramBotTokenDetector", TelegramBotTokenDetector.denylist[0].pattern): [Branch(r":[0-9A-Za-z_-]{35}")],
    # after the `r`/`s` of a Stripe key; a Discord token from its first dot on
    ("StripeDetector", StripeDetector.denylist[0].pattern): [Branch(r"k_live_[0-9a-zA-Z]{24}")],
    ("DiscordBotTokenDetector", DiscordBotTokenDetector.denylist[0].pattern): [
        Branch(r"\.[a-zA-Z\d_-]{6}\.[a-zA-Z\d_-]{27}")
    ],
    # the token and password bodies, without the delimiters (an anchor among them)
    ("ArtifactoryDetector", ArtifactoryDetector.denylist[0].pattern): [Branch(r"AKC[a-zA-Z0-9]{10,}")],
    ("ArtifactoryDetector", ArtifactoryDetector.denylist[1].pattern): [Branch(r"AP[\dABCDEF][a-zA-Z0-9]{8,}")],
    # the name and the assignment: `cl`, `clou` or `cloudant`, an optional `_`/`-` and `api`, then a key word (a
    # gate on the assigned value alone, a run of 24 letters, holds for every long identifier in YAML and code);
    # the Cloudant host of a URL
    ("CloudantDetector", _CLOUDANT[0].pattern): [_CLOUDANT_NAME],
    ("CloudantDetector", _CLOUDANT[1].pattern): [_CLOUDANT_NAME],
    ("CloudantDetector", _CLOUDANT[2].pattern): [_CLOUDANT_HOST],
    ("CloudantDetector", _CLOUDANT[3].pattern): [_CLOUDANT_HOST],
    # the key word (the name before it is optional), the assignment and the 44-character value, as in the pattern
    ("IbmCloudIamDetector", _IAM[0].pattern): [
        Branch(body, ci=True, lowered=body)
        for word in ("key", "pwd", "password", "pass", "token")
        for body in [rf"""{word}["']?\]? *(?:=|:|:=|=>| +|::) *["']?[a-z0-9_\-]{{44}}"""]
    ],
    ("SoftlayerDetector", _SOFTLAYER[0].pattern): [_ALNUM64],
    ("SoftlayerDetector", _SOFTLAYER[1].pattern): [_ALNUM64],
    # the quoted 40-character secret after `aws…key`
    ("AWSKeyDetector", AWSKeyDetector.denylist[1].pattern): [
        Branch("[0-9a-zA-Z/+]{40}", ci=True, lowered="[0-9a-z/+]{40}", run=(_DIGITS + _LOWER + "/+", 40))
    ],
}


def _scoped(body: str, flags: int) -> str:
    scoped = ("i" if flags & re.IGNORECASE else "") + ("a" if flags & re.ASCII else "")
    scoped += "x" if flags & re.VERBOSE else ""
    return f"(?{scoped}:{body})" if scoped else f"(?:{body})"


_SAFE_NODES = {
    sre.LITERAL,
    sre.NOT_LITERAL,
    sre.IN,
    sre.ANY,
    sre.SUBPATTERN,
    sre.BRANCH,
    sre.MAX_REPEAT,
    sre.MIN_REPEAT,
}


def _line_safe(pattern: re.Pattern) -> bool:
    """True when `pattern` (a str pattern without inline flags, named groups or back-references) has no
    anchors or lookarounds and can never match a line break: then it matches over lines joined by newlines
    exactly where it matches each line alone, and serves as its own gate."""
    if not isinstance(pattern.pattern, str) or "(?" in pattern.pattern.replace("(?:", "") or pattern.groupindex:
        return False
    if pattern.flags & (re.LOCALE | re.DOTALL | re.MULTILINE):
        return False
    try:
        parsed = sre_parse.parse(pattern.pattern, pattern.flags)
    except re.error:
        return False
    return _nodes_safe(list(parsed))


def _nodes_safe(items: list) -> bool:
    for op, av in items:
        if op not in _SAFE_NODES:
            return False  # anchors, lookarounds, back-references, conditionals
        if op is sre.LITERAL and av == 10 or op is sre.NOT_LITERAL and av != 10:
            return False
        if op is sre.IN and not _class_safe(av):
            return False
        if op is sre.SUBPATTERN and not _nodes_safe(list(av[3])):
            return False
        if op is sre.BRANCH and not all(_nodes_safe(list(branch)) for branch in av[1]):
            return False
        if op in (sre.MAX_REPEAT, sre.MIN_REPEAT) and not _nodes_safe(list(av[2])):
            return False
    return True


def _class_safe(items: list) -> bool:
    r"""A character class that cannot match a newline: no negation, no \s or negated category, no range over it."""
    for op, av in items:
        if op is sre.NEGATE:
            # a negated class is safe when it excludes the newline itself
            return any(
                kind is sre.LITERAL
                and code == 10
                or kind is sre.CATEGORY
                and code is sre.CATEGORY_SPACE
                or kind is sre.RANGE
                and code[0] <= 10 <= code[1]
                for kind, code in items
            )
        if op is sre.LITERAL and av == 10:
            return False
        if op is sre.RANGE and av[0] <= 10 <= av[1]:
            return False
        if op is sre.CATEGORY and av not in (sre.CATEGORY_DIGIT, sre.CATEGORY_WORD):
            return False
        if op not in (sre.LITERAL, sre.RANGE, sre.CATEGORY):
            return False
    return True


def _regex_shaped(cls: type) -> bool:
    """True when the class reports only matches of its `denylist` (the base analyze_string or one that filters
    it, and the base analyze_line or one that only narrows it by file name)."""
    from . import secrets_detectors  # noqa: PLC0415 - loaded by file path by detect-secrets too

    analyze_string_ok = cls.analyze_string in _REGEX_ANALYZERS or cls.analyze_string in {
        JwtTokenDetector.analyze_string,  # filters super().analyze_string
        secrets_detectors.DataDetector.analyze_string,  # finditer over the same denylist
    }
    analyze_line_ok = cls.analyze_line in _REGEX_LINE_ANALYZERS or cls.analyze_line is (
        secrets_detectors.DataDetector.analyze_line  # a file-name check, then the base analyze_line
    )
    # a data detector class loaded by file path is another module object than ours: compare by name
    if not (analyze_string_ok and analyze_line_ok) and any(c.__name__ == "DataDetector" for c in cls.__mro__):
        analyze_string_ok = cls.analyze_string.__qualname__ == "DataDetector.analyze_string"
        analyze_line_ok = cls.analyze_line.__qualname__ == "DataDetector.analyze_line"
    return analyze_string_ok and analyze_line_ok


def _entropy_gate(plugin: HighEntropyStringsPlugin) -> re.Pattern | None:
    cls = type(plugin)
    known = cls in (Base64HighEntropyString, HexHighEntropyString)
    if not known or cls.analyze_string is not HighEntropyStringsPlugin.analyze_string:
        return None
    if cls.analyze_line is not HighEntropyStringsPlugin.analyze_line or set(plugin.charset) & {"\n", "'", '"'}:
        return None
    # entropy of n characters <= log2(n): reported strings (entropy > limit) have more than 2**limit characters
    shortest = int(2**plugin.entropy_limit) + 1
    # the plugin's regex: a quote, a run of the charset, the same quote (eager search is never offered here)
    return re.compile(f"['\"][{re.escape(plugin.charset)}]{{{shortest},}}['\"]")


def _required_literals(pattern: re.Pattern) -> list[tuple[str, int]] | None:
    """Literals (with the pattern's case flags) one of which every match of `pattern` contains; None when
    none is known. Only `str` patterns with no flags beyond case, verbose, dotall and multiline."""
    if not isinstance(pattern.pattern, str) or pattern.flags & re.LOCALE:
        return None
    try:
        parsed = sre_parse.parse(pattern.pattern, pattern.flags)
    except re.error:
        return None
    flags = parsed.state.flags & _CASE_FLAGS
    found = _sequence(list(parsed))
    if not found or any(not text or "\n" in text for text in found):
        return None
    return [(text, flags) for text in found]


def _sequence(items: list) -> list[str] | None:
    """Alternatives one of which every match of the node sequence `items` contains: the best of its literal
    runs (a run goes on through groups that match only a few fixed strings, as `(?:_|-|)`) and of its
    required sub-parts (the one whose shortest alternative is longest)."""
    options: list[list[str]] = []
    run: list[str] = [""]
    for op, av in items:
        fixed = _fixed([(op, av)])
        if fixed is not None and len(run) * len(fixed) <= _MAX_FIXED:
            run = [head + tail for head in run for tail in fixed]
            continue
        if any(run):
            options.append(run)
        run = [""]
        sub = None
        if op is sre.SUBPATTERN:
            _group, add_flags, del_flags, body = av
            if not (add_flags | del_flags) & _CASE_FLAGS:  # scoped case flags: not worth following
                sub = _sequence(list(body))
        elif op is sre.BRANCH:
            alternatives = [_sequence(list(branch)) for branch in av[1]]
            if all(alternatives):
                sub = [text for alternative in alternatives for text in alternative]
        elif op in (sre.MAX_REPEAT, sre.MIN_REPEAT, getattr(sre, "POSSESSIVE_REPEAT", None)):
            low, _high, body = av
            if low >= 1:
                sub = _sequence(list(body))
        elif op is getattr(sre, "ATOMIC_GROUP", None):
            sub = _sequence(list(av))
        if sub:
            options.append(sub)
    if any(run):
        options.append(run)
    options = [option for option in options if all(option)]  # an empty alternative requires nothing
    if not options:
        return None
    return max(options, key=lambda alternatives: min(len(text) for text in alternatives))


_MAX_FIXED = 64


def _fixed(items: list) -> list[str] | None:
    """Every string the node sequence `items` matches, when they are a few fixed ones; else None."""
    out = [""]
    for op, av in items:
        if op is sre.LITERAL:
            choices = [chr(av)]
        elif op is sre.IN and all(kind is sre.LITERAL for kind, _ in av):
            choices = [chr(code) for _, code in av]
        elif op is sre.SUBPATTERN and not (av[1] | av[2]) & _CASE_FLAGS:
            choices = _fixed(list(av[3]))
        elif op is sre.BRANCH:
            parts = [_fixed(list(branch)) for branch in av[1]]
            choices = None if any(part is None for part in parts) else [t for part in parts for t in part]
        else:
            return None
        if choices is None or len(out) * len(choices) > _MAX_FIXED:
            return None
        out = [head + tail for head in out for tail in choices]
    return out
