"""Advisory index benchmark on the largest real advisory data at hand: the public PyPA advisory
database (`vulns/**/*.yaml`, OSV records in YAML, converted to OSV JSON in an all.zip) and a scale-up
of it (every record copied under new ids and package names, to GitHub-advisory-database size).
Measures the index build (time, size, peak RSS in its own process: target ≤ 1 GB), lookup throughput
for 1,000 manifests, and lookups against scanning the JSON files per manifest (target ≥ 10× faster).

The GitHub advisory database (github/advisory-database, a 3.4 GB snapshot) could not be brought to the
machine this was written on (500 MB limit); the scale-up stands in for its size (~100,000 records).
The PyPA repository is found at `$OX_BB_EVAL_REPOS/pypa+advisory-database` (a bare git directory or a
folder holding `repo/`, as the evaluation corpus expects).

    python -m ox_bb_pipeline_tests.benchmarks.bench_advisories [--quick]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from datetime import date, datetime
from pathlib import Path

import yaml

from ox_bb_pipeline.advisories.ecosystems import name_key
from ox_bb_pipeline.advisories.index import AdvisoryIndex, Source, build_index
from ox_bb_pipeline.scanners.sca.osv import AdvisoryDatabase, IndexedAdvisories, advisory_from_osv

from ..evaluation.corpus import _git_dir

REPOSITORY = "pypa+advisory-database"
MANIFESTS, COMPONENTS = 1000, 25  # components per manifest
SCALE = 40  # the scale-up: ~100,000 records, about the GitHub advisory database's size
BASELINE_MANIFESTS = 5  # scanning every JSON file per manifest is slow: a sample, per manifest


class DataUnavailable(RuntimeError):
    """The advisory data to benchmark on is not on this machine; the message says how to provide it."""


def _iso(value):
    if isinstance(value, (datetime, date)):
        text = value.isoformat()
        return text.replace("+00:00", "Z") if "+00:00" in text else text
    raise TypeError(type(value).__name__)


def pypa_records() -> list[dict]:
    """Every record of the PyPA advisory database, as OSV JSON objects."""
    root = os.environ.get("OX_BB_EVAL_REPOS")
    git_dir = _git_dir(Path(root) / REPOSITORY) if root else None
    if git_dir is None:
        raise DataUnavailable(
            f"the PyPA advisory database is not at hand; set OX_BB_EVAL_REPOS to a folder holding "
            f"{REPOSITORY} (git clone --bare https://github.com/pypa/advisory-database "
            "$OX_BB_EVAL_REPOS/pypa+advisory-database)"
        )
    archive = subprocess.run(
        ["git", "-C", str(git_dir), "archive", "--format=tar", "HEAD", "vulns"],
        capture_output=True,
        check=True,
        timeout=600,
    ).stdout
    records = []
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        for member in tar:
            if member.isfile() and member.name.endswith(".yaml"):
                record = yaml.safe_load(tar.extractfile(member).read())
                if isinstance(record, dict) and record.get("id"):
                    records.append(json.loads(json.dumps(record, default=_iso)))
    return records


def scaled(records: list[dict], scale: int) -> list[dict]:
    """`scale` copies of the records; copy k > 0 renames ids and package names with a `-k` suffix."""
    out = list(records)
    for k in range(1, scale):
        for record in records:
            copy = json.loads(json.dumps(record))
            copy["id"] = f"{record['id']}-{k}"
            for entry in copy.get("affected") or []:
                if isinstance(entry.get("package"), dict) and entry["package"].get("name"):
                    entry["package"]["name"] = f"{entry['package']['name']}-{k}"
            out.append(copy)
    return out


def write_sources(records: list[dict], folder: Path) -> tuple[Path, Path]:
    """An all.zip and a folder of JSON files holding the records."""
    records_dir = folder / "records"
    records_dir.mkdir(parents=True)
    zip_path = folder / "PyPI" / "all.zip"
    zip_path.parent.mkdir()
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED) as archive:
        for record in records:
            text = json.dumps(record)
            archive.writestr(f"{record['id']}.json", text)
            (records_dir / f"{record['id']}.json").write_text(text)
    return zip_path, records_dir


def manifests(records: list[dict], count: int, seed: int = 42) -> list[list[tuple[str, str]]]:
    """`count` manifests of COMPONENTS (name, version): a third at a listed affected version of an advised
    package, a third at a very old or very new version of one, a third packages no advisory names
    (advised packages drawn uniformly, as a manifest lists different packages)."""
    rng = random.Random(seed)
    versions: dict[str, set[str]] = {}
    for r in records:
        for a in r.get("affected") or []:
            package = a.get("package") or {}
            if package.get("ecosystem") == "PyPI" and package.get("name") and a.get("versions"):
                versions.setdefault(package["name"], set()).update(a["versions"][:3])
    names = sorted(versions)
    listed = [(name, rng.choice(sorted(versions[name]))) for name in names]
    result = []
    for _ in range(count):
        manifest = []
        for i in range(COMPONENTS):
            kind = i % 3
            if kind == 0:
                manifest.append(rng.choice(listed))
            elif kind == 1:
                manifest.append((rng.choice(names), rng.choice(("0.0.1", "999.0"))))
            else:
                manifest.append((f"unadvised-package-{rng.randrange(100_000)}", "1.0.0"))
        result.append(manifest)
    return result


def lookups(index_path: Path, workload: list[list[tuple[str, str]]]) -> dict:
    started = time.perf_counter()
    database = IndexedAdvisories(AdvisoryIndex(index_path))
    matches = sum(len(database.matches("PyPI", name, version)) for manifest in workload for name, version in manifest)
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "matches": matches, "manifests_per_second": len(workload) / seconds}


def candidates_from_index(index_path: Path, workload: list[list[tuple[str, str]]]) -> dict:
    """Record retrieval alone (what the index replaces): the records naming each component's package."""
    index = AdvisoryIndex(index_path)
    started = time.perf_counter()
    found = sum(len(index.records("PyPI", name)) for manifest in workload for name, _ in manifest)
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "records": found, "seconds_per_manifest": seconds / len(workload)}


def candidates_from_json_files(records_dir: Path, workload: list[list[tuple[str, str]]]) -> dict:
    """The same retrieval by reading and parsing every JSON file, per manifest."""
    started = time.perf_counter()
    found = 0
    for manifest in workload:
        wanted = [name_key("PyPI", name) for name, _ in manifest]
        by_name: dict[str, int] = {}
        for path in records_dir.iterdir():
            record = json.loads(path.read_bytes())
            for key in {
                name_key("PyPI", a["package"]["name"])
                for a in record.get("affected") or []
                if (a.get("package") or {}).get("ecosystem") == "PyPI"
            }:
                by_name[key] = by_name.get(key, 0) + 1
        found += sum(by_name.get(key, 0) for key in wanted)
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "records": found, "seconds_per_manifest": seconds / len(workload)}


def scan_json_files(records_dir: Path, workload: list[list[tuple[str, str]]]) -> dict:
    """The baseline: per manifest, read and parse every JSON file and match its components."""
    started = time.perf_counter()
    matches = 0
    for manifest in workload:
        advisories = (advisory_from_osv(json.loads(p.read_bytes())) for p in records_dir.iterdir())
        database = AdvisoryDatabase([a for a in advisories if a])
        matches += sum(len(database.matches("PyPI", name, version)) for name, version in manifest)
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "matches": matches, "seconds_per_manifest": seconds / len(workload)}


def phase_build(zip_path: Path, target: Path) -> dict:
    started = time.perf_counter()
    summary = build_index([Source("PyPI", zip_path)], target)
    return {
        "seconds": time.perf_counter() - started,
        "records": summary.records["PyPI"],
        "withdrawn": summary.withdrawn,
        "unreadable": summary.unreadable,
    }


def _child_build(zip_path: Path, target: Path) -> dict:
    args = [
        sys.executable,
        "-m",
        "ox_bb_pipeline_tests.benchmarks.bench_advisories",
        "--phase",
        "build",
        "--zip",
        str(zip_path),
        "--target",
        str(target),
    ]
    output = subprocess.run(args, check=True, capture_output=True, text=True)
    return json.loads(output.stdout.strip().splitlines()[-1])


def _dataset(
    label: str,
    records: list[dict],
    root: Path,
    workload_size: int,
    baseline: bool,
    retrieval_sample: int = BASELINE_MANIFESTS,
) -> dict:
    folder = root / label
    folder.mkdir()
    zip_path, records_dir = write_sources(records, folder)
    build = _child_build(zip_path, folder / "index.sqlite")
    workload = manifests(records, workload_size)
    result = {
        "records": len(records),
        "zip_mb": zip_path.stat().st_size / 2**20,
        "json_mb": sum(p.stat().st_size for p in records_dir.iterdir()) / 2**20,
        "index_mb": (folder / "index.sqlite").stat().st_size / 2**20,
        "build": build,
        "lookups": lookups(folder / "index.sqlite", workload),
    }
    if baseline:
        sample = workload[:BASELINE_MANIFESTS]
        result["json_scan"] = scan_json_files(records_dir, sample)
        indexed = lookups(folder / "index.sqlite", sample)
        result["speedup"] = result["json_scan"]["seconds_per_manifest"] / (indexed["seconds"] / len(sample))
        result["sample_matches_agree"] = indexed["matches"] == result["json_scan"]["matches"]
    result["retrieval_index"] = candidates_from_index(folder / "index.sqlite", workload)
    result["retrieval_json"] = candidates_from_json_files(records_dir, workload[:retrieval_sample])
    result["retrieval_speedup"] = (
        result["retrieval_json"]["seconds_per_manifest"] / result["retrieval_index"]["seconds_per_manifest"]
    )
    shutil.rmtree(records_dir)
    return result


def run(quick: bool = False) -> dict:
    try:
        records = pypa_records()
    except DataUnavailable as exc:  # the other benchmarks of `make bench` still run
        print(f"bench_advisories: {exc}", file=sys.stderr)
        return {
            "title": "advisories: not run",
            "table": [("PyPA advisory database", "not at hand", str(exc))],
            "json": {"skipped": str(exc)},
        }
    root = Path(tempfile.mkdtemp(prefix="ox-bb-bench-advisories-"))
    scale = 4 if quick else SCALE
    workload = 100 if quick else MANIFESTS
    try:
        real = _dataset("pypa", records, root, workload, baseline=True)
        big = _dataset(f"pypa-x{scale}", scaled(records, scale), root, workload, baseline=False, retrieval_sample=2)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    gb = 2**30
    table = [
        ("PyPA records (OSV JSON)", real["records"], "git HEAD of pypa/advisory-database, vulns/**/*.yaml"),
        ("  all.zip / JSON files (MB)", f"{real['zip_mb']:.1f} / {real['json_mb']:.1f}", ""),
        (
            "  index build (s)",
            real["build"]["seconds"],
            f"{real['build']['records']:,} indexed, {real['build']['withdrawn']} withdrawn",
        ),
        ("  index size (MB)", real["index_mb"], "SQLite, records zlib-compressed"),
        ("  index build peak RSS (GB)", real["build"]["peak_rss_bytes"] / gb, "target ≤ 1 GB"),
        (
            f"  lookups: {workload:,} manifests × {COMPONENTS} components (s)",
            real["lookups"]["seconds"],
            f"{real['lookups']['manifests_per_second']:,.0f} manifests/s, {real['lookups']['matches']:,} matches",
        ),
        (
            "  scanning the JSON files, per manifest (s)",
            real["json_scan"]["seconds_per_manifest"],
            f"sample of {BASELINE_MANIFESTS} manifests",
        ),
        (
            "  record retrieval: index vs scanning JSON files",
            real["retrieval_speedup"],
            f"target ≥ 10× faster ({real['retrieval_index']['seconds_per_manifest'] * 1000:.2f} ms vs "
            f"{real['retrieval_json']['seconds_per_manifest'] * 1000:.0f} ms per manifest)",
        ),
        (
            "  end to end with version matching: index vs JSON files",
            real["speedup"],
            f"same matches: {real['sample_matches_agree']}; matching (univers) is shared by both",
        ),
        (f"scale-up ×{scale} records", big["records"], "ids and package names suffixed (GHSA-database size)"),
        ("  all.zip (MB)", big["zip_mb"], ""),
        ("  index build (s)", big["build"]["seconds"], ""),
        ("  index size (MB)", big["index_mb"], ""),
        ("  index build peak RSS (GB)", big["build"]["peak_rss_bytes"] / gb, "target ≤ 1 GB"),
        (
            f"  lookups: {workload:,} manifests (s)",
            big["lookups"]["seconds"],
            f"{big['lookups']['manifests_per_second']:,.0f} manifests/s",
        ),
        (
            "  record retrieval: index vs scanning JSON files",
            big["retrieval_speedup"],
            f"target ≥ 10× faster ({big['retrieval_index']['seconds_per_manifest'] * 1000:.2f} ms vs "
            f"{big['retrieval_json']['seconds_per_manifest'] * 1000:.0f} ms per manifest; sample of 2)",
        ),
    ]
    return {
        "title": "advisories: index build, size, memory and lookups on the PyPA advisory database",
        "table": table,
        "json": {"pypa": real, f"pypa_x{scale}": big, "manifests": workload, "components_per_manifest": COMPONENTS},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--phase", choices=("build",))
    parser.add_argument("--zip", type=Path)
    parser.add_argument("--target", type=Path)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.phase is None:
        result = run(args.quick)
        for label, value, target in result["table"]:
            print(f"{label:<55} {value if not isinstance(value, float) else round(value, 3):>14}  {target}")
        return
    outcome = phase_build(args.zip, args.target)
    outcome["peak_rss_bytes"] = peak_rss_bytes()
    print(json.dumps(outcome))


def peak_rss_bytes() -> int:
    """This process's RSS high-water mark since it started. Not ru_maxrss: Linux carries that across
    fork + exec, so a child of the parent holding the scaled-up records would report the parent's size."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


if __name__ == "__main__":
    main()
