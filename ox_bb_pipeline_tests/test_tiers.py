"""The unit tier (tiers.py, `make test-fast`) lists modules that exist and is decided by the module path (that
`-m unit` collects exactly their tests: test_tiers_collection.py, which collects the whole suite, in `make test`)."""

from __future__ import annotations

from ox_bb_pipeline_tests.tiers import TESTS_ROOT, UNIT_MODULES, in_unit_tier, outside_unit_tier


def test_every_unit_tier_module_exists():
    assert sorted(m for m in UNIT_MODULES if not (TESTS_ROOT / m).is_file()) == []


def test_the_tier_is_decided_by_the_module_path():
    assert in_unit_tier(TESTS_ROOT / "sandbox" / "test_bbql.py")
    assert not in_unit_tier(TESTS_ROOT / "production" / "test_celery.py")
    assert not in_unit_tier(TESTS_ROOT.parent / "elsewhere" / "test_config.py")


def test_minus_m_unit_skips_only_what_cannot_hold_a_unit_test(tmp_path):
    """What `-m unit` does not collect (conftest.py): folders without a listed module, unlisted modules that mark
    no test `unit` themselves; never a listed module, a folder leading to one, or a helper that is not a test."""
    for name, text in {
        "test_listed.py": "",
        "sandbox/test_listed.py": "",
        "sandbox/test_other.py": "",
        "sandbox/test_marked.py": "@pytest.mark.unit\ndef test_x(): ...\n",
        "sandbox/helpers.py": "",
        "production/test_slow.py": "",
    }.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    listed = frozenset({"test_listed.py", "sandbox/test_listed.py"})
    skipped = sorted(
        p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if outside_unit_tier(p, tmp_path, listed)
    )
    assert skipped == ["production", "production/test_slow.py", "sandbox/test_other.py"]
    assert not outside_unit_tier(tmp_path, tmp_path, listed)
    assert not outside_unit_tier(TESTS_ROOT.parent / "elsewhere" / "test_x.py")  # not ours: pytest decides
