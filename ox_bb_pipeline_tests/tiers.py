"""Test tiers. `make test-fast` runs the unit tier (`-m unit`, under 2 minutes on two idle cores); `make test`
runs everything. A test joins the unit tier when its module is listed in UNIT_MODULES below, or on its own with
`@pytest.mark.unit`. List a module only when it runs in-process and quickly: no scanner subprocess, no warehouse
build (`dbt build` runs in a child process, several seconds each), no `dagster dev`, PostgreSQL, Redis, kill -9 or
whole-pipeline run (an in-process sandbox and a small DuckDB are fine). Everything else runs in `make test` only."""

from __future__ import annotations

from pathlib import Path

import pytest

TESTS_ROOT = Path(__file__).resolve().parent
# Paths relative to ox_bb_pipeline_tests/; test_tiers.py fails when one no longer exists (after a move).
UNIT_MODULES = frozenset(
    {
        "test_config.py",
        "test_redaction.py",
        "test_import_contracts.py",
        "test_dependencies.py",
        "test_run_failures.py",
        "test_ruff.py",
        "test_tiers.py",
        "advisories/test_severity.py",
        "bitbucket/test_client.py",
        "defs/test_ui_metadata.py",
        "quality/test_expectations.py",
        "sandbox/test_bbql.py",
        "sandbox/test_content.py",
        "sandbox/test_fields.py",
        "sandbox/test_rest_paging.py",
        "sandbox/test_rest_repositories.py",
        "sandbox/test_rest_pullrequests.py",
        "sandbox/test_auth.py",
        "sandbox/test_rest_access.py",
        "sandbox/test_limits_and_faults.py",
        "scanners/test_pipelines_yml.py",
        "scanners/test_sca_osv.py",
        "scanners/test_secrets_filters.py",
        "scanners/test_secrets_detectors.py",
        "scanners/test_secrets_prefilter.py",
        "scanners/test_sca_manifests.py",
        "scanners/test_code_context.py",
        "scanners/test_sarif.py",
        # warehouse/test_runner, test_severity_factors, test_exploit_factors, test_report_csv and
        # test_query_read_only build the warehouse (about 35 dbt builds): `make test` only.
        "warehouse/test_settings.py",
        "warehouse/test_code_context_prefilter.py",
        "warehouse/test_compaction_policy.py",
        "defs/test_storage_resource.py",
    }
)


def in_unit_tier(path: Path) -> bool:
    try:
        return path.resolve().relative_to(TESTS_ROOT).as_posix() in UNIT_MODULES
    except ValueError:  # a test outside this package
        return False


def outside_unit_tier(path: Path, root: Path = TESTS_ROOT, modules: frozenset[str] = UNIT_MODULES) -> bool:
    """Whether collecting `path` can bring no unit test: a folder holding no listed module, or a test module that is
    not listed and marks no test `unit` itself. `-m unit` skips them (see conftest.py): collecting the whole suite
    imports every test module, Dagster's definitions and the warehouse's dependencies, tens of seconds per worker."""
    try:
        relative = path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:  # not one of ours: let pytest decide
        return False
    if path.is_dir():
        return relative != "." and not any(m.startswith(f"{relative}/") for m in modules)
    if not (path.name.startswith("test_") and path.suffix == ".py"):
        return False
    return relative not in modules and "mark.unit" not in path.read_text()


def mark_unit_tier(items: list[pytest.Item]) -> None:
    """Add the `unit` marker to every test of a listed module (collection hook, see conftest.py)."""
    for item in items:
        if in_unit_tier(Path(item.fspath)):
            item.add_marker(pytest.mark.unit)
