"""Result channel benchmark on real pods (issue 12): what a large result costs.

1. Channel overhead: a two-node flow ``produce -> consume`` whose first node returns S bytes.
   Overhead = receipt of the producer's container "terminated" (pod watch) to receipt of the
   consumer's Job ADDED (Job watch): the operator reading the result (termination message,
   or the pod's log), storing it in a ConfigMap, writing the status and creating the next
   Job. Sizes 1 KiB, 100 KiB, 900 KiB; each size twice where it can be: a repetitive output
   (zlib makes it fit the termination message) and random letters (a block in the pod's log).
   Median of ``--repeats`` (default 5) flows run one at a time.
2. Memory: one flow with ``--wide`` (default 100) parallel nodes each returning 500 KiB of
   random letters at once; the operator's peak RSS (VmHWM) before and after, and the time
   from the first pod ending to the flow Succeeded.

Needs the single-node harness cluster (``make bench-real-up``) and the runner image loaded.
Writes JSON (``--out``, default bench/results/results-channel.json). Everything it starts (the
operator, watch threads, a namespace) it stops or deletes.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from kube_harness import (
    REAL_KUBECONFIG,
    ROOT,
    Api,
    BenchError,
    Operator,
    Recorder,
    Watches,
    install_crd,
)

KIB = 1024
PRODUCE = """
import random, string
def run(ctx):
    size, kind = ctx.params["size"], ctx.params["kind"]
    if kind == "repeat":
        return ("abcdefgh" * (size // 8 + 1))[:size]
    rng = random.Random(size)
    return "".join(rng.choices(string.ascii_letters + string.digits, k=size))
"""
CONSUME = "def run(ctx):\n    return len(ctx.input)\n"
FUNCTIONS = {"produce": {"script": PRODUCE}, "consume": {"script": CONSUME}}


def pair(name: str, size: int, kind: str) -> dict[str, Any]:
    return {
        "apiVersion": "flowcraft.io/v1alpha1",
        "kind": "Flow",
        "metadata": {"name": name},
        "spec": {
            "functions": FUNCTIONS,
            "nodes": [
                {"id": "produce", "uses": "produce", "params": {"size": size, "kind": kind}},
                {"id": "consume", "uses": "consume"},
            ],
            "edges": [{"source": "produce", "target": "consume"}],
        },
    }


def wide(name: str, width: int, size: int) -> dict[str, Any]:
    nodes = [
        {"id": f"n{i:03d}", "uses": "produce", "params": {"size": size, "kind": "random"}}
        for i in range(width)
    ]
    return {
        "apiVersion": "flowcraft.io/v1alpha1",
        "kind": "Flow",
        "metadata": {"name": name},
        "spec": {"functions": FUNCTIONS, "nodes": nodes, "edges": []},
    }


def wait_flow(api: Api, ns: str, name: str, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        flow = api.request("GET", f"/apis/flowcraft.io/v1alpha1/namespaces/{ns}/flows/{name}")
        if (flow.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            return dict(flow)
        time.sleep(0.2)
    raise BenchError(f"flow {name} did not finish in {timeout}s")


def channel(api: Api, ns: str, recorder: Recorder, repeats: int) -> list[dict[str, Any]]:
    cases = [(1 * KIB, "random"), (100 * KIB, "repeat"), (100 * KIB, "random")]
    cases += [(900 * KIB, "repeat"), (900 * KIB, "random")]
    rows = []
    for size, kind in cases:
        samples = []
        for r in range(repeats):
            name = f"c{size // KIB}-{kind}-{r}"
            api.create_flows(ns, [pair(name, size, kind)], workers=1)
            flow = wait_flow(api, ns, name, 300)
            if flow["status"]["phase"] != "Succeeded":
                raise BenchError(f"{name}: {json.dumps(flow['status'])[:500]}")
            time.sleep(0.5)  # let the watches deliver
            prod, cons = recorder.nodes[(name, "produce")], recorder.nodes[(name, "consume")]
            if prod.pod_terminated is None or cons.job_added is None:
                raise BenchError(f"{name}: watch times missing")
            samples.append(cons.job_added - prod.pod_terminated)
        channel_name = (
            "termination message"
            if size <= 4 * KIB or kind == "repeat"
            else "pod log (zlib+base64 block)"
        )
        rows.append(
            {
                "size_bytes": size,
                "output": kind,
                "channel": channel_name,
                "overhead_ms_median": round(statistics.median(samples) * 1000, 1),
                "overhead_ms_samples": [round(s * 1000, 1) for s in samples],
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    return rows


def memory(api: Api, ns: str, recorder: Recorder, op: Operator, width: int) -> dict[str, Any]:
    before = op.peak_rss_mib()
    began = time.time()
    api.create_flows(ns, [wide("wide", width, 500 * KIB)], workers=1)
    flow = wait_flow(api, ns, "wide", 1800)
    ended = time.time()
    time.sleep(0.5)
    ends = [t.pod_terminated for (f, _), t in recorder.nodes.items() if f == "wide"]
    first_end = min(e for e in ends if e is not None)
    return {
        "nodes": width,
        "result_bytes_each": 500 * KIB,
        "phase": flow["status"]["phase"],
        "operator_peak_rss_mib_before": round(before, 1),
        "operator_peak_rss_mib_after": round(op.peak_rss_mib(), 1),
        "operator_rss_mib_after": round(op.rss_mib(), 1),
        "wall_s": round(ended - began, 1),
        "first_pod_end_to_succeeded_s": round(ended - first_end, 1),
        "status_bytes": len(json.dumps(flow["status"], separators=(",", ":"))),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--wide", type=int, default=100)
    parser.add_argument("--only", default="channel,memory")
    parser.add_argument("--runner-image", default=os.environ.get("RUNNER_IMAGE", ""))
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "results-channel.json"))
    args = parser.parse_args()
    api = Api(REAL_KUBECONFIG)
    install_crd(REAL_KUBECONFIG)
    ns = api.create_namespace("bench-results")
    recorder = Recorder()
    watches = Watches(api, ns, recorder)
    extra = ["--runner-image", args.runner_image] if args.runner_image else []
    op = Operator(REAL_KUBECONFIG, [ns], ROOT / "build" / "bench" / ns / "operator.log", extra)
    out: dict[str, Any] = {"namespace": ns, "runner_image": args.runner_image}
    try:
        watches.start()
        op.start()
        op.wait_ready(api, ns, timeout=180)
        only = set(args.only.split(","))
        if "channel" in only:
            out["channel"] = channel(api, ns, recorder, args.repeats)
        if "memory" in only:
            out["memory"] = memory(api, ns, recorder, op, args.wide)
            print(json.dumps(out["memory"]), flush=True)
        out["operator_errors"] = op.errors()[:20]
    finally:
        op.stop()
        watches.stop()
        api.delete_namespace(ns)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
