"""Experiment (not wired into the scanner): two-pass semgrep with function summaries, scored like `sast`.

semgrep OSS follows data within one function only. This tries summaries computed by semgrep itself:

- pass 1: our rules, plus per taint rule R two clones whose sources are the enclosing function's parameters
  (bound as $FUNC; the clone's message is "$FUNC"): `R--sink` keeps R's sinks (functions whose parameter
  reaches R's sink: wrapper sinks), `R--ret` (with --returns) makes the returned value the sink (functions
  whose parameter, or R's own source, reaches their return value, R's sanitizers applied); and a search rule
  listing the functions defined per file;
- pass 2: `R--via`, R with the calls of its wrapper sinks (by name, anywhere in the repository) as sinks;
  with --returns, per file, the functions defined there whose return never carries taint become
  sanitizers of R (`R--safeN` variants, each restricted to its files by `paths`), and R's findings in those
  files are replaced by the variant's.

    OX_BB_EVAL_REPOS=/work/.mirror PYTHONPATH=$PWD nice -n 10 .venv/bin/python -m \\
        ox_bb_pipeline_tests.evaluation.summaries OWNER/NAME RULES_DIR [--returns [--no-wrappers]] [--root TREE]

prints the corpus's scores for R alone ("base") and with the summaries ("final"), both passes' seconds and
the findings the summaries added; `--root` scores an already extracted tree (e.g. a subset of a suite).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import yaml

from ox_bb_pipeline.scanners.base import tool_executable
from ox_bb_pipeline.scanners.semgrep import OFFLINE_ENV, OFFLINE_FLAGS

from . import sast
from .corpus import CorpusRepo, checkout

FLAGS = (
    "--no-rewrite-rule-ids",
    "--no-git-ignore",
    "--x-ignore-semgrepignore-files",
    "--exclude=node_modules",
    "--jobs=2",
    "--timeout=10",
    "--max-target-bytes=1000000",
    "--json",
)
# a parameter of the enclosing function, per language; $FUNC names the function
PARAMS = {
    "go": ["func $FUNC(..., $P $T, ...) { ... }", "func ($RCV $RT) $FUNC(..., $P $T, ...) { ... }"],
    "java": ["$RT $FUNC(..., $T $P, ...) { ... }"],
    "javascript": ["function $FUNC(..., $P, ...) { ... }", "$FUNC = (..., $P, ...) => { ... }"],
    "typescript": ["function $FUNC(..., $P, ...) { ... }", "$FUNC = (..., $P, ...) => { ... }"],
    "python": ["def $FUNC(..., $P, ...):\n    ..."],
}
DEFS = {
    "go": ["func $FUNC(...) { ... }", "func ($RCV $RT) $FUNC(...) { ... }"],
    "java": ["$RT $FUNC(...) { ... }"],
    "python": ["def $FUNC(...):\n    ..."],
}
RETURN = {"go": "return $X", "java": "return $X;", "javascript": "return $X;", "typescript": "return $X;"}
RETURN["python"] = "return $X"
SKIP_CATEGORIES = {"weak-random"}  # the source is a generator, not data: a parameter is no source there


def load(path: Path) -> list[dict]:
    files = sorted(path.rglob("*.yaml")) if path.is_dir() else [path]
    return [r for f in files if not f.name.endswith(".test.yaml") for r in yaml.safe_load(f.read_text())["rules"]]


def _summarised(rule: dict) -> bool:
    category = (rule.get("metadata") or {}).get("category")
    return rule.get("mode") == "taint" and rule["languages"][0] in PARAMS and category not in SKIP_CATEGORIES


def _params(lang: str) -> list[dict]:
    return [{"patterns": [{"pattern-inside": p}, {"pattern": "$P"}]} for p in PARAMS[lang]]


def _calls(names: set[str]) -> dict:
    return {
        "patterns": [
            {"pattern-either": [{"pattern": "$FUNC(...)"}, {"pattern": "$O.$FUNC(...)"}]},
            {
                "metavariable-regex": {
                    "metavariable": "$FUNC",
                    "regex": f"^({'|'.join(sorted(map(re.escape, names)))})$",
                }
            },
        ]
    }


def pass1_rules(rules: list[dict], returns: bool, wrappers: bool = True) -> list[dict]:
    out = copy.deepcopy(rules)
    languages = set()
    for rule in filter(_summarised, rules):
        lang = rule["languages"][0]
        languages.add(lang)
        if wrappers:
            sink = copy.deepcopy(rule)
            sink.update({"id": rule["id"] + "--sink", "message": "$FUNC", "pattern-sources": _params(lang)})
            out.append(sink)
        if returns:
            ret = copy.deepcopy(rule)
            ret.update(
                {
                    "id": rule["id"] + "--ret",
                    "message": "$FUNC",
                    "pattern-sources": _params(lang) + rule["pattern-sources"],
                    "pattern-sinks": [{"patterns": [{"pattern": RETURN[lang]}, {"focus-metavariable": "$X"}]}],
                }
            )
            out.append(ret)
    for lang in languages & set(DEFS) if returns else ():
        out.append(
            {
                "id": f"defined--{lang}",
                "languages": [lang],
                "severity": "INFO",
                "message": "$FUNC",
                "pattern-either": [{"pattern": p} for p in DEFS[lang]],
            }
        )
    return out


def run_semgrep(rules: list[dict], target: Path) -> tuple[dict, float]:
    with tempfile.TemporaryDirectory(prefix="ox-summaries-") as tmp:
        config = Path(tmp) / "rules.yaml"
        config.write_text(json.dumps({"rules": rules}))  # JSON is YAML; ids must match [a-zA-Z0-9._-]
        started = time.perf_counter()
        argv = [str(tool_executable("semgrep")), "scan", *OFFLINE_FLAGS, *FLAGS, f"--config={config}", str(target)]
        proc = subprocess.run(argv, capture_output=True, text=True, cwd=tmp, env={**os.environ, **OFFLINE_ENV})
        seconds = time.perf_counter() - started
    if proc.returncode not in (0, 1):
        raise RuntimeError(f"semgrep exit {proc.returncode}: {proc.stderr[-1000:]}")
    return json.loads(proc.stdout), seconds


def two_pass(rules: list[dict], target: Path, returns: bool, wrappers: bool = True) -> dict:
    by_id = {r["id"]: r for r in rules}
    report1, seconds1 = run_semgrep(pass1_rules(rules, returns, wrappers), target)
    base = [x for x in report1["results"] if x["check_id"] in by_id]
    wrappers: dict[str, set[str]] = defaultdict(set)
    propagating: dict[tuple[str, str], set[str]] = defaultdict(set)  # (rule, file) -> functions returning taint
    defined: dict[str, set[str]] = defaultdict(set)
    for x in report1["results"]:
        cid, name = x["check_id"], x["extra"]["message"].strip()
        if not re.fullmatch(r"[A-Za-z_$][\w$]*", name):
            continue
        if cid.endswith("--sink"):
            wrappers[cid.removesuffix("--sink")].add(name)
        elif cid.endswith("--ret"):
            propagating[(cid.removesuffix("--ret"), x["path"])].add(name)
        elif cid.startswith("defined--"):
            defined[x["path"]].add(name)
    pass2: list[dict] = []
    for rid, names in sorted(wrappers.items()):
        via = copy.deepcopy(by_id[rid])
        call = _calls(names)
        call["patterns"][0] = {
            "pattern-either": [{"pattern": "$FUNC(..., $X, ...)"}, {"pattern": "$O.$FUNC(..., $X, ...)"}]
        }
        call["patterns"].append({"focus-metavariable": "$X"})
        via.update({"id": rid + "--via", "pattern-sinks": [call]})
        pass2.append(via)
    replaced: dict[str, set[str]] = defaultdict(set)  # rule -> files whose findings come from a variant
    for rid, rule in by_id.items() if returns else ():
        if not _summarised(rule) or rule["languages"][0] not in DEFS:
            continue
        flagged = {x["path"] for x in base if x["check_id"] == rid}
        groups: dict[frozenset, list[str]] = defaultdict(list)
        for path in sorted(flagged):
            if safe := frozenset(defined.get(path, set()) - propagating.get((rid, path), set())):
                groups[safe].append(path)
        for k, (safe, paths) in enumerate(sorted(groups.items(), key=lambda g: sorted(g[0]))):
            variant = copy.deepcopy(rule)
            variant["pattern-sanitizers"] = [*variant.get("pattern-sanitizers", []), _calls(set(safe))]
            variant["id"] = f"{rid}--safe{k}"
            variant["paths"] = {"include": ["/" + str(Path(p).relative_to(target)) for p in paths]}
            pass2.append(variant)
            replaced[rid].update(paths)
    report2, seconds2 = run_semgrep(pass2, target) if pass2 else ({"results": []}, 0.0)
    final = [x for x in base if x["path"] not in replaced.get(x["check_id"], set())]
    seen = {(x["check_id"], x["path"], x["start"]["line"]) for x in final}
    added = []
    for x in report2["results"]:
        rid = x["check_id"].split("--")[0]
        if (rid, x["path"], x["start"]["line"]) not in seen:
            seen.add((rid, x["path"], x["start"]["line"]))
            final.append({**x, "check_id": rid, "via": x["check_id"]})
            added.append(final[-1])
    return {
        "seconds": {"pass1": round(seconds1, 1), "pass2": round(seconds2, 1)},
        "wrappers": {k: sorted(v) for k, v in wrappers.items()},
        "variants": sum(1 for r in pass2 if "--safe" in r["id"]),
        "base": base,
        "final": final,
        "added": added,
    }


def _print_scores(entry: dict, root: Path, result: dict) -> None:
    prefix = str(root) + "/"
    for label in ("base", "final"):
        hits = {
            "semgrep": [
                sast.Hit(
                    "semgrep",
                    x["check_id"],
                    x["path"].removeprefix(prefix),
                    x["start"]["line"],
                    x["end"]["line"],
                    (x["extra"].get("metadata") or {}).get("cwe"),
                )
                for x in result[label]
            ]
        }
        if "expected_results" in entry:
            rows = sast._rows(entry["repository"], sast.score_benchmark(entry, root, hits), entry["claimed"])
        else:
            scores, labels = sast.score_app(entry["labels"], hits)
            rows = sast._rows(entry["repository"], {"semgrep": scores["semgrep"]}, None)
            print(label, "missed:", [f"{lb['path']}:{lb['lines'][0]}" for lb in labels if not lb["found_by"]])
        print(f"== {label}")
        for row in rows:
            print("  ", " | ".join("" if v is None else f"{v:.3f}" if isinstance(v, float) else str(v) for v in row))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("repository")
    parser.add_argument("rules", type=Path)
    parser.add_argument("--returns", action="store_true")
    parser.add_argument("--root", type=Path)
    parser.add_argument("--no-wrappers", action="store_true", help="only the sanitizer direction (with --returns)")
    args = parser.parse_args()
    spec = yaml.safe_load(sast.LABELS.read_text())
    entry = next(e for kind in ("benchmarks", "apps") for e in spec.get(kind, []) if e["repository"] == args.repository)
    repo = CorpusRepo(entry["repository"], entry["commit"])
    root = (args.root or checkout(repo, exclude=tuple(entry.get("exclude", ())))).resolve()
    try:
        result = two_pass(load(args.rules), root, args.returns, not args.no_wrappers)
        _print_scores(entry, root, result)
    finally:
        if not args.root:
            shutil.rmtree(root, ignore_errors=True)
    prefix = str(root) + "/"
    added = [(x["check_id"], x["path"].removeprefix(prefix), x["start"]["line"], x["via"]) for x in result["added"]]
    print("seconds", result["seconds"], "variants", result["variants"], "wrappers", result["wrappers"])
    print("added", added[:60])


if __name__ == "__main__":
    main()
