"""code_context_any, the prefilter of sql/models/staging/findings.sql: on every path and marker list it is
true exactly when code_context_matches is not empty (one RE2 alternation must not let a rule's flags or
anchors leak into another's), for the shipped rules and for edge cases of the rule list."""

from __future__ import annotations

import duckdb
import pytest

from ox_bb_pipeline.warehouse.runner import create_code_context_macro
from ox_bb_pipeline.warehouse.settings import load_code_context_rules

PATHS = [
    None,
    "",
    "app/db.py",
    "vendor/lib.py",
    "src/VENDOR/lib.py",
    "Tests/unit/x.py",
    "TESTS",
    "a/tests",
    "lib/app.min.js",
    "lib/app.MIN.JS",
    "dist/main.js",
    "x/y/app.bundle.0a1b2c.js",
    "go.sum",
    "a/go.sum/b",
    "api_pb2.py",
    "Docs/readme.py",
    "abc",
    "ABC",
    "xabc",
    "xB",
    "ab\nc",
    "a.b",
    "a(b)c",
    "q\\Ez",
    "te)st",
]
MARKERS = [None, [], ["minified-content"], ["generated-marker", "other"], ["other"], [None], ["m1"], [None, "m"]]


def rule(name: str, path: str | None) -> dict:
    return {"name": name, "path": path}


RULE_SETS = {
    "shipped": None,
    "empty": [],
    "markers only": [rule("m1", None), rule("m2", None)],
    "one path": [rule("p", "(?i)^abc")],
    # a flag or an anchor in one pattern must not reach the next: 'ABC' matches only the first
    "flags and anchors": [rule("ci", "(?i)^abc$"), rule("cs", "b$"), rule("m", None), rule("dot", "^a.c$")],
    "alternation inside": [rule("a", "^x|y$"), rule("b", "a|^b")],
    "empty pattern": [rule("e", ""), rule("f", "zzz")],
    "quoting": [rule("q", "\\Qa(b)\\E"), rule("r", "\\Qte)"), rule("s", "^d")],
    "s and m flags": [rule("s", "(?s)a.c"), rule("m", "(?m)^c$"), rule("n", "^c")],
}


@pytest.mark.parametrize("name", list(RULE_SETS))
def test_code_context_any_is_true_exactly_when_a_rule_matches(name):
    rules = RULE_SETS[name] if RULE_SETS[name] is not None else load_code_context_rules()
    con = duckdb.connect()
    create_code_context_macro(con, rules)
    con.execute("CREATE TABLE cases (path VARCHAR, markers VARCHAR[])")
    con.executemany("INSERT INTO cases VALUES (?, ?)", [(p, m) for p in PATHS for m in MARKERS])
    rows = con.execute(
        "SELECT path, markers, coalesce(code_context_any(path, coalesce(markers, [])), false) AS prefilter, "
        "len(code_context_matches(path, coalesce(markers, []))) > 0 AS matches FROM cases"
    ).fetchall()
    assert len(rows) == len(PATHS) * len(MARKERS)
    assert [r for r in rows if r[2] != r[3]] == []
    assert any(r[3] for r in rows) == (name != "empty")


def test_an_alternation_re2_cannot_compile_falls_back_to_one_test_per_pattern():
    # each pattern compiles alone; together they pass RE2's program size limit
    rules = [rule(f"big{i}", f"\\pL{{400}}{i}|a{i}") for i in range(3)]
    con = duckdb.connect()
    con.execute("BEGIN")  # the runner makes the macros inside its transaction: the probe must not abort it
    create_code_context_macro(con, rules)
    con.execute("COMMIT")
    assert con.execute("SELECT code_context_any('a2', []), code_context_any('b', [])").fetchone() == (True, False)
    macro = con.execute(
        "SELECT macro_definition FROM duckdb_functions() WHERE function_name = 'code_context_any'"
    ).fetchone()[0]
    assert macro.count("regexp_matches") == 3
