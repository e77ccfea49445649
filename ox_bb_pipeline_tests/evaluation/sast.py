"""Evaluation section `sast`: our real SAST scanners (semgrep with our rules, bandit) on public code with
ground truth, scored per scanner and per category.

Corpora and labels: `labels/sast.yaml`.
- Benchmark suites (OWASP BenchmarkPython): the suite's own expected-results file, read from the checkout,
  is the ground truth. A test case counts as flagged by a scanner when one of its findings with a CWE of
  the case's category family (FAMILIES) lies in the case's file. Youden = TPR - FPR per category; the
  summary rows average it over the categories our rules claim and over all categories.
- Vulnerable apps: each documented vulnerability is found when a finding of its category family overlaps
  its line range. Findings of those families that match no label are counted as `fp`; they are
  unlabelled rather than proven false, so precision there is a lower bound.

`OX_BB_EVAL_SAST_ONLY=owner/name,owner/name` limits a run to those corpora (a rule change in one language
need not rescan every corpus; the full run is the one to report).
"""

from __future__ import annotations

import csv
import io
import os
import shutil
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import yaml

from .corpus import CorpusRepo, checkout
from .scoring import Score

LABELS = Path(__file__).parent / "labels" / "sast.yaml"
# The CWEs that count for a category. Explicit families, so that e.g. bandit's CWE-327 for MD5 counts for
# the benchmark's "hash" (CWE-328) category, and a NoSQL rule's CWE-943 for NoSQL injection.
FAMILIES: dict[str, set[str]] = {
    "cmdi": {"CWE-78", "CWE-77"},
    "codeinj": {"CWE-94", "CWE-95"},
    "sqli": {"CWE-89"},
    "nosqli": {"CWE-943"},
    "pathtraver": {"CWE-22", "CWE-23", "CWE-73"},
    "redirect": {"CWE-601"},
    "xss": {"CWE-79", "CWE-80"},
    "ssrf": {"CWE-918"},
    "deserialization": {"CWE-502"},
    "protopollution": {"CWE-1321", "CWE-915"},
    "hash": {"CWE-327", "CWE-328", "CWE-916"},
    # BenchmarkJava's weak-cipher category (DES, ECB, RSA without OAEP); overlaps `hash` on CWE-327, which
    # is harmless: a test case's file belongs to one category only
    "crypto": {"CWE-327", "CWE-326", "CWE-780"},
    "weakrand": {"CWE-330", "CWE-338"},
    "securecookie": {"CWE-614", "CWE-1004"},
    "xxe": {"CWE-611"},
    "ldapi": {"CWE-90"},
    "xpathi": {"CWE-643"},
    "trustbound": {"CWE-501"},
}
# The issue's categories for the vulnerable apps: findings outside these families are not scored there.
APP_CATEGORIES = (
    "cmdi",
    "codeinj",
    "sqli",
    "nosqli",
    "pathtraver",
    "redirect",
    "xss",
    "ssrf",
    "deserialization",
    "protopollution",
)
HEADER = ["corpus / scanner / category", "tp", "fp", "fn", "tn", "precision", "recall", "youden"]


@dataclass(frozen=True)
class Hit:
    scanner: str
    rule_id: str
    path: str
    start: int
    end: int
    cwe: str | None


def family_of(cwe: str | None) -> set[str]:
    return {name for name, cwes in FAMILIES.items() if cwe in cwes}


def scan(root: Path, name: str) -> tuple[dict[str, list[Hit]], dict[str, float]]:
    """Findings of each SAST scanner on the tree at `root`, and each scanner's wall time in seconds."""
    os.environ.setdefault("OX_BB_SECRET_SALT", "ox-bb-eval")  # fingerprints only; keeps ~/.ox-bb untouched
    from ox_bb_pipeline.findings import RepoRef
    from ox_bb_pipeline.scanners.bandit import BanditScanner
    from ox_bb_pipeline.scanners.semgrep import SemgrepScanner
    from ox_bb_pipeline.scanners.snapshot import Snapshot, SnapshotLimits, walk

    files, skipped, total = walk(root, SnapshotLimits())
    snapshot = Snapshot(
        repo=RepoRef("eval", "eval", name, name), root=root, files=files, skipped=skipped, bytes_total=total
    )
    hits: dict[str, list[Hit]] = {}
    seconds: dict[str, float] = {}
    for scanner in (SemgrepScanner(), BanditScanner()):
        started = time.perf_counter()
        [output] = scanner.scan([snapshot])
        seconds[scanner.name] = round(time.perf_counter() - started, 1)
        if output.error:
            raise RuntimeError(f"{scanner.name} on {name}: {output.error}")
        hits[scanner.name] = [
            Hit(scanner.name, f.rule_id, f.file_path or "", f.start_line or 0, f.end_line or f.start_line or 0, f.cwe)
            for f in output.findings
        ]
    return hits, seconds


def score_benchmark(spec: dict, root: Path, hits: dict[str, list[Hit]]) -> dict[str, dict[str, Score]]:
    """Per scanner, per category: the confusion counts over the suite's test cases."""
    text = (root / spec["expected_results"]).read_text()
    cases = [row for row in csv.reader(io.StringIO(text)) if row and not row[0].startswith("#")]
    scores: dict[str, dict[str, Score]] = {}
    for scanner, found in hits.items():
        by_file: dict[str, set[str]] = defaultdict(set)
        for hit in found:
            by_file[hit.path] |= family_of(hit.cwe)
        per: dict[str, Score] = defaultdict(Score)
        for test, category, real, _cwe, *_ in cases:
            flagged = category in by_file.get(spec["test_file"].format(test=test.strip()), set())
            vulnerable = real.strip().lower() == "true"
            per[category.strip()] = per[category.strip()].add(
                Score(
                    tp=int(flagged and vulnerable),
                    fp=int(flagged and not vulnerable),
                    fn=int(not flagged and vulnerable),
                    tn=int(not flagged and not vulnerable),
                )
            )
        scores[scanner] = dict(sorted(per.items()))
    return scores


def score_app(labels: list[dict], hits: dict[str, list[Hit]]) -> tuple[dict[str, dict[str, Score]], list[dict]]:
    """Per scanner (and `all` = any scanner), per category; plus every label with who found it."""
    scores: dict[str, dict[str, Score]] = {}
    found_by: list[dict] = [{**label, "found_by": []} for label in labels]
    for scanner, found in [*hits.items(), ("all", [h for hs in hits.values() for h in hs])]:
        per: dict[str, Score] = defaultdict(Score)
        matched_hits: set[Hit] = set()
        for label, record in zip(labels, found_by):
            start, end = label["lines"]
            matches = [
                h
                for h in found
                if h.path == label["path"]
                and label["category"] in family_of(h.cwe)
                and h.start <= end
                and start <= h.end
            ]
            matched_hits.update(matches)
            per[label["category"]] = per[label["category"]].add(Score(tp=int(bool(matches)), fn=int(not matches)))
            if scanner != "all":
                record["found_by"] += sorted({f"{h.scanner}:{h.rule_id}" for h in matches})
        for hit in found:
            for category in family_of(hit.cwe) & set(APP_CATEGORIES):
                if hit not in matched_hits:
                    per[category] = per[category].add(Score(fp=1))
        scores[scanner] = dict(sorted(per.items()))
    return scores, found_by


def _rows(
    corpus: str, scores: dict[str, dict[str, Score]], claimed: list[str] | None, attempted: list[str] | None = None
) -> list[list[object]]:
    rows: list[list[object]] = []
    for scanner, per in scores.items():
        for category, score in per.items():
            mark = "*" if claimed and category in claimed else "+" if attempted and category in attempted else ""
            rows.append(
                [
                    f"{corpus} / {scanner} / {category}{mark}",
                    score.tp,
                    score.fp,
                    score.fn,
                    score.tn if claimed is not None else None,
                    score.precision,
                    score.recall,
                    score.youden if claimed is not None else None,
                ]
            )
        total = Score()
        for score in per.values():
            total = total.add(score)
        if claimed is not None:  # benchmark: the average of the per-category Youden (OWASP's scorecard)
            groups = (
                ("claimed", [c for c in per if c in claimed]),
                ("claimed+attempted", [c for c in per if c in claimed or c in (attempted or [])]),
                ("all", list(per)),
            )
            for label, names in groups:
                values = [per[c].youden for c in names if per[c].youden is not None]
                picked = Score()
                for c in names:
                    picked = picked.add(per[c])
                rows.append(
                    [
                        f"{corpus} / {scanner} / = {label} (mean youden)",
                        picked.tp,
                        picked.fp,
                        picked.fn,
                        picked.tn,
                        picked.precision,
                        picked.recall,
                        sum(values) / len(values) if values else None,
                    ]
                )
        else:
            rows.append(
                [
                    f"{corpus} / {scanner} / = total",
                    total.tp,
                    total.fp,
                    total.fn,
                    None,
                    total.precision,
                    total.recall,
                    None,
                ]
            )
    return rows


def run() -> dict:
    spec = yaml.safe_load(LABELS.read_text())
    only = {name.strip() for name in os.environ.get("OX_BB_EVAL_SAST_ONLY", "").split(",") if name.strip()}
    if only:
        for kind in ("benchmarks", "apps"):
            spec[kind] = [entry for entry in spec.get(kind, []) if entry["repository"] in only]
    rows: list[list[object]] = []
    report: dict = {"benchmarks": {}, "apps": {}}
    for bench in spec.get("benchmarks", []):
        repo = CorpusRepo(bench["repository"], bench["commit"])
        root = checkout(repo, exclude=tuple(bench.get("exclude", ())))
        try:
            hits, seconds = scan(root, repo.folder_name)
            scores = score_benchmark(bench, root, hits)
        finally:
            shutil.rmtree(root, ignore_errors=True)
        rows += _rows(repo.repository.split("/")[-1], scores, bench["claimed"], bench.get("attempted"))
        report["benchmarks"][repo.repository] = {
            "commit": repo.commit,
            "claimed": bench["claimed"],
            "attempted": bench.get("attempted", []),
            "seconds": seconds,
            "scores": {s: {c: v.as_dict() for c, v in per.items()} for s, per in scores.items()},
        }
    for app in spec.get("apps", []):
        repo = CorpusRepo(app["repository"], app["commit"])
        root = checkout(repo)
        try:
            hits, seconds = scan(root, repo.folder_name)
        finally:
            shutil.rmtree(root, ignore_errors=True)
        scores, labels = score_app(app["labels"], hits)
        rows += _rows(repo.repository.split("/")[-1], scores, None)
        missed = [
            f"{label['path']}:{label['lines'][0]} ({label['category']})" for label in labels if not label["found_by"]
        ]
        report["apps"][repo.repository] = {
            "commit": repo.commit,
            "seconds": seconds,
            "labels": labels,
            "missed": missed,
            "scores": {s: {c: v.as_dict() for c, v in per.items()} for s, per in scores.items()},
        }
        for miss in missed:
            print(f"missed in {repo.repository}: {miss}")
    return {
        "title": "SAST detection quality (* = claimed category, + = attempted; app fp = unlabelled findings)",
        "header": HEADER,
        "rows": rows,
        "json": report,
    }
