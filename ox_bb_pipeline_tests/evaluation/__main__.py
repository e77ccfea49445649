"""`make eval`: run every evaluation section, print a table each, write bench-results/eval-<name>.json.

    python -m ox_bb_pipeline_tests.evaluation [NAME ...]

Each section module has `run() -> {"title", "header", "rows", "json"}`: `header` names the columns,
`rows` are lists of cells in that order.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path

SECTIONS = {"sast": "sast", "secrets": "secrets"}


def print_table(title: str, header: list[str], rows: list[list[object]]) -> None:
    def cell(value: object) -> str:
        if value is None:
            return "-"
        return f"{value:.3f}" if isinstance(value, float) else str(value)

    table = [header] + [[cell(v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    print(f"\n{title}")
    for index, row in enumerate(table):
        print("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))))
        if index == 0:
            print("  ".join("-" * w for w in widths))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", choices=[*SECTIONS, []], help="sections to run (default: all)")
    parser.add_argument("--out", type=Path, default=Path("bench-results"))
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for name in args.names or SECTIONS:
        module = importlib.import_module(f"{__package__}.{SECTIONS[name]}")
        result = module.run()
        print_table(result["title"], result["header"], result["rows"])
        path = args.out / f"eval-{name}.json"
        path.write_text(json.dumps(result["json"], indent=2, default=str))
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
