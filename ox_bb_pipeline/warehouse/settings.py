"""The warehouse's configuration as validated data: applications.yaml, suppressions.yaml, SLA days,
and the catalogs the models interpret (severity factors, scanner coverage of controls).

Each file is optional (a missing file means the defaults). A file with problems raises one
ConfigError that lists every problem, each naming the entry and the field.
"""

from __future__ import annotations

import os
import re
from datetime import date
from pathlib import Path
from typing import Literal, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ..config import ConfigError, did_you_mean, keys_at
from ..files import load_yaml
from ..findings import CATEGORIES

PACKAGE_DIR = Path(__file__).resolve().parent
SEVERITY_FACTORS_PATH = PACKAGE_DIR / "severity_factors.yaml"
SCANNER_CONTROLS_PATH = PACKAGE_DIR / "scanner_controls.yaml"
CWE_FAMILIES_PATH = PACKAGE_DIR / "cwe_families.yaml"

Severity = Literal["info", "low", "medium", "high", "critical"]  # ordered: the rank is the index
Priority = Literal["low", "medium", "high", "critical"]
Classification = Literal["public", "internal", "confidential", "restricted"]
SEVERITIES = get_args(Severity)
DEFAULT_SLA_DAYS = {"critical": 7, "high": 30, "medium": 90, "low": 120}
INACTIVE_AFTER_DAYS = 180  # as OX: no code change in six months makes an application irrelevant
ACTIVITY_WINDOW_DAYS = 90  # commits and contributors counted for business priority

# The frameworks compliance reports on: key, the prefix of its flattened control ids, its title.
FRAMEWORKS = {
    "cis_ssc": ("CIS-SSC-", "CIS Software Supply Chain Security Guide v1.0"),
    "ssdf": ("SSDF-", "NIST SSDF SP 800-218"),
    "owasp_cicd": ("CICD-SEC-", "OWASP Top 10 CI/CD Security Risks"),
}

# The conditions `sql/severity_evidence.sql` evaluates; the factor catalog refers to them by id.
CONDITIONS = {
    "public_repository": "the repository is public",
    "production_deployment": "a pipeline of the repository deploys to a production environment",
    "not_deployed_to_production": "the repository's pipelines deploy, but never to production",
    "business_priority_critical": "the application's business priority is critical",
    "business_priority_low": "the application's business priority is low",
    "code_context_lower": "a scanners/code_context.yaml rule that lowers the finding's category matches its file "
    "(test, example or generated code)",
    "dev_dependency": "the vulnerable package is a development-only dependency (SBOM)",
    "fix_available": "the advisory names a fixed version",
    "inactive_repository": "no code change on the main branch for longer than the inactivity threshold",
    "known_exploited": "the advisory's CVE is in CISA's Known Exploited Vulnerabilities catalogue",
    "epss_high": "FIRST's EPSS gives the advisory's CVE a probability of exploitation of at least 0.5",
    "active_credential": "a live check (opt-in) found the Bitbucket credential still accepted by the host",
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


def _check_glob(value: str) -> str:
    if not value:
        raise ValueError("an empty glob matches nothing; use '*' for everything")
    if value.count("[") != value.count("]"):
        raise ValueError(f"unbalanced brackets in glob {value!r}")
    return value


# -- applications.yaml ----------------------------------------------------------------------------
class RepositoryMatch(_Strict):
    """Globs on workspace slug, project key and repository slug (fnmatch: `*` also crosses `/`)."""

    workspace: str = "*"
    project: str = "*"
    repository: str = "*"

    @field_validator("workspace", "project", "repository")
    @classmethod
    def _globs(cls, value: str) -> str:
        return _check_glob(value)


class _Ownership(_Strict):
    team: str | None = None
    owners: list[str] = Field(default_factory=list)
    data_classification: Classification | None = None
    business_priority: Priority | None = None  # an override of the computed priority


class ChildApplication(_Ownership):
    """A part of a monorepo: the files under `paths` (globs on the repository-relative path)."""

    name: str = Field(min_length=1)
    paths: list[str] = Field(min_length=1)

    @field_validator("paths")
    @classmethod
    def _paths(cls, value: list[str]) -> list[str]:
        return [_check_glob(p) for p in value]


class Application(_Ownership):
    name: str = Field(min_length=1)
    repositories: list[RepositoryMatch] = Field(min_length=1)
    irrelevant: str | None = None  # a reason: marks the application irrelevant by hand
    children: list[ChildApplication] = Field(default_factory=list)


class ApplicationDefaults(_Strict):
    data_classification: Classification = "internal"


class ApplicationsFile(_Strict):
    defaults: ApplicationDefaults = Field(default_factory=ApplicationDefaults)
    applications: list[Application] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_names(self) -> ApplicationsFile:
        seen: set[str] = set()
        for app in self.applications:
            for name in (app.name, *(c.name for c in app.children)):
                if name in seen:
                    raise ValueError(f"application name {name!r} is used twice; names must be unique")
                seen.add(name)
        return self


# -- suppressions.yaml ----------------------------------------------------------------------------
class Suppression(_Strict):
    """One finding by fingerprint, or every finding of a rule under a path glob (and repositories)."""

    fingerprint: str | None = None
    rule_id: str | None = None
    path: str | None = None  # glob on the file path; only with rule_id (default: every path)
    repository: str = "*"  # glob on workspace/slug
    reason: str = Field(min_length=1)
    owner: str = Field(min_length=1)
    expires: date

    @field_validator("fingerprint")
    @classmethod
    def _fingerprint(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[0-9a-fA-F]{8,64}", value):
            raise ValueError("a fingerprint is the finding_id: hexadecimal, as shown in findings_queue")
        return value.lower() if value else value

    @field_validator("path", "repository")
    @classmethod
    def _glob(cls, value: str | None) -> str | None:
        return _check_glob(value) if value is not None else value

    @model_validator(mode="after")
    def _one_selector(self) -> Suppression:
        if (self.fingerprint is None) == (self.rule_id is None):
            raise ValueError("give exactly one of 'fingerprint' (one finding) or 'rule_id' (+ 'path' glob)")
        if self.fingerprint is not None and self.path is not None:
            raise ValueError("'path' narrows a 'rule_id' suppression; a fingerprint already names one finding")
        return self


class SuppressionsFile(_Strict):
    suppressions: list[Suppression] = Field(default_factory=list)


# -- sla.yaml -------------------------------------------------------------------------------------
class SlaFile(_Strict):
    """Days to fix a finding, counted from first seen, per final severity (no entry: no SLA)."""

    sla_days: dict[Severity, int] = Field(default_factory=lambda: dict(DEFAULT_SLA_DAYS))

    @field_validator("sla_days")
    @classmethod
    def _positive(cls, value: dict) -> dict:
        for severity, days in value.items():
            if days < 1:
                raise ValueError(f"{severity}: days must be at least 1")
        return {**DEFAULT_SLA_DAYS, **value}


# -- catalogs (shipped with the package) ----------------------------------------------------------
def _known_condition(value: str) -> str:
    if value not in CONDITIONS:
        raise ValueError(f"unknown condition {value!r}; sql/severity_evidence.sql knows {', '.join(CONDITIONS)}")
    return value


class FactorScope(_Strict):
    """Findings a factor is relevant to: a category, optionally only its exploitable weaknesses."""

    category: Literal[CATEGORIES]
    exploitable_only: bool = False  # only findings whose CWE family is exploitable (cwe_families.yaml)


class SeverityFactor(_Strict):
    name: str
    condition: str
    direction: Literal["up", "down", "explain"]
    steps: int = Field(ge=0, le=4)
    applies_to: list[FactorScope] = Field(min_length=1)
    except_when: list[str] = Field(default_factory=list)  # conditions that switch the factor off
    at_least: Severity | None = None  # lifts the result to this level whatever the one-step cap
    sentence: str = Field(min_length=1)  # a phrase; `{evidence}` is replaced by the condition's evidence
    rationale: str = Field(min_length=1)  # why an analyst applies it, and to what

    @field_validator("condition")
    @classmethod
    def _known(cls, value: str) -> str:
        return _known_condition(value)

    @field_validator("except_when")
    @classmethod
    def _known_exceptions(cls, value: list[str]) -> list[str]:
        return [_known_condition(v) for v in value]

    @model_validator(mode="after")
    def _steps_match_direction(self) -> SeverityFactor:
        if (self.direction == "explain") != (self.steps == 0):
            raise ValueError("'explain' factors take 0 steps; 'up' and 'down' factors at least 1")
        if self.at_least is not None and self.direction != "up":
            raise ValueError("'at_least' raises: only 'up' factors take it")
        return self


class SeverityFactorCatalog(_Strict):
    factors: list[SeverityFactor]

    @model_validator(mode="after")
    def _unique(self) -> SeverityFactorCatalog:
        names = [f.name for f in self.factors]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"factor names used twice: {', '.join(duplicates)}")
        return self


class CweFamily(_Strict):
    title: str = Field(min_length=1)
    exploitable: bool
    cwes: list[str] = Field(min_length=1)

    @field_validator("cwes")
    @classmethod
    def _cwe_ids(cls, value: list[str]) -> list[str]:
        bad = [v for v in value if not re.fullmatch(r"CWE-[0-9]+", v)]
        if bad:
            raise ValueError(f"CWE ids look like CWE-89, not {', '.join(map(repr, bad))}")
        return value


class CweFamilyCatalog(_Strict):
    """Weakness families (cwe_families.yaml): correlation across scanners, exploitable weaknesses."""

    line_window: int = Field(ge=0, le=100)
    families: dict[str, CweFamily]
    rules: dict[str, str] = Field(default_factory=dict)  # scanner/rule_id -> family

    @model_validator(mode="after")
    def _consistent(self) -> CweFamilyCatalog:
        owners: dict[str, str] = {}
        for name, family in self.families.items():
            for cwe in family.cwes:
                if cwe in owners:
                    raise ValueError(f"{cwe} is in both {owners[cwe]} and {name}; a CWE belongs to one family")
                owners[cwe] = name
        unknown = sorted({f for f in self.rules.values() if f not in self.families})
        if unknown:
            raise ValueError(f"rules name unknown families: {', '.join(unknown)}")
        unqualified = sorted(key for key in self.rules if "/" not in key)
        if unqualified:
            raise ValueError(f"rules are keyed scanner/rule_id, e.g. bandit/B307: not {', '.join(unqualified)}")
        return self


# -- loading --------------------------------------------------------------------------------------
class WarehouseSettings(BaseModel):
    """Everything a warehouse build reads besides the lake."""

    applications: ApplicationsFile = Field(default_factory=ApplicationsFile)
    suppressions: SuppressionsFile = Field(default_factory=SuppressionsFile)
    sla: SlaFile = Field(default_factory=SlaFile)
    factors: SeverityFactorCatalog
    cwe_families: CweFamilyCatalog = Field(default_factory=lambda: load_cwe_families())
    code_context: list[dict] = Field(default_factory=lambda: load_code_context_rules())
    scanner_controls: dict[str, list[str]] = Field(default_factory=dict)


def _locate(filename: str, env_var: str, home: Path) -> Path | None:
    """`$ENV_VAR` (must exist), else <home>/<file>, else ./<file>; None when there is none. `home` is the data
    home the caller names (the app layer or the storage resource), never read here from the environment."""
    if os.environ.get(env_var):
        path = Path(os.environ[env_var])
        if not path.exists():
            raise ConfigError(str(path), [f"file not found (named by {env_var})"])
        return path
    for path in (home / filename, Path(filename)):
        if path.exists():
            return path
    return None


def _read_yaml(path: Path) -> object:
    try:
        return load_yaml(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(str(path), [f"not valid YAML: {exc}"]) from exc


def _validate(model: type[BaseModel], data: object, source: str) -> BaseModel:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(
            source, [_describe(error, data, keys_at(model, error["loc"])) for error in exc.errors()]
        ) from exc


def _describe(error: dict, data: object, known: set[str] = frozenset()) -> str:
    """`applications[1] (payments).children[0] (api).paths: message`: list entries named by their
    name, rule id or fingerprint, so the reader finds the entry without counting."""
    parts: list[str] = []
    node = data
    for part in error["loc"]:
        if isinstance(part, int) and isinstance(node, list) and parts:
            node = node[part] if part < len(node) else None
            keys = ("name", "rule_id", "fingerprint")
            label = next((node[k] for k in keys if isinstance(node, dict) and node.get(k)), None)
            parts[-1] += f"[{part}]" + (f" ({label})" if label else "")
        else:
            node = node.get(part) if isinstance(node, dict) else None
            parts.append(str(part))
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":  # named in the message, not in the path
        key = parts.pop() if parts else ""
        message = f"unknown key `{key}`" + (did_you_mean(key, known) or "; check the spelling against the example file")
    elif error["type"] == "missing":
        message = "is required"
    return f"{'.'.join(parts) or 'file'}: {message}"


def load_applications(path: Path | None = None, *, home: Path) -> ApplicationsFile:
    path = path or _locate("applications.yaml", "OX_BB_APPLICATIONS", home)
    if path is None:
        return ApplicationsFile()
    return _validate(ApplicationsFile, _read_yaml(path), str(path))


def load_suppressions(path: Path | None = None, *, home: Path) -> SuppressionsFile:
    path = path or _locate("suppressions.yaml", "OX_BB_SUPPRESSIONS", home)
    if path is None:
        return SuppressionsFile()
    return _validate(SuppressionsFile, _read_yaml(path), str(path))


def load_sla(path: Path | None = None, environ: dict[str, str] | None = None, *, home: Path) -> SlaFile:
    """sla.yaml, then `OX_BB_SLA_DAYS="critical=5,high=20"` on top (the environment wins)."""
    path = path or _locate("sla.yaml", "OX_BB_SLA", home)
    data = _read_yaml(path) if path else {}
    source = str(path) if path else "sla.yaml (defaults)"
    env = os.environ if environ is None else environ
    if env.get("OX_BB_SLA_DAYS"):
        days = dict((data or {}).get("sla_days") or {}) if isinstance(data, dict) else {}
        for item in env["OX_BB_SLA_DAYS"].split(","):
            severity, sep, value = item.partition("=")
            if not sep or not value.strip().isdigit():
                raise ConfigError("OX_BB_SLA_DAYS", [f"{item!r}: expected SEVERITY=DAYS, e.g. critical=7"])
            days[severity.strip()] = int(value)
        data = {**(data if isinstance(data, dict) else {}), "sla_days": days}
    return _validate(SlaFile, data, source)


def load_factor_catalog(path: Path = SEVERITY_FACTORS_PATH) -> SeverityFactorCatalog:
    return _validate(SeverityFactorCatalog, _read_yaml(path), str(path))


def load_cwe_families(path: Path = CWE_FAMILIES_PATH) -> CweFamilyCatalog:
    return _validate(CweFamilyCatalog, _read_yaml(path), str(path))


def load_code_context_rules() -> list[dict]:
    """scanners/code_context.yaml (validated where the scan stage reads it too)."""
    from ..scanners.code_context import load_rules

    return [rule.model_dump() for rule in load_rules()]


def load_scanner_controls(path: Path = SCANNER_CONTROLS_PATH) -> dict[str, list[str]]:
    data = _read_yaml(path)
    return {scanner: [str(c) for c in controls or []] for scanner, controls in (data or {}).items()}


def load_settings(home: Path) -> WarehouseSettings:
    """Every file at once (those of the data home `home`), so a build reports the problems of all of them together."""
    loaded, problems = {}, []
    for key, loader in (
        ("applications", lambda: load_applications(home=home)),
        ("suppressions", lambda: load_suppressions(home=home)),
        ("sla", lambda: load_sla(home=home)),
        ("factors", load_factor_catalog),
        ("cwe_families", load_cwe_families),
        ("code_context", load_code_context_rules),
    ):
        try:
            loaded[key] = loader()
        except ConfigError as exc:
            problems.extend(f"{exc.source}: {p}" for p in exc.problems)
    if problems:
        raise ConfigError("warehouse settings", problems)
    return WarehouseSettings(**loaded, scanner_controls=load_scanner_controls())
