"""The unit tier (tiers.py, `make test-fast`) lists modules that exist, and selecting it with `-m unit`
collects exactly their tests."""

from __future__ import annotations

import subprocess
import sys

from ox_bb_pipeline_tests.tiers import TESTS_ROOT, UNIT_MODULES, in_unit_tier


def test_every_unit_tier_module_exists():
    assert sorted(m for m in UNIT_MODULES if not (TESTS_ROOT / m).is_file()) == []


def test_the_tier_is_decided_by_the_module_path():
    assert in_unit_tier(TESTS_ROOT / "sandbox" / "test_bbql.py")
    assert not in_unit_tier(TESTS_ROOT / "production" / "test_celery.py")
    assert not in_unit_tier(TESTS_ROOT.parent / "elsewhere" / "test_config.py")


def test_minus_m_unit_collects_the_listed_modules_only():
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:xdist", "-q", "--collect-only", "-m", "unit", str(TESTS_ROOT)],
        cwd=TESTS_ROOT.parent,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )

    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    modules = {line.split("::")[0] for line in result.stdout.splitlines() if "::" in line}
    assert modules == {f"ox_bb_pipeline_tests/{m}" for m in UNIT_MODULES}
