"""File content of the sandbox's generated repositories, and the manifest of what was planted.

A *profile* is a kind of repository (a Python service, a Node web app, an infrastructure repo,
a clean library...). Its files are data, not Python strings: `templates/<profile>/<path>.tmpl`
(the suffix keeps our own linters off them and is stripped in the rendered path). What a profile
plants is described once in `templates/profiles.yaml`; line numbers are computed from the rendered
text, never typed by hand.

Placeholders substituted by `render_profile`:

- `{{slug}}`, `{{title}}`           the repository slug and a title made from it;
- `{{secret:KIND}}`, `{{secret:KIND:LABEL}}`
                                    a fresh secret drawn from the rng (same KIND:LABEL, same value);
- `{{sri:TEXT}}`, `{{sha1:TEXT}}`, `{{sha256:TEXT}}`, `{{h1:TEXT}}`
                                    deterministic lock-file hashes of TEXT (SRI, hex, go.sum h1);
- `{{@NAME}}`                       an invisible marker (removed) naming the line of a plant.

Any other `{{...}}` with a space or dash after the braces (Helm, Go templates) is left alone.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import pathlib
import random
import re
import string
from dataclasses import dataclass
from typing import Any

import yaml

__all__ = ["CLEAN_PROFILES", "PROFILES", "Planted", "advisories_dir", "render_profile"]

_HERE = pathlib.Path(__file__).resolve().parent
_TEMPLATES = _HERE / "templates"
_ADVISORIES = _HERE / "advisories"
_MANIFEST = _TEMPLATES / "profiles.yaml"
_SUFFIX = ".tmpl"

KINDS = ("secret", "dependency", "sast", "iac", "pipeline")
_TEST_DIRS = frozenset({"tests", "fixtures", "examples"})


@dataclass(frozen=True)
class Planted:
    kind: str  # "secret" | "dependency" | "sast" | "iac" | "pipeline"
    rule: str  # stable label: secret type, advisory id, SAST/IaC rule or posture check id
    path: str  # path inside the repository
    line: int | None  # 1-based line; None only for a whole-file property (BB-032, BB-033)
    detail: str  # one human sentence: what is planted and why it is bad
    value: str | None = None  # secrets: the exact planted secret string
    package: str | None = None  # dependencies: package name as the ecosystem spells it
    version: str | None = None  # dependencies: the planted version (OSV spelling, Go without "v")
    ecosystem: str | None = None  # OSV ecosystem name
    in_test_path: bool = False  # planted under tests/, fixtures/ or examples/
    dev_only: bool = False  # dependency declared as development-only


# -- secrets ------------------------------------------------------------------------------------

_B32 = string.ascii_uppercase + "234567"
_ALNUM = string.ascii_letters + string.digits


def _draw(rng: random.Random, alphabet: str, n: int) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


def _password(rng: random.Random) -> str:
    # Mixed classes so it never looks like an identifier or a placeholder.
    core = _draw(rng, _ALNUM, 17)
    return (
        core[:6]
        + rng.choice(string.digits)
        + core[6:12]
        + rng.choice("!#*")
        + core[12:]
        + rng.choice(string.ascii_uppercase)
    )


def _rsa_private_key(rng: random.Random) -> str:
    # DER header of a 2048-bit PKCS#1 RSAPrivateKey, then random bytes: well-formed enough for
    # secret scanners (they match the PEM armour), never a usable key.
    der = bytes.fromhex("308204a40201000282010100") + rng.randbytes(1180)
    body = base64.b64encode(der).decode("ascii")
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    label = "RSA " + "PRIVATE KEY"  # split so this module is not itself a secret-scanner hit
    return "\n".join([f"-----BEGIN {label}-----", *lines, f"-----END {label}-----"])


_SECRET_MAKERS = {
    "aws_access_key_id": lambda rng: "AKIA" + _draw(rng, _B32, 16),
    "aws_secret_access_key": lambda rng: _draw(rng, _ALNUM + "/+", 40),
    "github_token": lambda rng: "ghp_" + _draw(rng, _ALNUM, 36),
    "slack_token": lambda rng: "-".join(
        (
            "xoxb",
            rng.choice("123456789") + _draw(rng, string.digits, 11),
            rng.choice("123456789") + _draw(rng, string.digits, 12),
            _draw(rng, _ALNUM, 24),
        )
    ),
    "stripe_key": lambda rng: "sk_live_" + _draw(rng, _ALNUM, 24),
    "password": _password,
    "private_key": _rsa_private_key,
}

# -- hashes for lock files ----------------------------------------------------------------------


def _sri(text: str) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(text.encode()).digest()).decode()


def _h1(text: str) -> str:
    return "h1:" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()


_HASHERS = {
    "sri": _sri,
    "sha1": lambda t: hashlib.sha1(t.encode(), usedforsecurity=False).hexdigest(),
    "sha256": lambda t: hashlib.sha256(t.encode()).hexdigest(),
    "h1": _h1,
}

_PLACEHOLDER = re.compile(
    r"\{\{(?:"
    r"(?P<var>slug|title)"
    r"|secret:(?P<skind>[a-z0-9_]+)(?::(?P<slabel>[a-z0-9_-]+))?"
    r"|@(?P<marker>[A-Za-z0-9_.-]+)"
    r"|(?P<hash>sri|sha1|sha256|h1):(?P<htext>[^{}\s]+)"
    r")\}\}"
)
# A placeholder-looking token we do not know: a typo in a template, refuse to render it.
_UNKNOWN = re.compile(r"\{\{[A-Za-z@][^{}\s]*\}\}")


# -- templates and manifest ---------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _manifest() -> dict[str, Any]:
    data = yaml.safe_load(_MANIFEST.read_text(encoding="utf-8"))
    profiles = data["profiles"]
    for name, spec in profiles.items():
        plants = spec.get("plants") or []
        if spec.get("clean") and plants:
            raise ValueError(f"clean profile {name!r} declares plants")
        if not (_TEMPLATES / name).is_dir():
            raise ValueError(f"profile {name!r} has no template directory")
    return data


@functools.cache
def _templates(profile: str) -> tuple[tuple[str, str], ...]:
    root = _TEMPLATES / profile
    out = []
    for p in sorted(root.rglob("*" + _SUFFIX)):
        if p.is_file():
            rel = p.relative_to(root).as_posix()[: -len(_SUFFIX)]
            out.append((rel, p.read_text(encoding="utf-8")))
    if not out:
        raise ValueError(f"profile {profile!r} has no templates")
    return tuple(out)


PROFILES: tuple[str, ...] = tuple(_manifest()["profiles"])
CLEAN_PROFILES: tuple[str, ...] = tuple(name for name, spec in _manifest()["profiles"].items() if spec.get("clean"))


def advisories_dir() -> pathlib.Path:
    """Directory of the sandbox's OSV advisory JSON records (one file per advisory)."""
    return _ADVISORIES


def _title(slug: str) -> str:
    words = re.split(r"[-_.]+", slug)
    return " ".join(w[:1].upper() + w[1:] for w in words if w) or slug


def _line_of(text: str, needle: str, where: str) -> int:
    first = needle.split("\n", 1)[0]
    count = text.count(needle)
    if count != 1:
        raise ValueError(f"{where}: expected exactly one occurrence of {first!r}, found {count}")
    return text.count("\n", 0, text.index(needle)) + 1


def _in_test_path(path: str) -> bool:
    return any(part in _TEST_DIRS for part in path.split("/")[:-1])


def render_profile(profile: str, rng: random.Random, *, repo_slug: str) -> tuple[dict[str, bytes], list[Planted]]:
    """Files of a repository's initial tree (path -> bytes) and what was planted in them.

    Deterministic for a given rng state. Secrets are fresh per call (drawn from rng), well-formed
    for their type so detect-secrets' plugins fire (AWS key AKIA + 16 chars [A-Z2-7]; 40-char AWS
    secret; GitHub ghp_ + 36 alnum; Slack xoxb-…; a PEM 'BEGIN RSA PRIVATE KEY' block; Stripe
    sk_live_…; keyword assignments like db_password = "…" with a random value)."""
    profiles = _manifest()["profiles"]
    if profile not in profiles:
        raise KeyError(f"unknown profile {profile!r}; known: {', '.join(PROFILES)}")
    spec = profiles[profile]

    secrets: dict[str, str] = {}
    markers: dict[tuple[str, str], int] = {}
    texts: dict[str, str] = {}

    for path, template in _templates(profile):

        def substitute(m: re.Match[str], _path: str = path) -> str:
            if m.group("var") == "slug":
                return repo_slug
            if m.group("var") == "title":
                return _title(repo_slug)
            if m.group("skind"):
                kind = m.group("skind")
                if kind not in _SECRET_MAKERS:
                    raise ValueError(f"{profile}/{_path}: unknown secret kind {kind!r}")
                key = kind + (":" + m.group("slabel") if m.group("slabel") else "")
                if key not in secrets:
                    secrets[key] = _SECRET_MAKERS[kind](rng)
                return secrets[key]
            if m.group("hash"):
                return _HASHERS[m.group("hash")](m.group("htext"))
            return m.group(0)  # markers are resolved below, once the text is final

        text = _PLACEHOLDER.sub(substitute, template)
        # Markers never span lines, so their line numbers survive their own removal.
        for m in re.finditer(r"\{\{@([A-Za-z0-9_.-]+)\}\}", text):
            key = (path, m.group(1))
            if key in markers:
                raise ValueError(f"{profile}/{path}: marker {m.group(1)!r} used twice")
            markers[key] = text.count("\n", 0, m.start()) + 1
        text = re.sub(r"\{\{@[A-Za-z0-9_.-]+\}\}", "", text)
        leftover = _UNKNOWN.search(text)
        if leftover:
            raise ValueError(f"{profile}/{path}: unknown placeholder {leftover.group(0)!r}")
        texts[path] = text

    planted: list[Planted] = []
    for i, p in enumerate(spec.get("plants") or []):
        where = f"{profile} plant #{i} ({p.get('rule')})"
        kind, path = p["kind"], p["path"]
        if kind not in KINDS:
            raise ValueError(f"{where}: unknown kind {kind!r}")
        if path not in texts:
            raise ValueError(f"{where}: no file {path!r}")
        text = texts[path]
        value = None
        if "value_of" in p:
            if p["value_of"] not in secrets:
                raise ValueError(f"{where}: secret {p['value_of']!r} is not used in any template")
            value = secrets[p["value_of"]]
        if p.get("whole_file"):
            line = None
        elif "marker" in p:
            if (path, p["marker"]) not in markers:
                raise ValueError(f"{where}: marker {p['marker']!r} not found in {path}")
            line = markers[(path, p["marker"])]
        elif "match" in p:
            line = _line_of(text, p["match"], where)
        elif value is not None:
            line = _line_of(text, value, where)
        else:
            raise ValueError(f"{where}: needs marker, match, value_of or whole_file")
        if kind == "secret" and value is None:
            raise ValueError(f"{where}: a secret plant must name its secret")
        planted.append(
            Planted(
                kind=kind,
                rule=str(p["rule"]),
                path=path,
                line=line,
                detail=" ".join(str(p["detail"]).split()),
                value=value,
                package=p.get("package"),
                version=None if p.get("version") is None else str(p["version"]),
                ecosystem=p.get("ecosystem"),
                in_test_path=_in_test_path(path),
                dev_only=bool(p.get("dev_only", False)),
            )
        )

    return {path: text.encode("utf-8") for path, text in texts.items()}, planted
