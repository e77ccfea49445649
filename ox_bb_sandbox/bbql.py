"""A subset of the Bitbucket Query Language (BBQL) for the sandbox: parse `q=` filters,
evaluate them against JSON-shaped items, and apply `sort=`."""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from lark import Lark, Token, Transformer, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedToken, VisitError

__all__ = ["BBQLError", "Query", "parse", "filter_items", "sort_items"]


class BBQLError(ValueError):
    """A query or sort the client got wrong; the message is meant for an HTTP 400 body."""


_GRAMMAR = r"""
    ?start: any_of

    // Flat repetition rather than left recursion keeps long AND/OR chains shallow.
    ?any_of: all_of ("OR"i all_of)*
    ?all_of: atom ("AND"i atom)*

    ?atom: PATH OP value                  -> comparison
         | PATH "IN"i "(" value ("," value)* ")" -> membership
         | "(" any_of ")"

    ?value: STRING                        -> string
          | DATETIME                      -> datetime
          | NUMBER                        -> number
          | "true"                        -> true
          | "false"                       -> false
          | "null"                        -> null

    PATH: NAME ("." NAME)*
    NAME: /[A-Za-z_][A-Za-z0-9_]*/
    OP: "!=" | "!~" | ">=" | "<=" | "=" | "~" | ">" | "<"
    STRING: /"(?:[^"\\]|\\.)*"/
    // Above NUMBER so that "2026-01-01" is not lexed as the number 2026.
    DATETIME.2: /\d{4}-\d{2}-\d{2}(?:[Tt]\d{2}(?::\d{2}(?::\d{2}(?:\.\d+)?)?)?(?:[Zz]|[+-]\d{2}(?::?\d{2})?)?)?/
    NUMBER: /-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?/

    %ignore /\s+/
"""

# Keywords are matched as whole PATH tokens, so fields such as "origin" or "index" stay fields.
_PARSER = Lark(_GRAMMAR, parser="lalr", lexer="basic", maybe_placeholders=False)

_ISO_DATETIME = re.compile(
    r"\d{4}-\d{2}-\d{2}(?:[Tt ]\d{2}(?::\d{2}(?::\d{2}(?:\.\d+)?)?)?(?:[Zz]|[+-]\d{2}(?::?\d{2})?)?)?"
)


# ---------------------------------------------------------------------------
# Values


def _is_number(value: Any) -> bool:
    # bool is an int subclass, but `is_private = 1` must not match True.
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _to_datetime(value: Any) -> datetime | None:
    """An aware datetime for ISO-8601 strings (and datetimes); None for anything else.
    Naive values are taken as UTC, which is what Bitbucket means by them."""
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str) and _ISO_DATETIME.fullmatch(value):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return None
    else:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _unescape(literal: str) -> str:
    # A backslash makes the next character literal: \" -> ", \\ -> \.
    return re.sub(r"\\(.)", r"\1", literal[1:-1], flags=re.DOTALL)


def _resolve(item: Any, path: tuple[str, ...]) -> list[Any]:
    """Every value the dotted path reaches; lists fan out so `participants.user.nickname`
    yields one value per participant. An empty fan-out counts as a single missing value."""
    values = _flatten([item])
    for key in path:
        values = _flatten([v.get(key) if isinstance(v, dict) else None for v in values])
    return values or [None]


def _flatten(values: list[Any]) -> list[Any]:
    flat: list[Any] = []
    for value in values:
        if isinstance(value, list):
            flat.extend(_flatten(value))
        else:
            flat.append(value)
    return flat


# ---------------------------------------------------------------------------
# Comparisons. Each returns False, never raises, when the two sides are incomparable.


def _equals(actual: Any, expected: Any) -> bool:
    if expected is None:
        return actual is None
    if isinstance(expected, bool):
        return isinstance(actual, bool) and actual is expected
    if _is_number(expected):
        return _is_number(actual) and actual == expected
    if isinstance(expected, datetime):
        return _to_datetime(actual) == expected
    return isinstance(actual, str) and actual == expected


def _contains(actual: Any, expected: Any) -> bool:
    return isinstance(actual, str) and isinstance(expected, str) and expected.casefold() in actual.casefold()


def _comparable(actual: Any, expected: Any) -> tuple[Any, Any] | None:
    if isinstance(expected, datetime):
        actual_dt = _to_datetime(actual)
        return None if actual_dt is None else (actual_dt, expected)
    if _is_number(expected):
        return (actual, expected) if _is_number(actual) else None
    if isinstance(expected, str) and isinstance(actual, str):
        # A quoted ISO date against an ISO field still means "compare instants":
        # lexical order is wrong as soon as the offsets differ.
        actual_dt, expected_dt = _to_datetime(actual), _to_datetime(expected)
        if actual_dt is not None and expected_dt is not None:
            return actual_dt, expected_dt
        return actual, expected
    return None


def _ordering(compare: Callable[[Any, Any], bool]) -> Callable[[Any, Any], bool]:
    def test(actual: Any, expected: Any) -> bool:
        pair = _comparable(actual, expected)
        return pair is not None and compare(*pair)

    return test


# op -> (positive test, negated?). Negated operators are the exact negation of their positive
# counterpart over all values a path reaches, so `a != x` is always `NOT (a = x)`.
_OPERATORS: dict[str, tuple[Callable[[Any, Any], bool], bool]] = {
    "=": (_equals, False),
    "!=": (_equals, True),
    "~": (_contains, False),
    "!~": (_contains, True),
    ">": (_ordering(operator.gt), False),
    ">=": (_ordering(operator.ge), False),
    "<": (_ordering(operator.lt), False),
    "<=": (_ordering(operator.le), False),
}


# ---------------------------------------------------------------------------
# Syntax tree


class _Node(Protocol):
    def matches(self, item: dict) -> bool: ...

    def paths(self) -> list[str]: ...


@dataclass(frozen=True, slots=True)
class _Comparison:
    path: str
    op: str
    value: Any

    def matches(self, item: dict) -> bool:
        test, negated = _OPERATORS[self.op]
        hit = any(test(actual, self.value) for actual in _resolve(item, tuple(self.path.split("."))))
        return hit != negated

    def paths(self) -> list[str]:
        return [self.path]


@dataclass(frozen=True, slots=True)
class _Membership:
    path: str
    values: tuple[Any, ...]

    def matches(self, item: dict) -> bool:
        actuals = _resolve(item, tuple(self.path.split(".")))
        return any(_equals(actual, value) for actual in actuals for value in self.values)

    def paths(self) -> list[str]:
        return [self.path]


@dataclass(frozen=True, slots=True)
class _All:
    parts: tuple[_Node, ...]

    def matches(self, item: dict) -> bool:
        return all(part.matches(item) for part in self.parts)

    def paths(self) -> list[str]:
        return [path for part in self.parts for path in part.paths()]


@dataclass(frozen=True, slots=True)
class _Any:
    parts: tuple[_Node, ...]

    def matches(self, item: dict) -> bool:
        return any(part.matches(item) for part in self.parts)

    def paths(self) -> list[str]:
        return [path for part in self.parts for path in part.paths()]


@v_args(inline=True)
class _ToNodes(Transformer):
    def comparison(self, path: Token, op: Token, value: Any) -> _Comparison:
        return _Comparison(str(path), str(op), value)

    def membership(self, path: Token, *values: Any) -> _Membership:
        return _Membership(str(path), values)

    def all_of(self, *parts: _Node) -> _All:
        return _All(parts)

    def any_of(self, *parts: _Node) -> _Any:
        return _Any(parts)

    def string(self, token: Token) -> str:
        return _unescape(str(token))

    def number(self, token: Token) -> int | float:
        text = str(token)
        return int(text) if re.fullmatch(r"-?\d+", text) else float(text)

    def datetime(self, token: Token) -> datetime:
        parsed = _to_datetime(str(token))
        if parsed is None:
            raise BBQLError(f'Invalid query: invalid datetime "{token}" at position {token.start_pos}')
        return parsed

    def true(self) -> bool:
        return True

    def false(self) -> bool:
        return False

    def null(self) -> None:
        return None


@dataclass(frozen=True)
class Query:
    """A parsed BBQL expression."""

    text: str
    root: _Node
    # The dotted paths in order of first appearance, so error messages name the first offender.
    ordered_fields: tuple[str, ...]

    @property
    def fields(self) -> frozenset[str]:
        return frozenset(self.ordered_fields)

    def matches(self, item: dict) -> bool:
        return self.root.matches(item)


def _describe(token: Token) -> str:
    if token.type == "$END":
        return "Invalid query: unexpected end of query"
    return f'Invalid query: unexpected token "{token}" at position {token.start_pos}'


def parse(q: str) -> Query:
    """Parse a BBQL expression. Positions in error messages are 0-based offsets into `q`."""
    if not q or not q.strip():
        raise BBQLError("Invalid query: empty query")
    try:
        root = _ToNodes().transform(_PARSER.parse(q))
    except UnexpectedToken as err:
        raise BBQLError(_describe(err.token)) from None
    except UnexpectedCharacters as err:
        if q[err.pos_in_stream] == '"':
            raise BBQLError(f"Invalid query: unterminated string at position {err.pos_in_stream}") from None
        raise BBQLError(
            f'Invalid query: unexpected character "{q[err.pos_in_stream]}" at position {err.pos_in_stream}'
        ) from None
    except UnexpectedEOF:
        raise BBQLError("Invalid query: unexpected end of query") from None
    except VisitError as err:
        if isinstance(err.orig_exc, BBQLError):
            raise err.orig_exc from None
        raise
    return Query(q, root, tuple(dict.fromkeys(root.paths())))


def filter_items(items: list[dict], q: str | None, filterable: Collection[str]) -> list[dict]:
    """Items matching `q`, in their original order. No-op when q is empty/None. Raises
    BBQLError('Field "X" does not support filtering') when the query references a path not in
    `filterable` (exact dotted path match)."""
    if not q or not q.strip():
        return list(items)
    query = parse(q)
    for path in query.ordered_fields:
        if path not in filterable:
            raise BBQLError(f'Field "{path}" does not support filtering')
    return [item for item in items if query.matches(item)]


def _sort_key(value: Any) -> tuple[int, int, Any]:
    """(missing, kind, value): kinds never compare with each other, so mixed data cannot raise.
    ISO strings sort as instants, since offsets make their text order unreliable."""
    if value is None:
        return (1, 0, 0)
    if isinstance(value, bool):
        return (0, 0, value)
    if _is_number(value):
        return (0, 1, value)
    as_datetime = _to_datetime(value)
    if as_datetime is not None:
        return (0, 2, as_datetime)
    if isinstance(value, str):
        return (0, 3, value)
    return (0, 4, 0)  # objects and lists: no meaningful order, keep their relative order


def sort_items(items: list[dict], sort: str | None, sortable: Collection[str]) -> list[dict]:
    """`sort=field` ascending, `sort=-field` descending, one dotted field. None/'' = unchanged
    order. Unknown field -> BBQLError('Invalid sort field: "X"'). Stable.

    Descending is the exact reverse of ascending (as in SQL's default): null/missing values sort
    last ascending and first descending. A path reaching a list sorts by its first element."""
    if not sort or not sort.strip():
        return list(items)
    sort = sort.strip()
    descending = sort.startswith("-")
    field = sort[1:] if descending else sort
    if field not in sortable:
        raise BBQLError(f'Invalid sort field: "{field}"')
    path = tuple(field.split("."))
    # Python's sort stays stable with reverse=True: equal keys keep their input order.
    return sorted(items, key=lambda item: _sort_key(_resolve(item, path)[0]), reverse=descending)
