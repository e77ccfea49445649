"""Secrets never leave as themselves: masked previews and salted hashes only.

The salt is per installation (`OX_BB_SECRET_SALT`, else a random file in the state dir, mode 0600,
made once), so hashes are stable across runs and data homes for fingerprinting but useless elsewhere.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import os
import re
import secrets as pysecrets
import tempfile
from collections import Counter
from pathlib import Path

from .config import state_dir
from .findings import normalise_snippet

SECRET_KEY_NAME = re.compile(
    r"(pass(word|wd)?|secret|token|api[_-]?key|private[_-]?key|credential|auth|"
    r"access[_-]?key|client[_-]?secret|signing|webhook[_-]?secret|dsn|conn(ection)?_?str)",
    re.IGNORECASE,
)


def _salt(home: Path | None = None) -> bytes:
    """`OX_BB_SECRET_SALT`, else the installation's salt in the state dir, made once (0600). Never
    per data home: fingerprints must not change when a home is moved or rebuilt. A home from before
    the state dir hands its salt over, so its findings keep their ids (`home`: that data home, named by the
    caller, e.g. the extract and scan stages, which make the salt before anything else hashes)."""
    if os.environ.get("OX_BB_SECRET_SALT"):
        return os.environ["OX_BB_SECRET_SALT"].encode()
    path = state_dir() / "secret-salt"
    if not path.exists():
        legacy = home / "cache" / "secret-salt" if home is not None else None
        salt = legacy.read_text().strip() if legacy and legacy.exists() else pysecrets.token_hex(32)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".secret-salt.")  # mode 0600
        try:
            os.write(fd, salt.encode())
            os.close(fd)
            os.link(tmp, path)  # create-only: of two first runs at once, one salt wins for both
        except FileExistsError:
            pass
        finally:
            os.unlink(tmp)
    return path.read_text().strip().encode()


def adopt_salt(home: Path) -> None:
    """Make the installation's salt now, taking over the one of `home` if it is a data home from before the
    state dir (stages call this first, so that scanners, which hash without knowing the home, use it)."""
    _salt(home)


def salted_hash(value: str, home: Path | None = None) -> str:
    """HMAC-SHA256 of the value under the installation's salt (hex)."""
    return hmac.new(_salt(home), value.encode(), hashlib.sha256).hexdigest()


def mask(value: str, keep: int = 4) -> str:
    """A few leading characters and the length, e.g. `AKIA… (20 chars)`."""
    shown = value[:keep] if len(value) > 2 * keep else value[:1]
    return f"{shown}… ({len(value)} chars)"


def entropy(value: str) -> float:
    if not value:
        return 0.0
    counts = Counter(value)
    return -sum(c / len(value) * math.log2(c / len(value)) for c in counts.values())


def looks_like_secret(key: str, value: str) -> bool:
    """A secret-looking pipeline variable: a secret-ish name with a non-trivial value, or a value
    that is long and random-looking whatever its name."""
    if not value:
        return False
    if SECRET_KEY_NAME.search(key) and len(value) >= 6:
        return True
    return len(value) >= 20 and entropy(value) >= 3.5 and not value.startswith(("http://", "https://", "/"))


def redact_url(url: str) -> str:
    """A URL fit for a table or a log line: no user info, no query values, and path segments that
    look like tokens (Slack-style webhook URLs carry their secret in the path) masked."""
    from urllib.parse import urlsplit, urlunsplit

    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable URL>"
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    segments = ["REDACTED" if len(s) >= 16 and entropy(s) >= 3.5 else s for s in parts.path.split("/")]
    query = "&".join(f"{p.split('=', 1)[0]}=REDACTED" for p in parts.query.split("&") if p) if parts.query else ""
    return urlunsplit((parts.scheme, host, "/".join(segments), query, ""))


# A quoted literal (with an optional r/b/u/f prefix); a quote inside a word ("isn't") opens none.
_LITERAL = re.compile(
    r"""(?<!\w)(?P<prefix>[rRbBuUfF]{0,2})(?P<q>'''|\"\"\"|'|")"""
    r"""(?P<body>(?:\\.|(?!(?P=q)).)*?)(?P=q)(?!\w)""",
    re.DOTALL,
)
_BARE_TOKEN = re.compile(r"[A-Za-z0-9+/=_\-.~]{20,}")


def redact_with_anchor(snippet: str, min_literal: int = 9) -> tuple[str, str]:
    """The snippet safe to store, and its fingerprint anchor: the normalised snippet, salted-hashed
    when redaction had to mask something, so a weak secret cannot be guessed back from a finding id."""
    redacted = redact_snippet(snippet, min_literal)
    anchor = normalise_snippet(snippet)
    return redacted, anchor if redacted == snippet else salted_hash(anchor)


def redact_snippet(text: str, min_literal: int = 9) -> str:
    """Code or tool output safe to store: string literals of `min_literal` characters or more, and bare
    random-looking tokens of 20 or more (a key in a comment), become masked previews."""

    def literal(match: re.Match) -> str:
        body, quote = match.group("body"), match.group("q")
        return match.group(0) if len(body) < min_literal else f"{match.group('prefix')}{quote}{mask(body)}{quote}"

    def token(match: re.Match) -> str:
        value = match.group(0)
        random_looking = any(c.isdigit() for c in value) and any(c.isalpha() for c in value) and entropy(value) >= 3.5
        return mask(value) if random_looking else value

    return _BARE_TOKEN.sub(token, _LITERAL.sub(literal, text))
