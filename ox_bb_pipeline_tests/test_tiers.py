"""The unit tier (tiers.py, `make test-fast`) lists modules that exist and is decided by the module path (that
`-m unit` collects exactly their tests: test_tiers_collection.py, which collects the whole suite, in `make test`)."""

from __future__ import annotations

from ox_bb_pipeline_tests.tiers import TESTS_ROOT, UNIT_MODULES, in_unit_tier


def test_every_unit_tier_module_exists():
    assert sorted(m for m in UNIT_MODULES if not (TESTS_ROOT / m).is_file()) == []


def test_the_tier_is_decided_by_the_module_path():
    assert in_unit_tier(TESTS_ROOT / "sandbox" / "test_bbql.py")
    assert not in_unit_tier(TESTS_ROOT / "production" / "test_celery.py")
    assert not in_unit_tier(TESTS_ROOT.parent / "elsewhere" / "test_config.py")
