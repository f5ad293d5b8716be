"""Operator prelude for memory profiles: tracemalloc snapshots written while a benchmark runs.

Why: the operator's RSS at 1,000 active flows is a target (bench/README.md "Memory"); this
says which source lines hold the Python heap at that moment. Run through the bench's prelude
hook, which executes this file inside the operator process before it starts:

    BENCH_OPERATOR_PRELUDE=bench/tracemalloc_prelude.py BENCH_TRACEMALLOC_OUT=build/bench/mem \\
        .venv/bin/python bench/kube_bench.py --only scale --preset full --out ...

Every ``BENCH_TRACEMALLOC_INTERVAL`` seconds (default 5) a daemon thread writes
``<out>/<pid>-<n>.txt``: VmRSS/VmHWM, the traced total, the top lines by size (grouped by
``BENCH_TRACEMALLOC_FRAMES`` frames, default 1; more frames cost the operator CPU and memory),
the top files, and the most numerous object types (gc-tracked containers only). The last file
written before the operator stopped is the one to read. tracemalloc sees allocations made
through Python's allocator only (not the Rust heap of pydantic-core, nor OpenSSL's), and its
own bookkeeping is not counted in "traced" but is in RSS.
"""

from __future__ import annotations

import collections
import gc
import os
import threading
import time
import tracemalloc
from pathlib import Path


def _proc_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def _dump(out: Path, n: int, frames: int) -> None:
    snap = tracemalloc.take_snapshot().filter_traces(
        (tracemalloc.Filter(False, tracemalloc.__file__),)
    )
    current, peak = tracemalloc.get_traced_memory()
    lines = [
        f"VmRSS {_proc_kib('VmRSS') / 1024:.1f} MiB, VmHWM {_proc_kib('VmHWM') / 1024:.1f} MiB, "
        f"traced {current / 2**20:.1f} MiB (peak {peak / 2**20:.1f} MiB), "
        f"tracemalloc overhead {tracemalloc.get_tracemalloc_memory() / 2**20:.1f} MiB",
        "",
        "== top lines",
    ]
    key = "traceback" if frames > 1 else "lineno"
    for stat in snap.statistics(key)[:40]:
        lines.append(f"{stat.size / 2**20:8.2f} MiB {stat.count:9d} blocks  {stat.traceback[0]}")
        if frames > 1:
            lines.extend(f"{'':31}{frame}" for frame in list(stat.traceback)[1:])
    lines += ["", "== top files"]
    for stat in snap.statistics("filename")[:25]:
        lines.append(f"{stat.size / 2**20:8.2f} MiB {stat.count:9d} blocks  {stat.traceback[0]}")
    lines += ["", "== most numerous gc-tracked types"]
    counts = collections.Counter(type(o).__qualname__ for o in gc.get_objects())
    lines.extend(f"{c:9d}  {name}" for name, c in counts.most_common(20))
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{os.getpid()}-{n:03d}.txt").write_text("\n".join(lines) + "\n")


def _loop(out: Path, interval: float, frames: int) -> None:
    n = 0
    while True:
        time.sleep(interval)
        n += 1
        _dump(out, n, frames)


_frames = int(os.environ.get("BENCH_TRACEMALLOC_FRAMES", "1"))
tracemalloc.start(_frames)
threading.Thread(
    target=_loop,
    args=(
        Path(os.environ.get("BENCH_TRACEMALLOC_OUT", "build/bench/tracemalloc")),
        float(os.environ.get("BENCH_TRACEMALLOC_INTERVAL", "5")),
        _frames,
    ),
    name="tracemalloc-dump",
    daemon=True,
).start()
