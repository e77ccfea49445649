"""Sandbox repository content: templates render deterministically, every plant points at what it
claims, clean profiles stay clean, and the planted dependencies agree with the OSV advisory set.

The helpers below (a tiny lock-file reader, an OSV range check, line-level pipeline checks) exist
for these tests only; they are reference oracles, not the scanners.
"""

from __future__ import annotations

import ast
import functools
import json
import random
import re
import time
import tomllib
import xml.etree.ElementTree as ET
from collections import Counter

import pytest
import yaml
from packaging.version import Version

from ox_bb_sandbox.content import (
    CLEAN_PROFILES,
    PROFILES,
    Planted,
    advisories_dir,
    render_profile,
)

SLUG = "orders-api"
REQUIRED_PROFILES = {
    "python-service",
    "node-web",
    "java-api",
    "go-worker",
    "infra",
    "ruby-rust",
    "clean-python",
    "clean-node",
    "docs",
}
KINDS = {"secret", "dependency", "sast", "iac", "pipeline"}
PIPELINE_RULES = {f"BB-0{n}" for n in range(26, 34)}
WHOLE_FILE_RULES = {"BB-032", "BB-033"}
ECOSYSTEMS = {"PyPI", "npm", "Maven", "Go", "RubyGems", "crates.io"}
WITHDRAWN_ID = "OXSB-2026-0001"
NOT_AFFECTED_ID = "GHSA-6757-jp84-gxfx"  # PyYAML < 5.3.1; python-service pins exactly 5.3.1

SECRET_FORMATS = {
    "aws-access-key": r"AKIA[A-Z2-7]{16}",
    "aws-secret-key": r"[A-Za-z0-9/+]{40}",
    "github-token": r"ghp_[A-Za-z0-9]{36}",
    "slack-token": r"xoxb-[0-9]{10,13}-[0-9]{10,13}-[A-Za-z0-9]{24}",
    "stripe-key": r"sk_live_[A-Za-z0-9]{24,}",
    "private-key": r"-----BEGIN RSA PRIVATE[ ]KEY-----\n(?:[A-Za-z0-9+/=]{1,64}\n){10,}"
    r"-----END RSA PRIVATE[ ]KEY-----",
    "password-assignment": r"[A-Za-z0-9!#*]{16,}",
}
# What the planted line must contain, per rule (an oracle independent of the markers).
CONSTRUCTS = {
    "python-eval": "eval(",
    "python-subprocess-shell": "shell=True",
    "python-tls-verify-disabled": "verify=False",
    "python-pickle": "pickle.loads(",
    "python-yaml-load": "yaml.load(",
    "python-weak-hash": "hashlib.md5(",
    "python-hardcoded-password": "_password = ",
    "js-eval": "eval(",
    "js-child-process-exec": 'exec("',
    "js-weak-hash": 'createHash("md5")',
    "js-tls-reject-unauthorized": "rejectUnauthorized: false",
    "java-command-injection": "Runtime.getRuntime().exec(",
    "java-weak-hash": 'MessageDigest.getInstance("MD5")',
    "java-deserialization": ".readObject()",
    "java-sql-injection": 'executeQuery("SELECT',
    "java-trust-all-certs": "checkServerTrusted(",
    "go-command-injection": '"sh", "-c"',
    "go-sql-injection": 'QueryRow("SELECT',
    "go-weak-hash": "md5.Sum(",
    "go-tls-skip-verify": "InsecureSkipVerify: true",
    "terraform-s3-public": '"public-read"',
    "terraform-ebs-unencrypted": "encrypted         = false",
    "terraform-sg-open-ssh": '"0.0.0.0/0"',
    "terraform-rds-unencrypted": "storage_encrypted   = false",
    "cloudformation-s3-public": "AccessControl: PublicRead",
    "k8s-privileged": "privileged: true",
    "k8s-run-as-root": "runAsUser: 0",
    "k8s-host-network": "hostNetwork: true",
    "k8s-image-latest": ":latest",
    "dockerfile-latest": ":latest",
    "dockerfile-add-url": "ADD https://",
    "dockerfile-root": "USER root",
    "BB-027": "image:",
    "BB-028": "pipe:",
    "BB-029": "| ",
    "BB-030": "deployment: production",
    "BB-031": "self.hosted",
}
SECRET_LIKE = [
    re.compile(r"AKIA[0-9A-Z]{16}"),
    re.compile(r"ghp_[A-Za-z0-9]{20,}"),
    re.compile(r"xox[abposr]-"),
    re.compile(r"BEGIN [A-Z ]*PRIVATE KEY"),
    re.compile(r"sk_live_"),
    re.compile(r"(?i)(password|passwd|secret|token|api_?key)\w*\s*[:=]+\s*[\"'][^\"'\s$]{6,}[\"']"),
]
INSECURE_IN_CLEAN = [
    "eval(",
    "shell=True",
    "verify=False",
    "pickle",
    "yaml.load(",
    "md5",
    "MD5",
    "rejectUnauthorized",
    "InsecureSkipVerify",
    "readObject",
    ":latest",
    "privileged",
    "self.hosted",
    "| bash",
    "| sh",
    "USER root",
]


# -- helpers --------------------------------------------------------------------------------------


def render(profile: str, seed: int = 1234) -> tuple[dict[str, bytes], list[Planted]]:
    return render_profile(profile, random.Random(seed), repo_slug=SLUG)


@pytest.fixture(scope="module")
def rendered() -> dict[str, tuple[dict[str, str], list[Planted]]]:
    out = {}
    for profile in PROFILES:
        files, plants = render(profile)
        out[profile] = ({p: b.decode("utf-8") for p, b in files.items()}, plants)
    return out


@functools.lru_cache(maxsize=1)
def advisories() -> tuple[dict, ...]:
    return tuple(json.loads(p.read_text(encoding="utf-8")) for p in sorted(advisories_dir().glob("*.json")))


def norm_name(ecosystem: str, name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower() if ecosystem == "PyPI" else name


def _tokens(v: str) -> list[tuple[int, object]]:
    out: list[tuple[int, object]] = []
    for tok in re.findall(r"\d+|[A-Za-z]+", v.lstrip("v")):
        if tok.isdigit():
            out.append((1, int(tok)))
        elif tok.lower() not in ("release", "final", "ga"):
            out.append((0, tok.lower()))  # a pre-release tag sorts below any number
    return out


def vcmp(ecosystem: str, a: str, b: str) -> int:
    """Good enough for the versions in this data set (PEP 440 for PyPI, dotted numbers else)."""
    if ecosystem == "PyPI":
        va, vb = Version(a), Version(b)
        return (va > vb) - (va < vb)
    ta, tb = _tokens(a), _tokens(b)
    n = max(len(ta), len(tb))
    ta += [(1, 0)] * (n - len(ta))
    tb += [(1, 0)] * (n - len(tb))
    return (ta > tb) - (ta < tb)


def in_range(ecosystem: str, version: str, events: list[dict]) -> bool:
    def key(ev: dict):
        ((_, val),) = ev.items()
        return functools.cmp_to_key(
            lambda x, y: (
                -1 if x == "0" and y != "0" else 1 if y == "0" and x != "0" else 0 if x == y else vcmp(ecosystem, x, y)
            )
        )(val)

    affected = False
    for ev in sorted(events, key=key):
        ((kind, val),) = ev.items()
        if kind == "introduced":
            if val == "0" or vcmp(ecosystem, val, version) <= 0:
                affected = True
            else:
                break
        elif kind in ("fixed", "limit"):
            if vcmp(ecosystem, val, version) <= 0:
                affected = False
            else:
                break
        elif kind == "last_affected":
            if vcmp(ecosystem, val, version) < 0:
                affected = False
            else:
                break
    return affected


def affects(adv: dict, ecosystem: str, name: str, version: str) -> bool:
    for a in adv["affected"]:
        pkg = a["package"]
        if pkg["ecosystem"] != ecosystem or norm_name(ecosystem, pkg["name"]) != norm_name(ecosystem, name):
            continue
        if version in a.get("versions", []):
            return True
        for r in a.get("ranges", []):
            if r["type"] in ("ECOSYSTEM", "SEMVER") and in_range(ecosystem, version, r["events"]):
                return True
    return False


def live_advisories() -> list[dict]:
    return [a for a in advisories() if not a.get("withdrawn")]


def declared_dependencies(files: dict[str, str]) -> set[tuple[str, str, str, str, bool]]:
    """(ecosystem, name, version, path, dev) for every pinned/locked package in the tree."""
    found: set[tuple[str, str, str, str, bool]] = set()
    for path, text in files.items():
        base = path.rsplit("/", 1)[-1]
        if re.fullmatch(r"requirements.*\.txt", base):
            dev = "dev" in base
            for m in re.finditer(r"^([A-Za-z0-9_.\-]+)==([^\s;#]+)", text, re.MULTILINE):
                found.add(("PyPI", m[1], m[2], path, dev))
        elif base == "Pipfile.lock":
            data = json.loads(text)
            for section, dev in (("default", False), ("develop", True)):
                for name, info in data.get(section, {}).items():
                    found.add(("PyPI", name, info["version"].lstrip("="), path, dev))
        elif base == "package-lock.json":
            for key, info in json.loads(text)["packages"].items():
                if key:
                    name = key.split("node_modules/")[-1]
                    found.add(("npm", name, info["version"], path, bool(info.get("dev"))))
        elif base == "yarn.lock":
            entry = r'^"?(@?[^@\s"]+)@[^\n]*:\n  version "([^"]+)"'
            for m in re.finditer(entry, text, re.MULTILINE):
                found.add(("npm", m[1], m[2], path, False))
        elif base == "go.mod":
            for m in re.finditer(r"^\s+([^\s]+) v(\S+)", text, re.MULTILINE):
                found.add(("Go", m[1], m[2], path, False))
        elif base == "Gemfile.lock":
            for m in re.finditer(r"^    ([A-Za-z0-9_\-]+) \(([^)]+)\)$", text, re.MULTILINE):
                found.add(("RubyGems", m[1], m[2], path, False))
        elif base == "Cargo.lock":
            for m in re.finditer(r'\[\[package\]\]\nname = "([^"]+)"\nversion = "([^"]+)"', text):
                found.add(("crates.io", m[1], m[2], path, False))
        elif base == "pom.xml":
            ns = {"m": "http://maven.apache.org/POM/4.0.0"}
            for dep in ET.fromstring(text).iterfind("m:dependencies/m:dependency", ns):
                g, a, v = (dep.findtext(f"m:{t}", namespaces=ns) for t in ("groupId", "artifactId", "version"))
                scope = dep.findtext("m:scope", default="compile", namespaces=ns)
                found.add(("Maven", f"{g}:{a}", v, path, scope == "test"))
    return found


def expected_dependency_findings(files: dict[str, str]) -> set[tuple[str, str, str, str, bool]]:
    out = set()
    for eco, name, version, path, dev in declared_dependencies(files):
        for adv in live_advisories():
            if affects(adv, eco, name, version):
                out.add((adv["id"], norm_name(eco, name), version, path, dev))
    return out


def plants_of(rendered, kind: str | None = None):
    for profile in PROFILES:
        files, plants = rendered[profile]
        for p in plants:
            if kind is None or p.kind == kind:
                yield profile, files, p


def line_at(files: dict[str, str], p: Planted) -> str:
    return files[p.path].split("\n")[p.line - 1]


class _AnyTagLoader(yaml.SafeLoader):
    """SafeLoader that accepts CloudFormation short-form tags such as !GetAtt."""


_AnyTagLoader.add_multi_constructor("!", lambda loader, suffix, node: None)


# -- (a) determinism ------------------------------------------------------------------------------


@pytest.mark.parametrize("profile", PROFILES)
def test_render_is_deterministic_for_a_seed(profile):
    assert render(profile, 7) == render(profile, 7)


@pytest.mark.parametrize("profile", PROFILES)
def test_secrets_are_fresh_per_seed_and_nothing_else_changes(profile):
    files_a, plants_a = render(profile, 7)
    files_b, plants_b = render(profile, 8)
    assert [(p.kind, p.rule, p.path, p.line) for p in plants_a] == [(p.kind, p.rule, p.path, p.line) for p in plants_b]
    for a, b in zip(plants_a, plants_b):
        if a.value is not None:
            assert a.value != b.value, (profile, a.rule, a.path)
    secret_paths = {p.path for p in plants_a if p.value is not None}
    assert set(files_a) == set(files_b)
    for path in files_a:
        if path not in secret_paths:
            assert files_a[path] == files_b[path], (profile, path)


def test_slug_is_substituted():
    files, _ = render_profile("python-service", random.Random(1), repo_slug="billing-core")
    readme = files["README.md"].decode()
    assert readme.startswith("# Billing Core\n")
    assert b"billing-core" in files["bitbucket-pipelines.yml"]


def test_unknown_profile_is_rejected():
    with pytest.raises(KeyError):
        render_profile("no-such-profile", random.Random(1), repo_slug=SLUG)


# -- (b) every plant points at what it claims -----------------------------------------------------


def test_every_plant_has_a_line_unless_whole_file(rendered):
    for profile, files, p in plants_of(rendered):
        assert p.path in files, (profile, p)
        if p.rule in WHOLE_FILE_RULES:
            assert p.line is None, (profile, p.rule)
        else:
            assert isinstance(p.line, int) and 1 <= p.line <= len(files[p.path].split("\n")), (
                profile,
                p.rule,
                p.path,
                p.line,
            )
        assert p.detail and p.detail.endswith(".") and "\n" not in p.detail, (profile, p.rule)


def test_secret_plants_point_at_their_value(rendered):
    for profile, files, p in plants_of(rendered):
        if p.kind != "secret" and p.rule != "BB-026":
            assert p.value is None, (profile, p.rule)
            continue
        assert p.value, (profile, p.rule)
        assert p.value.split("\n", 1)[0] in line_at(files, p), (profile, p.rule, p.path)
        assert files[p.path].count(p.value) == 1, (profile, p.rule, p.path)
        if p.kind == "secret":
            assert p.rule in SECRET_FORMATS, p.rule
            assert re.fullmatch(SECRET_FORMATS[p.rule], p.value), (profile, p.rule, p.value)
        if p.rule == "password-assignment":
            assert re.search(r"password\s*=\s*\"", line_at(files, p)), line_at(files, p)


def test_bb026_duplicates_a_secret_plant_of_the_pipeline_file(rendered):
    for profile, _files, p in plants_of(rendered):
        if p.rule == "BB-026":
            _, plants = rendered[profile]
            assert p.path == "bitbucket-pipelines.yml"
            assert any(s.kind == "secret" and s.value == p.value and s.line == p.line for s in plants), profile


def test_construct_plants_point_at_the_construct(rendered):
    for profile, files, p in plants_of(rendered):
        if p.kind in ("sast", "iac", "pipeline") and p.line is not None and p.rule != "BB-026":
            assert p.rule in CONSTRUCTS, f"add {p.rule} to CONSTRUCTS"
            assert CONSTRUCTS[p.rule] in line_at(files, p), (profile, p.rule, line_at(files, p))


def test_dependency_plants_point_at_the_package(rendered):
    for profile, files, p in plants_of(rendered, "dependency"):
        assert p.package and p.version and p.ecosystem in ECOSYSTEMS, (profile, p)
        short = re.split(r"[:/]", p.package)[-1].lower()
        assert short in line_at(files, p).lower().replace("_", "-"), (profile, p.rule, p.path)
        window = "\n".join(files[p.path].split("\n")[p.line - 1 : p.line + 12])
        assert p.version in window, (profile, p.rule, p.package, p.version)


def test_in_test_path_flag(rendered):
    flagged = [(profile, p.path) for profile, _f, p in plants_of(rendered) if p.in_test_path]
    assert flagged == [("python-service", "tests/fixtures/legacy_settings.py")]
    for _profile, _f, p in plants_of(rendered):
        parts = set(p.path.split("/")[:-1])
        assert p.in_test_path == bool(parts & {"tests", "fixtures", "examples"})


# -- (c) clean profiles ---------------------------------------------------------------------------


def test_clean_profiles_plant_nothing(rendered):
    assert set(CLEAN_PROFILES) >= {"clean-python", "clean-node", "docs"}
    for profile in CLEAN_PROFILES:
        assert rendered[profile][1] == [], profile


@pytest.mark.parametrize("profile", CLEAN_PROFILES)
def test_clean_profiles_have_no_secret_looking_strings(rendered, profile):
    files, _ = rendered[profile]
    for path, text in files.items():
        for rx in SECRET_LIKE:
            assert not rx.search(text), (profile, path, rx.pattern)


@pytest.mark.parametrize("profile", CLEAN_PROFILES)
def test_clean_profiles_have_no_insecure_constructs(rendered, profile):
    files, _ = rendered[profile]
    for path, text in files.items():
        for needle in INSECURE_IN_CLEAN:
            assert needle not in text, (profile, path, needle)
    assert "SECURITY.md" in files and "README.md" in files


@pytest.mark.parametrize("profile", CLEAN_PROFILES)
def test_clean_pipelines_are_hardened(rendered, profile):
    files, _ = rendered[profile]
    text = files.get("bitbucket-pipelines.yml")
    if text is None:
        assert profile == "docs"
        return
    doc = yaml.safe_load(text)
    assert "@sha256:" in doc["image"]
    assert not pipeline_findings(text)
    assert re.search(r"name: Security scan", text)
    assert "cyclonedx" in text.lower()
    production = [m for m in re.finditer(r"deployment: production", text)]
    assert production, "clean pipelines deploy to production behind a manual gate"


# -- (d) planted dependencies agree with the advisory set -----------------------------------------


def test_every_planted_dependency_is_affected_by_its_advisory(rendered):
    by_id = {a["id"]: a for a in advisories()}
    for profile, _files, p in plants_of(rendered, "dependency"):
        adv = by_id.get(p.rule)
        assert adv is not None, (profile, p.rule)
        assert not adv.get("withdrawn"), (profile, p.rule)
        assert affects(adv, p.ecosystem, p.package, p.version), (profile, p.rule, p.version)


@pytest.mark.parametrize("profile", PROFILES)
def test_dependency_plants_are_exactly_the_affected_declarations(rendered, profile):
    files, plants = rendered[profile]
    planted = {
        (p.rule, norm_name(p.ecosystem, p.package), p.version, p.path, p.dev_only)
        for p in plants
        if p.kind == "dependency"
    }
    assert len(planted) == sum(p.kind == "dependency" for p in plants)
    assert planted == expected_dependency_findings(files)


def test_withdrawn_record_targets_a_planted_package(rendered):
    withdrawn = [a for a in advisories() if a.get("withdrawn")]
    assert [a["id"] for a in withdrawn] == [WITHDRAWN_ID]
    record = withdrawn[0]
    assert "sandbox test record" in record["details"].lower() or "sandbox" in record["summary"].lower()
    planted = {(p.ecosystem, p.package, p.version) for _pr, _f, p in plants_of(rendered, "dependency")}
    assert any(affects(record, eco, name, ver) for eco, name, ver in planted)
    assert all(p.rule != WITHDRAWN_ID for _pr, _f, p in plants_of(rendered))


def test_not_affected_advisory_has_its_package_planted_at_a_fixed_version(rendered):
    record = next(a for a in advisories() if a["id"] == NOT_AFFECTED_ID)
    declared = set()
    for profile in PROFILES:
        declared |= declared_dependencies(rendered[profile][0])
    names = {norm_name(a["package"]["ecosystem"], a["package"]["name"]) for a in record["affected"]}
    hits = [d for d in declared if norm_name(d[0], d[1]) in names]
    assert hits, "the package of the not-affected advisory must be planted somewhere"
    assert not any(affects(record, eco, name, ver) for eco, name, ver, _p, _d in hits)


def test_every_live_advisory_is_exercised(rendered):
    planted_ids = {p.rule for _pr, _f, p in plants_of(rendered, "dependency")}
    for adv in live_advisories():
        assert adv["id"] in planted_ids or adv["id"] == NOT_AFFECTED_ID, adv["id"]


def test_clean_pins_cover_advisory_packages_at_fixed_versions(rendered):
    advisory_packages = {
        (a["package"]["ecosystem"], norm_name(a["package"]["ecosystem"], a["package"]["name"]))
        for adv in live_advisories()
        for a in adv["affected"]
    }
    clean_declared = set()
    for profile in CLEAN_PROFILES:
        clean_declared |= {(eco, norm_name(eco, name)) for eco, name, *_ in declared_dependencies(rendered[profile][0])}
    assert len(clean_declared & advisory_packages) >= 5


def test_range_helper_sanity():
    assert in_range("npm", "4.17.15", [{"introduced": "0"}, {"fixed": "4.17.20"}])
    assert not in_range("npm", "4.17.20", [{"introduced": "0"}, {"fixed": "4.17.20"}])
    assert in_range("Maven", "5.3.17", [{"introduced": "5.3.0"}, {"fixed": "5.3.18"}])
    assert not in_range("Maven", "5.2.20.RELEASE", [{"introduced": "0"}, {"fixed": "5.2.20.RELEASE"}])
    assert in_range("RubyGems", "2.2.3", [{"introduced": "2.2"}, {"fixed": "2.2.3.1"}])
    assert not in_range("npm", "5.0.0", [{"introduced": "5.0.0-alpha.1"}, {"fixed": "5.0.0-beta.3"}])
    assert in_range("PyPI", "2.19.1", [{"introduced": "2.3.0"}, {"fixed": "2.31.0"}])
    assert in_range("Go", "1.6.3", [{"introduced": "0"}, {"last_affected": "1.6.3"}])


# -- (e) advisory records -------------------------------------------------------------------------


def test_advisory_records_are_well_formed():
    files = sorted(advisories_dir().glob("*.json"))
    assert 15 <= len(files) <= 25
    ts = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
    ecosystems = set()
    for f in files:
        adv = json.loads(f.read_text(encoding="utf-8"))
        assert adv["id"] == f.stem
        assert adv["schema_version"] == "1.6.0"
        for field in ("modified", "published"):
            assert ts.match(adv[field]), (f.name, field)
        assert adv["summary"] and adv["details"]
        assert adv["database_specific"]["severity"] in {"LOW", "MODERATE", "HIGH", "CRITICAL"}
        for sev in adv.get("severity", []):
            assert sev["type"] == "CVSS_V3" and sev["score"].startswith("CVSS:3.")
        assert adv["affected"], f.name
        for a in adv["affected"]:
            pkg = a["package"]
            assert pkg["ecosystem"] in ECOSYSTEMS and pkg["name"] and pkg["purl"].startswith("pkg:")
            ecosystems.add(pkg["ecosystem"])
            assert a["ranges"]
            for r in a["ranges"]:
                assert r["type"] in {"ECOSYSTEM", "SEMVER"}
                assert "introduced" in r["events"][0]
                assert all(
                    len(ev) == 1 and set(ev) <= {"introduced", "fixed", "last_affected", "limit"} for ev in r["events"]
                )
                if r["type"] == "SEMVER":
                    assert all(not v.startswith("v") for ev in r["events"] for v in ev.values())
        if adv["id"].startswith("GHSA-"):
            assert re.fullmatch(r"GHSA(-[23456789cfghjmpqrvwx]{4}){3}", adv["id"])
            assert all(re.fullmatch(r"CVE-\d{4}-\d{4,}", x) for x in adv["aliases"])
    assert ecosystems == ECOSYSTEMS


# -- (f) uniqueness and vocabulary ----------------------------------------------------------------


def test_profile_names():
    assert len(set(PROFILES)) == len(PROFILES)
    assert REQUIRED_PROFILES <= set(PROFILES)
    assert set(CLEAN_PROFILES) < set(PROFILES)
    assert all(re.fullmatch(r"[a-z][a-z0-9-]*", p) for p in PROFILES)


@pytest.mark.parametrize("profile", PROFILES)
def test_plants_are_unique_and_use_the_vocabulary(rendered, profile):
    _files, plants = rendered[profile]
    keys = Counter((p.kind, p.rule, p.path, p.line, p.package, p.version) for p in plants)
    assert not [k for k, n in keys.items() if n > 1]
    values = Counter(p.value for p in plants if p.kind == "secret")
    assert not [v for v, n in values.items() if n > 1]
    advisory_ids = {a["id"] for a in advisories()}
    for p in plants:
        assert p.kind in KINDS
        assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9-]*", p.rule), p.rule
        if p.kind == "dependency":
            assert p.rule in advisory_ids
        else:
            assert p.package is p.version is p.ecosystem is None and not p.dev_only
        if p.kind == "pipeline":
            assert p.rule in PIPELINE_RULES
        else:
            assert not p.rule.startswith("BB-")


def test_every_profile_has_a_readme_and_expected_kinds(rendered):
    for profile in PROFILES:
        files, _plants = rendered[profile]
        assert files["README.md"].startswith("# "), profile
        assert all(len(b) < 8_000 for b in files.values()), profile
    kinds = {profile: {p.kind for p in rendered[profile][1]} for profile in PROFILES}
    assert kinds["python-service"] == KINDS
    assert kinds["node-web"] == {"secret", "sast", "dependency", "pipeline"}
    assert kinds["java-api"] == {"secret", "sast", "dependency", "pipeline"}
    assert kinds["go-worker"] == {"secret", "sast", "dependency", "pipeline"}
    assert kinds["infra"] == {"iac", "pipeline"}
    assert kinds["ruby-rust"] == {"dependency"}
    dev_only = {(profile, p.package) for profile, _f, p in plants_of(rendered) if p.dev_only}
    assert {pr for pr, _ in dev_only} == {"python-service", "node-web", "java-api"}


# -- rendered files are valid, so scanners do not skip them ---------------------------------------


@pytest.mark.parametrize("profile", PROFILES)
def test_rendered_files_parse(rendered, profile):
    files, _ = rendered[profile]
    for path, text in files.items():
        assert not path.endswith(".tmpl")
        assert "{{@" not in text and "{{secret" not in text and "{{slug" not in text, path
        base = path.rsplit("/", 1)[-1]
        if path.endswith(".py"):
            ast.parse(text, filename=path)
        elif path.endswith(".json"):
            json.loads(text)
        elif path.endswith((".yml", ".yaml")) and "/templates/" not in path:
            assert yaml.load(text, Loader=_AnyTagLoader) is not None, path
        elif path.endswith(".xml"):
            ET.fromstring(text)
        elif base in ("Cargo.toml", "Cargo.lock", "Pipfile"):
            tomllib.loads(text)


# -- pipeline posture: the plants are exactly what line-level BB-027…BB-033 checks see ------------


def pipeline_findings(text: str) -> set[tuple[str, int | None]]:
    lines = text.split("\n")
    out: set[tuple[str, int | None]] = set()
    section = None
    for i, line in enumerate(lines, 1):
        top = re.match(r"^  ([A-Za-z-]+):\s*$", line)
        if top:
            section = top[1]
        m = re.match(r"^\s*(?:-\s*)?image:\s*(\S+)", line)
        if m and "@sha256:" not in m[1]:
            out.add(("BB-027", i))
        m = re.search(r"\bpipe:\s*(\S+)", line)
        if m and not re.search(r":\d+\.\d+\.\d+$", m[1]):
            out.add(("BB-028", i))
        if re.search(r"\b(curl|wget)\b[^|]*\|\s*(sudo\s+)?(ba|z)?sh\b", line):
            out.add(("BB-029", i))
        if re.match(r"^\s*deployment:\s*production\s*$", line):
            indent = len(line) - len(line.lstrip())
            block = []
            for j in range(i - 2, -1, -1):  # siblings above, up to the start of the step
                if len(lines[j]) - len(lines[j].lstrip()) < indent:
                    break
                block.append(lines[j])
            for nxt in lines[i:]:
                if nxt.strip() and len(nxt) - len(nxt.lstrip()) < indent:
                    break
                block.append(nxt)
            if not any(re.match(r"^\s*trigger:\s*manual", b) for b in block):
                out.add(("BB-030", i))
        if "self.hosted" in line and section == "pull-requests":
            out.add(("BB-031", i))
    low = text.lower()
    scanners = (
        "security scan",
        "bandit",
        "semgrep",
        "gosec",
        "govulncheck",
        "checkov",
        "npm audit",
        "pip-audit",
        "detect-secrets",
        "trivy",
        "grype",
    )
    if not any(s in low for s in scanners):
        out.add(("BB-032", None))
    if "cyclonedx" not in low and "sbom" not in low:
        out.add(("BB-033", None))
    return out


@pytest.mark.parametrize("profile", PROFILES)
def test_pipeline_plants_match_line_level_checks(rendered, profile):
    files, plants = rendered[profile]
    planted = {(p.rule, p.line) for p in plants if p.kind == "pipeline" and p.rule != "BB-026"}
    text = files.get("bitbucket-pipelines.yml")
    if text is None:
        assert not planted
        return
    assert planted == pipeline_findings(text)
    assert all(p.path == "bitbucket-pipelines.yml" for p in plants if p.kind == "pipeline")


def test_node_lock_noise_is_not_planted(rendered):
    files, plants = rendered["node-web"]
    lock = json.loads(files["package-lock.json"])
    assert lock["lockfileVersion"] == 3
    integrity = [v["integrity"] for k, v in lock["packages"].items() if k]
    assert integrity and all(re.fullmatch(r"sha512-[A-Za-z0-9+/]{86}==", i) for i in integrity)
    assert not any(p.value and p.value in files["package-lock.json"] for p in plants)
    assert any(v.get("dev") for v in lock["packages"].values())


# -- speed: hundreds of repositories per sandbox --------------------------------------------------


def test_rendering_is_fast():
    rng = random.Random(3)
    start = time.perf_counter()
    for i in range(40):
        for profile in PROFILES:
            render_profile(profile, rng, repo_slug=f"repo-{i}")
    per_repo = (time.perf_counter() - start) / (40 * len(PROFILES))
    assert per_repo < 0.05, f"{per_repo * 1000:.1f} ms per repository"
