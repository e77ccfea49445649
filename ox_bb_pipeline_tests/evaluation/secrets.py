"""Evaluation section: secrets. Our real secrets scanner (`scanners/secrets.py`) over two corpora:

- ordinary public repositories (`labels/secrets-ordinary.yaml`): every secret the scanner reported there
  was checked by hand and labelled true or false at a pinned commit; a finding with no label is counted
  as a false positive ("unlabelled") until someone checks it. The figure that matters is false positives
  per 50,000 lines.
- a labelled set of credential formats (`labels/secrets-credentials.yaml`): sample values we generate in
  each format (never real credentials), written into a scratch tree; recall must be 100%, and the
  example values and placeholders beside them must stay silent.

Per corpus and per detector: candidates (what detect-secrets' plugins and default filters reported before
our precision filters), reported, TP, FP, FN, precision, recall, FP per 50,000 lines; a second table says
how many candidates each of our filters removed.
"""

from __future__ import annotations

import os
import random
import re
import shutil
import string
import tempfile
from collections import Counter
from pathlib import Path

import yaml

from ox_bb_pipeline.findings import RepoRef
from ox_bb_pipeline.scanners.secrets import SecretsScanner
from ox_bb_pipeline.scanners.snapshot import Snapshot, SnapshotLimits, walk

from .corpus import CorpusRepo, checkout, count_lines
from .scoring import Score

LABELS = Path(__file__).parent / "labels"
ORDINARY_LABELS = LABELS / "secrets-ordinary.yaml"
CREDENTIAL_LABELS = LABELS / "secrets-credentials.yaml"
LINES_PER_RATE = 50_000
HEADER = [
    "corpus",
    "detector",
    "lines",
    "candidates",
    "reported",
    "TP",
    "FP",
    "FN",
    "unlabelled",
    "precision",
    "recall",
    "FP/50k lines",
]


# -- scanning a tree --------------------------------------------------------------------------------------
def scan_tree(root: Path, name: str) -> tuple[list, dict]:
    """Findings of one SecretsScanner pass over `root` and the scan's filter counts."""
    files, skipped, total = walk(root, SnapshotLimits())
    repo = RepoRef("eval", "eval", "{" + name + "}", name, "eval")
    [output] = SecretsScanner().scan([Snapshot(repo=repo, root=root, files=files, skipped=skipped, bytes_total=total)])
    if output.error:
        raise RuntimeError(f"{name}: secrets scan failed: {output.error}")
    return output.findings, output.extra


def _removed_by_rule(extra: dict) -> tuple[Counter, Counter]:
    """(rule -> candidates removed by our filters, filter -> candidates removed) from the scan's extra table."""
    by_rule, by_filter = Counter(), Counter()
    for row in extra.get("secrets_filtered", []):
        by_rule[row["rule_id"]] += row["removed"]
        by_filter[row["filter"]] += row["removed"]
    return by_rule, by_filter


# -- scoring against labels --------------------------------------------------------------------------------
def score_findings(findings: list, labels: list[dict]) -> tuple[dict[str, Score], dict[str, int], list[dict]]:
    """Per rule: Score (TP, FP, FN), unlabelled count; plus the unlabelled findings themselves (no value)."""
    verdicts = {(lab["path"], lab["line"], lab["detector"]): bool(lab["verdict"]) for lab in labels}
    scores: dict[str, Score] = {}
    unlabelled: Counter = Counter()
    unknown, seen = [], set()
    for finding in findings:
        key = (finding.file_path, finding.start_line, finding.rule_id)
        seen.add(key)
        score = scores.setdefault(finding.rule_id, Score())
        verdict = verdicts.get(key)
        if verdict is True:
            score.tp += 1
        else:
            score.fp += 1
            if verdict is None:
                unlabelled[finding.rule_id] += 1
                unknown.append(
                    {
                        "path": finding.file_path,
                        "line": finding.start_line,
                        "detector": finding.rule_id,
                        "evidence": finding.evidence,
                    }
                )
    for key, verdict in verdicts.items():
        if verdict and key not in seen:
            scores.setdefault(key[2], Score()).fn += 1
    return scores, dict(unlabelled), unknown


def _rows(
    corpus: str, lines: int, scores: dict[str, Score], unlabelled: dict[str, int], removed: Counter
) -> list[list]:
    rows = []
    for rule in sorted({*scores, *removed}):
        score = scores.get(rule, Score())
        rows.append(_row(corpus, rule, lines, score, unlabelled.get(rule, 0), removed.get(rule, 0)))
    total = Score()
    for score in scores.values():
        total = total.add(score)
    rows.append(_row(corpus, "(all)", lines, total, sum(unlabelled.values()), sum(removed.values())))
    return rows


def _row(corpus: str, detector: str, lines: int, score: Score, unlabelled: int, removed: int) -> list:
    reported = score.tp + score.fp
    rate = score.fp * LINES_PER_RATE / lines if lines else None
    return [
        corpus,
        detector,
        lines,
        reported + removed,
        reported,
        score.tp,
        score.fp,
        score.fn,
        unlabelled,
        score.precision,
        score.recall,
        rate,
    ]


# -- the ordinary repositories -----------------------------------------------------------------------------
def ordinary() -> tuple[list[list], dict]:
    spec = yaml.safe_load(ORDINARY_LABELS.read_text())
    rows, report, filters = [], {}, Counter()
    all_scores: dict[str, Score] = {}
    all_unlabelled: Counter = Counter()
    all_removed: Counter = Counter()
    all_lines = 0
    for entry in spec["repositories"]:
        repo = CorpusRepo(entry["repository"], entry["commit"])
        scratch = Path(tempfile.mkdtemp(prefix="ox-bb-eval-secrets-"))
        try:
            root = checkout(repo, scratch / repo.folder_name, tuple(entry.get("exclude", ())))
            lines = count_lines(root)
            findings, extra = scan_tree(root, repo.folder_name)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        scores, unlabelled, unknown = score_findings(findings, entry.get("labels") or [])
        removed, by_filter = _removed_by_rule(extra)
        rows += [r for r in _rows(repo.repository, lines, scores, unlabelled, removed) if r[1] == "(all)"]
        report[repo.repository] = {
            "commit": repo.commit,
            "lines": lines,
            "unlabelled": unknown,
            "filtered": dict(by_filter),
            "rules": {k: v.as_dict() for k, v in scores.items()},
        }
        filters.update({f"{repo.repository}|{k}": v for k, v in by_filter.items()})
        all_lines += lines
        all_unlabelled.update(unlabelled)
        all_removed.update(removed)
        for rule, score in scores.items():
            all_scores[rule] = all_scores.get(rule, Score()).add(score)
    rows += _rows("ordinary (all repos)", all_lines, all_scores, dict(all_unlabelled), all_removed)
    return rows, {"repositories": report, "lines": all_lines, "filtered": dict(filters)}


# -- the credential formats --------------------------------------------------------------------------------
_ALPHABETS = {
    "hex": "0123456789abcdef",
    "HEX": "0123456789ABCDEF",
    "digits": string.digits,
    "lower": string.ascii_lowercase,
    "upper": string.ascii_uppercase,
    "alpha": string.ascii_letters,
    "alnum": string.ascii_letters + string.digits,
    "lowernum": string.ascii_lowercase + string.digits,
    "uppernum": string.ascii_uppercase + string.digits,
    "b64": string.ascii_letters + string.digits + "+/",
    "b64url": string.ascii_letters + string.digits + "-_",
}
_PART = re.compile(r"\{(\w+):(\d+)\}")


def sample_value(template: str, seed: str) -> str:
    """`template` with each `{alphabet:N}` replaced by N random characters of that alphabet, seeded by
    `seed` so a sample is the same on every run (and never a real credential)."""
    rng = random.Random(seed)
    return _PART.sub(lambda m: "".join(rng.choice(_ALPHABETS[m.group(1)]) for _ in range(int(m.group(2)))), template)


def credential_tree(root: Path) -> tuple[list[dict], list[dict]]:
    """Write the labelled credential samples under `root`: (positives, negatives) with path, line, detector."""
    spec = yaml.safe_load(CREDENTIAL_LABELS.read_text())
    files: dict[str, list[str]] = {}
    expected: dict[str, list[dict]] = {"positives": [], "negatives": []}
    for kind in expected:
        for index, sample in enumerate(spec[kind]):
            path = sample["path"]
            value = sample_value(sample.get("value", ""), f"{kind}-{index}-{sample.get('detector')}")
            lines = [line.replace("{value}", value) for line in sample["text"].rstrip("\n").split("\n")]
            file_lines = files.setdefault(path, [])
            expected[kind].append(
                {
                    "path": path,
                    "line": len(file_lines) + 1 + sample.get("line", 0),
                    "detector": sample.get("detector"),
                    "verdict": kind == "positives",
                }
            )
            file_lines += lines
    for path, lines in files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text("\n".join(lines) + "\n")
    return expected["positives"], expected["negatives"]


def credentials() -> tuple[list[list], dict]:
    scratch = Path(tempfile.mkdtemp(prefix="ox-bb-eval-credentials-"))
    try:
        positives, negatives = credential_tree(scratch)
        lines = count_lines(scratch)
        findings, extra = scan_tree(scratch, "credential-formats")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    scores, unlabelled, unknown = score_findings(findings, positives)
    removed, by_filter = _removed_by_rule(extra)
    # a positive found under another rule is a miss of its own detector and an unlabelled hit elsewhere
    missed = [
        p
        for p in positives
        if not any((f.file_path, f.start_line, f.rule_id) == (p["path"], p["line"], p["detector"]) for f in findings)
    ]
    negative_hits = [u for u in unknown if any((u["path"], u["line"]) == (n["path"], n["line"]) for n in negatives)]
    rows = _rows("credential formats", lines, scores, unlabelled, removed)
    return rows, {
        "lines": lines,
        "positives": len(positives),
        "negatives": len(negatives),
        "missed": missed,
        "negatives_reported": negative_hits,
        "unlabelled": unknown,
        "filtered": dict(by_filter),
        "rules": {k: v.as_dict() for k, v in scores.items()},
    }


def run() -> dict:
    os.environ.setdefault("OX_BB_SECRET_SALT", "evaluation")  # fingerprints need a salt; none is kept
    ordinary_rows, ordinary_json = ordinary()
    credential_rows, credential_json = credentials()
    filters = Counter()
    for key, count in ordinary_json["filtered"].items():
        filters[key.split("|", 1)[1]] += count
    print("\nsecrets: candidates removed by each precision filter (ordinary repositories / credential formats)")
    for name in sorted({*filters, *credential_json["filtered"]}):
        print(f"  {name:<28} {filters.get(name, 0):>6} {credential_json['filtered'].get(name, 0):>6}")
    return {
        "title": "secrets: hand-labelled ordinary repositories and generated credential formats",
        "header": HEADER,
        "rows": ordinary_rows + credential_rows,
        "json": {
            "header": HEADER,
            "rows": ordinary_rows + credential_rows,
            "ordinary": ordinary_json,
            "credentials": credential_json,
        },
    }
