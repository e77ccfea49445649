"""Selecting the unit tier with `-m unit` collects exactly the tests of the modules tiers.py lists. Collecting the
whole suite takes tens of seconds, so this runs in `make test`, not in the tier it checks."""

from __future__ import annotations

import subprocess
import sys

from ox_bb_pipeline_tests.tiers import TESTS_ROOT, UNIT_MODULES


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
