"""Validate sandbox answers against the schemas of Bitbucket's published OpenAPI spec.

The stored spec is an older revision: it lacks `nullable` on fields the live API sends as null,
lists fewer branch-restriction kinds than the API documents today, and types `error.detail` as a
string although missing-scope errors carry an object. Those differences are patched here, in the
open, so the rest of each schema is enforced as published. Extra fields are allowed.
"""

from __future__ import annotations

import copy
from functools import cache, lru_cache
from pathlib import Path

import yaml
from jsonschema.exceptions import ValidationError
from openapi_schema_validator import OAS30Validator
from referencing import Registry, Resource

SPEC = Path(__file__).parent / "data" / "bitbucket-cloud-schemas.yml"
NEWER_RESTRICTION_KINDS = [
    "require_default_reviewer_approvals_to_merge",
    "require_review_group_approvals_to_merge",
    "require_no_changes_requested",
    "require_all_comments_resolved",
    "require_commits_behind",
    "smart_reset_pullrequest_approvals",
    "reset_pullrequest_changes_requested_on_change",
    "allow_auto_merge_when_builds_pass",
]


@lru_cache(maxsize=1)
def _spec() -> dict:
    spec = yaml.safe_load(SPEC.read_text())
    schemas = spec["components"]["schemas"]
    restriction = schemas["branchrestriction"]["allOf"][1]["properties"]["kind"]
    restriction["enum"] = restriction["enum"] + NEWER_RESTRICTION_KINDS
    schemas["error_error"]["properties"]["detail"] = {}
    return spec


@cache
def _validator(schema_name: str) -> OAS30Validator:
    registry = Registry().with_resource("urn:bitbucket", Resource.opaque(_spec()))
    schema = {"$ref": f"urn:bitbucket#/components/schemas/{schema_name}"}
    return OAS30Validator(schema, registry=registry)


def drop_nulls(value):
    """The spec has no `nullable`; the live API sends nulls for absent values. Treat null as absent."""
    if isinstance(value, dict):
        return {k: drop_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [drop_nulls(v) for v in value]
    return value


def validate(body: dict, schema_name: str) -> None:
    """Raise jsonschema's ValidationError (with the failing path) when `body` does not conform."""
    _validator(schema_name).validate(drop_nulls(copy.deepcopy(body)))


def errors(body: dict, schema_name: str) -> list[str]:
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in _validator(schema_name).iter_errors(drop_nulls(copy.deepcopy(body)))
    ]


__all__ = ["validate", "errors", "ValidationError"]
