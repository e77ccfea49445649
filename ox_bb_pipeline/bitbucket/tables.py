"""Schemas of the raw tables the extract stage writes (one Parquet partition per connection).

Every table starts with `connection` and `workspace`; repository-level tables carry the
repository's immutable `repository_uuid` and its `repository` slug. Descriptions feed the
Dagster column schemas and the data dictionary.
"""

from __future__ import annotations

import pyarrow as pa

S, I, B, T = pa.string(), pa.int64(), pa.bool_(), pa.timestamp("us", tz="UTC")
LS = pa.list_(pa.string())

REPO = [
    ("connection", S, "connection name from connections.yaml"),
    ("workspace", S, "workspace slug"),
    ("repository_uuid", S, "repository {uuid}, immutable"),
    ("repository", S, "repository slug"),
]

TABLES: dict[str, tuple[str, list[tuple[str, pa.DataType, str]]]] = {
    "workspaces": (
        "Workspaces the connection sees (after its `workspaces:` filter).",
        [
            ("connection", S, "connection name"),
            ("workspace", S, "workspace slug"),
            ("workspace_uuid", S, "{uuid}"),
            ("name", S, "display name"),
            ("is_private", B, "workspace is private"),
            ("forking_mode", S, "allow_forks | internal_only"),
            ("administrator", B, "the credential is an admin"),
            ("created_on", T, "creation time"),
            ("extracted_at", T, "when this row was read"),
        ],
    ),
    "projects": (
        "Projects of each workspace.",
        [
            ("connection", S, ""),
            ("workspace", S, ""),
            ("project_uuid", S, ""),
            ("project_key", S, "project key"),
            ("name", S, ""),
            ("is_private", B, ""),
            ("has_publicly_visible_repos", B, ""),
            ("created_on", T, ""),
            ("updated_on", T, ""),
        ],
    ),
    "repositories": (
        "Every repository the connection sees; `selected` says whether the selection "
        "globs include it (deselected ones stay, flagged).",
        [
            *REPO,
            ("full_name", S, "workspace/slug"),
            ("name", S, ""),
            ("project_key", S, ""),
            ("project_name", S, ""),
            ("mainbranch", S, "main branch name"),
            ("main_head", S, "main branch head commit (git)"),
            ("is_private", B, ""),
            ("fork_policy", S, "allow_forks | no_public_forks | no_forks"),
            ("language", S, ""),
            ("size", I, "bytes"),
            ("created_on", T, ""),
            ("updated_on", T, "last push or change"),
            ("clone_url", S, "https clone URL (no credentials)"),
            ("parent", S, "full name of the fork parent"),
            ("has_pipelines_yml", B, "bitbucket-pipelines.yml at the main head"),
            ("selected", B, "included by the connection's selection"),
            ("extracted_at", T, ""),
        ],
    ),
    "branches": (
        "Branch heads (git ls-remote) with their commit dates.",
        [
            *REPO,
            ("branch", S, ""),
            ("commit", S, "head commit"),
            ("commit_date", T, "head commit time"),
            ("is_main", B, "the repository's main branch"),
        ],
    ),
    "branch_restrictions": (
        "Branch permissions and merge checks (admin only).",
        [
            *REPO,
            ("restriction_id", I, ""),
            ("kind", S, "push, force, delete, require_approvals_to_merge, …"),
            ("branch_match_kind", S, "glob | branching_model"),
            ("pattern", S, "glob pattern"),
            ("branch_type", S, "branching-model type"),
            ("value", I, "approvals or builds required"),
            ("users", LS, "exempt users (nicknames)"),
            ("groups", LS, "exempt groups (slugs)"),
        ],
    ),
    "branching_models": (
        "Branching model per repository.",
        [
            *REPO,
            ("development_branch", S, ""),
            ("production_branch", S, ""),
            ("branch_types", S, "JSON list of {kind, prefix}"),
        ],
    ),
    "default_reviewers": (
        "Default reviewers per repository.",
        [*REPO, ("user_uuid", S, ""), ("nickname", S, ""), ("display_name", S, "")],
    ),
    "pull_requests": (
        "Pull requests in every state, with approvals (incremental by updated_on).",
        [
            *REPO,
            ("pr_id", I, "id within the repository"),
            ("title", S, ""),
            ("state", S, "OPEN | MERGED | DECLINED | SUPERSEDED"),
            ("author", S, "nickname"),
            ("source_branch", S, ""),
            ("source_commit", S, ""),
            ("destination_branch", S, ""),
            ("destination_commit", S, ""),
            ("merge_commit", S, "short hash when merged"),
            ("closed_by", S, ""),
            ("approvals", I, "participants who approved"),
            ("approvers", LS, ""),
            ("reviewers", LS, ""),
            ("comment_count", I, ""),
            ("task_count", I, ""),
            ("created_on", T, ""),
            ("updated_on", T, ""),
        ],
    ),
    "main_branch_commits": (
        "Recent main-branch history from git, each commit with the pull request that merged it, when there is one.",
        [
            *REPO,
            ("commit", S, ""),
            ("parents", LS, ""),
            ("author", S, "name <email>"),
            ("author_email", S, ""),
            ("committed_at", T, ""),
            ("summary", S, "first line of the message"),
            ("is_merge", B, ""),
            ("pr_id", I, "pull request whose merge commit this is"),
            ("pr_approvals", I, "approvals on that PR"),
        ],
    ),
    "pipeline_configs": (
        "Pipelines enabled flag and bitbucket-pipelines.yml at the main head (secrets redacted).",
        [
            *REPO,
            ("enabled", B, "null when not readable (admin only)"),
            ("main_commit", S, ""),
            ("yml_present", B, ""),
            ("yml", S, "the file as committed, with literal credentials replaced by REDACTED-<rule>-<hash> markers"),
        ],
    ),
    "pipeline_variables": (
        "Pipeline variables at workspace, repository and deployment level. Values are "
        "never stored: only whether an unsecured value looks like a secret, and its salted hash.",
        [
            ("connection", S, ""),
            ("workspace", S, ""),
            ("repository_uuid", S, "null at workspace level"),
            ("repository", S, ""),
            ("level", S, "workspace | repository | deployment"),
            ("environment", S, ""),
            ("variable_uuid", S, ""),
            ("key", S, "variable name"),
            ("secured", B, ""),
            ("value_looks_secret", B, "unsecured value that looks like a secret"),
            ("value_hash", S, "salted HMAC of an unsecured value"),
            ("value_length", I, ""),
        ],
    ),
    "pipeline_runs": (
        "Recent pipeline runs per repository.",
        [
            *REPO,
            ("pipeline_uuid", S, ""),
            ("build_number", I, ""),
            ("target_type", S, ""),
            ("ref_name", S, ""),
            ("selector_type", S, "branches | pull-requests | default | custom"),
            ("selector_pattern", S, ""),
            ("trigger", S, ""),
            ("state", S, ""),
            ("result", S, ""),
            ("commit", S, ""),
            ("created_on", T, ""),
            ("completed_on", T, ""),
            ("duration_seconds", I, ""),
        ],
    ),
    "environments": (
        "Deployment environments.",
        [
            *REPO,
            ("environment_uuid", S, ""),
            ("name", S, ""),
            ("environment_type", S, "Test | Staging | Production"),
            ("rank", I, ""),
            ("admin_only", B, "deployments restricted to admins"),
            ("deployment_gate_enabled", B, ""),
        ],
    ),
    "deploy_keys": (
        "Deploy (access) keys; the public key itself is reduced to a fingerprint.",
        [
            *REPO,
            ("key_id", I, ""),
            ("label", S, ""),
            ("comment", S, ""),
            ("key_fingerprint", S, "SHA-256 of the key"),
            ("added_on", T, ""),
            ("last_used", T, ""),
        ],
    ),
    "webhooks": (
        "Webhooks at workspace and repository level.",
        [
            ("connection", S, ""),
            ("workspace", S, ""),
            ("repository_uuid", S, "null at workspace level"),
            ("repository", S, ""),
            ("level", S, "workspace | repository"),
            ("hook_uuid", S, ""),
            ("url", S, ""),
            ("description", S, ""),
            ("events", LS, ""),
            ("active", B, ""),
            ("secret_set", B, ""),
            ("skip_cert_verification", B, ""),
            ("created_at", T, ""),
        ],
    ),
    "repository_permissions": (
        "Effective user permissions per repository (workspace admin view).",
        [*REPO, ("user_uuid", S, ""), ("nickname", S, ""), ("permission", S, "read | write | admin")],
    ),
    "extraction_status": (
        "One row per repository and endpoint that could not be read (403/404/410/scope): "
        "checks that need it report not_evaluable.",
        [
            ("connection", S, ""),
            ("workspace", S, ""),
            ("repository_uuid", S, ""),
            ("repository", S, ""),
            ("table_name", S, "raw table affected"),
            ("endpoint", S, ""),
            ("status", S, "forbidden | not_found | missing_scope | gone | error"),
            ("detail", S, ""),
            ("checked_at", T, ""),
        ],
    ),
}


def schema(table: str) -> pa.Schema:
    return pa.schema([pa.field(name, dtype) for name, dtype, _ in TABLES[table][1]])


def description(table: str) -> str:
    return TABLES[table][0]


def columns(table: str) -> list[tuple[str, str, str]]:
    return [(name, str(dtype), desc) for name, dtype, desc in TABLES[table][1]]
