"""Local runner benchmark: whole-process wall time of the reference flow over its critical path.

Why a benchmark and not a test: timing depends on the machine. The figure that matters to a
user is how long ``flowcraft run examples/parallel.yaml`` takes end to end (interpreter start,
imports, validation, five node processes) compared with the flow's critical path, 2.0 s
(start-parallel -> task-1 sleeping 2.0 s -> gather). The aim is a ratio <= 1.25.

Usage: ``python bench/local_bench.py [--runs 5] [--flow examples/parallel.yaml]``
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CRITICAL_PATH_SECONDS = 2.0
AIM = 1.25


def wall_time(argv: list[str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"{' '.join(argv)} exited with {proc.returncode}:\n{proc.stderr}")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--flow", type=Path, default=ROOT / "examples" / "parallel.yaml")
    args = parser.parse_args()

    flowcraft = Path(sys.executable).with_name("flowcraft")
    if not flowcraft.exists():
        sys.exit(f"{flowcraft} not found: install the package (make venv)")
    # Warm the OS file cache and .pyc files so every measured run sees the same machine state.
    wall_time([str(flowcraft), "validate", str(args.flow)])

    startup = statistics.median(
        wall_time([str(flowcraft), "validate", str(args.flow)]) for _ in range(args.runs)
    )
    runs = [wall_time([str(flowcraft), "run", str(args.flow), "--quiet"]) for _ in range(args.runs)]
    median = statistics.median(runs)
    ratio = median / CRITICAL_PATH_SECONDS
    shown = args.flow.relative_to(ROOT) if args.flow.is_relative_to(ROOT) else args.flow
    print(f"flowcraft run {shown}")
    print(f"  runs (s):             {', '.join(f'{r:.3f}' for r in runs)}")
    print(f"  median wall time:     {median:.3f} s")
    print(f"  critical path:        {CRITICAL_PATH_SECONDS:.1f} s")
    print(f"  overhead:             {median - CRITICAL_PATH_SECONDS:.3f} s")
    print(f"  cli start + validate: {startup:.3f} s (median of `flowcraft validate`)")
    print(f"  ratio:                {ratio:.3f} (aim <= {AIM})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
