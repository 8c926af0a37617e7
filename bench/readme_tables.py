"""Splice the generated tables into README.md between their markers (run after the benchmarks).

    .venv/bin/python bench/readme_tables.py

<!-- support-matrix:start --> ... <!-- support-matrix:end -->  <- bench/results/support_matrix.md
<!-- bench:start --> ... <!-- bench:end -->                    <- bench/results/latest.md
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TABLES = {"support-matrix": ROOT / "bench/results/support_matrix.md", "bench": ROOT / "bench/results/latest.md"}


def splice(readme: str, name: str, table: str) -> str:
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    pattern = re.compile(re.escape(start) + ".*?" + re.escape(end), re.S)
    if not pattern.search(readme):
        raise SystemExit(f"README.md has no {start} ... {end} markers")
    return pattern.sub(lambda _: f"{start}\n{table.rstrip()}\n{end}", readme)


def main() -> None:
    readme_path = ROOT / "README.md"
    readme = readme_path.read_text(encoding="utf-8")
    for name, path in TABLES.items():
        if path.exists():
            readme = splice(readme, name, path.read_text(encoding="utf-8"))
    readme_path.write_text(readme, encoding="utf-8")


if __name__ == "__main__":
    main()
