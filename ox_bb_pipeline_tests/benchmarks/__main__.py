"""`make bench`: run every benchmark, print a table per benchmark, write bench-results/<name>.json.

python -m ox_bb_pipeline_tests.benchmarks [--quick] [NAME ...]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from . import (
    bench_advisories,
    bench_extract,
    bench_history,
    bench_pull_requests,
    bench_scale,
    bench_scan,
    bench_secrets_history,
    bench_warehouse,
)

BENCHMARKS = {
    "extract": bench_extract.run,
    "scan": bench_scan.run,
    "warehouse": bench_warehouse.run,
    "advisories": bench_advisories.run,
    "history": bench_history.run,
    "secrets_history": bench_secrets_history.run,
    "scale": bench_scale.run,
    "pull_requests": bench_pull_requests.run,
}


def print_table(title: str, rows: list[tuple[str, object, str]]) -> None:
    width = max(len(r[0]) for r in rows)
    print(f"\n{title}\n" + "-" * (width + 30))
    for label, value, target in rows:
        shown = f"{value:,.2f}" if isinstance(value, float) else f"{value:,}" if isinstance(value, int) else str(value)
        print(f"{label:<{width}}  {shown:>12}  {target}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("names", nargs="*", choices=[*BENCHMARKS, []], help="benchmarks to run (default: all)")
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument("--out", type=Path, default=Path("bench-results"))
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for name in args.names or BENCHMARKS:
        result = BENCHMARKS[name](quick=args.quick)
        print_table(result["title"], result["table"])
        (args.out / f"{name}.json").write_text(json.dumps(result["json"], indent=2, default=str))
        print(f"wrote {args.out / f'{name}.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
