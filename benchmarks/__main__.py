"""Run benchmarks: every ``benchmarks/bench_*.py``, or those named on the command line.

    python -m benchmarks                          # all of them
    python -m benchmarks extraction               # benchmarks/bench_extraction.py
    python -m benchmarks bench_extraction.py -- --repeats 5 --update-md
Arguments after ``--`` go to each benchmark's ``main(argv)``.
"""

from __future__ import annotations

import importlib
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _module_name(name: str) -> str:
    stem = Path(name).stem
    return stem if stem.startswith("bench_") else f"bench_{stem}"


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, extra = argv[:cut], argv[cut + 1 :]
    names = [_module_name(n) for n in argv] or sorted(p.stem for p in HERE.glob("bench_*.py"))
    missing = [n for n in names if not (HERE / f"{n}.py").is_file()]
    if missing:
        available = ", ".join(sorted(p.stem for p in HERE.glob("bench_*.py")))
        print(f"no such benchmark: {', '.join(missing)} (available: {available})", file=sys.stderr)
        return 2
    failed = 0
    for name in names:
        print(f"=== {name} ===", flush=True)
        start = time.perf_counter()
        module = importlib.import_module(f"benchmarks.{name}")
        code = module.main(extra) or 0
        failed += code != 0
        print(f"=== {name}: exit {code}, {time.perf_counter() - start:.1f} s ===", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
