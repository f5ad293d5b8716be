"""In-memory cost of one operator pass over a 10,000-item batch (no cluster, no API calls).

What the reconcile does per pass for every *running* item, whatever changed: the engine's
``running_items``, the item's Job name and a cache lookup of its Job and pod
(``reconcile.items.running_items`` + the lookups of ``observe_items`` / ``ensure_items``); and
once per pass the status rendering (progress counts items) and the "worth a write?"
comparison. API calls are not here: they happen only for what changed (a Job to create, an
output to store).

Usage: ``.venv/bin/python bench/batch_pass_bench.py [--items 10000]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "operator"))
sys.path.insert(0, str(ROOT / "bench"))

import kube_flows  # noqa: E402
from flowcraft.drivers.kubernetes import builders  # noqa: E402
from flowcraft.drivers.kubernetes import status as flow_status  # noqa: E402
from flowcraft.drivers.kubernetes.cache import FlowKey, ObjectCache  # noqa: E402
from flowcraft.drivers.kubernetes.reconcile import Reconciler  # noqa: E402
from flowcraft.drivers.kubernetes.reconcile.items import running_items  # noqa: E402
from flowcraft.drivers.kubernetes.reconcile.state import FlowState, Pass  # noqa: E402
from flowcraft.engine import Engine  # noqa: E402
from flowcraft.model import BatchStatus, Flow, FlowStatus, NodeStatus  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    n = args.items
    flow = Flow.model_validate(kube_flows.batch("b", n))
    engine = Engine(flow.spec)
    half = n // 2
    status = FlowStatus(
        phase="Running",
        nodes={
            "start": NodeStatus(phase="Succeeded", attempts=1),
            "work_scatter": NodeStatus(
                phase="Running",
                attempts=1,
                batch=BatchStatus(total=n, chunk=n, items="S" * half + "R" * (n - half)),
            ),
        },
    )
    cache = ObjectCache()
    key = FlowKey("ns", "b")
    cluster = Reconciler(None, cache, instance="bench")._cluster  # type: ignore[arg-type]
    ctx = Pass(key, builders.FlowRef("b", "ns", "uid"), FlowState(), flow.spec, engine)
    for *_, job, _index in running_items(cluster, ctx, status):
        cache.remember_job(
            key,
            {
                "metadata": {
                    "name": job,
                    "uid": f"uid-{job}",
                    "annotations": {},
                    "ownerReferences": [
                        {"kind": "Flow", "apiVersion": builders.API_VERSION, "name": "b",
                         "uid": "uid", "controller": True}
                    ],
                }
            },
        )  # fmt: skip

    def one_pass() -> None:
        fresh = Pass(key, ctx.ref, ctx.state, flow.spec, engine)  # a new pass: nothing memoised
        for *_, job, index in running_items(cluster, fresh, status):
            found = cache.job_named(key, "uid", job)
            if found is not None:
                cache.pod(key, found, index)

    rows = []
    for what, fn in (
        ("running items: names + Job/pod lookups", one_pass),
        ("engine.running_items alone", lambda: engine.running_items(status)),
        ("render_status (progress counts items)", lambda: flow_status.render_status(status, {}, 4)),
    ):
        times = []
        for _ in range(args.repeat):
            began = time.perf_counter()
            fn()
            times.append(time.perf_counter() - began)
        rows.append((what, statistics.median(times) * 1000))
    rendered = flow_status.render_status(status, {}, 4)
    print(f"{n:,} items, {n - half:,} running (median of {args.repeat}):")
    for what, ms in rows:
        print(f"  {what:<45} {ms:8.2f} ms")
    size = len(json.dumps(rendered, separators=(",", ":")))
    print(f"  status size (.status as JSON): {size:,} bytes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
