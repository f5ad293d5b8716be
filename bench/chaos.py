"""Chaos run on kwok: many Flows while the operator is SIGKILLed and pods are deleted at random.

What it checks (figures, printed and written to JSON; the exit code is 1 if either is not 0):

- duplicate Jobs: every Job the namespace ever had, from a watch that starts before the first
  Flow, grouped by (Flow UID, node, attempt, iteration); a key with more than one Job UID is a
  node attempt that ran twice (created again after a crash, or after its Job was deleted).
- Flows not terminal once the chaos stops and the operator has had ``--settle`` seconds.

The Flows: ``--flows`` of 20 nodes each (chains and diamonds, bench/kube_flows.MIX_20), every
node with ``maxRetries: 3`` (a deleted pod fails its attempt, a retry runs), and one node per
Flow with a ``fallback`` and a single attempt (a deleted pod there runs the fallback). kwok
completes pods in milliseconds, so pod deletions hit whatever is running at that moment.

The chaos driver: SIGKILLs the operator every ``--kill-every`` seconds on average (uniformly
random in [0.5, 1.5] x that), restarts it at once; deletes ``--pod-deletes`` random managed
pods per second on average; for ``--duration`` seconds or until every Flow is terminal. With
``--replicas 2`` two operators with leader election run and a random one is killed each time.
Everything it starts it stops, by pid; the namespace is deleted at the end.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import threading
import time
import urllib.parse
from collections import defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from kube_flows import MIX_20, layered
from kube_harness import (
    KWOK_KUBECONFIG,
    ROOT,
    Api,
    BenchError,
    Operator,
    install_crd,
)

FLOWS = "/apis/flowcraft.io/v1alpha1/namespaces/{ns}/flows"
JOBS = "/apis/batch/v1/namespaces/{ns}/jobs"
PODS = "/api/v1/namespaces/{ns}/pods"
ANN_NODE = "flowcraft.io/node-id"
ANN_ATTEMPT = "flowcraft.io/attempt"
ANN_ITERATION = "flowcraft.io/iteration"
TERMINAL = ("Succeeded", "Failed")


def chaos_flow(name: str) -> dict[str, Any]:
    """20 nodes (MIX_20), retries everywhere, one single-attempt node with a fallback."""
    flow = layered(name, MIX_20)
    for node in flow["spec"]["nodes"]:
        node["config"] = {"maxRetries": 3}
    guarded = flow["spec"]["nodes"][2]
    guarded["config"] = {"maxRetries": 1, "fallback": "rescue"}
    flow["spec"]["nodes"].append({"id": "rescue", "uses": "ok"})
    flow["spec"]["failFast"] = False
    return flow


class JobLedger:
    """Every Job UID seen per (Flow UID, node, attempt, iteration), from a watch."""

    def __init__(self, api: Api, namespace: str) -> None:
        self.api, self.namespace = api, namespace
        self.uids: dict[tuple[str, str, str, str], set[str]] = defaultdict(set)
        self.lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.errors: list[str] = []

    def start(self) -> None:
        self._thread.start()

    def record(self, job: dict[str, Any]) -> None:
        meta = job.get("metadata") or {}
        ann = meta.get("annotations") or {}
        owners = [o for o in meta.get("ownerReferences") or [] if o.get("controller")]
        if not owners or ANN_NODE not in ann:
            return
        key = (
            str(owners[0].get("uid")),
            str(ann.get(ANN_NODE)),
            str(ann.get(ANN_ATTEMPT)),
            str(ann.get(ANN_ITERATION, "0")),
        )
        with self.lock:
            self.uids[key].add(str(meta.get("uid")))

    def _run(self) -> None:
        path = JOBS.format(ns=self.namespace)
        doc = self.api.request("GET", path)
        for job in doc.get("items") or []:
            self.record(job)
        rv = str(doc["metadata"]["resourceVersion"])
        while not self._stop.is_set():
            params = {"watch": "1", "resourceVersion": rv, "timeoutSeconds": "30"}
            try:
                resp = self.api.stream(path, params)
                buf = b""
                for chunk in resp.read_chunked():
                    buf += chunk
                    while b"\n" in buf:
                        line, buf = buf.split(b"\n", 1)
                        if not line.strip():
                            continue
                        event = json.loads(line)
                        obj = event.get("object") or {}
                        if event.get("type") == "ERROR":
                            raise BenchError(str(obj.get("message")))
                        rv = str((obj.get("metadata") or {}).get("resourceVersion") or rv)
                        self.record(obj)
                    if self._stop.is_set():
                        break
                resp.release_conn()
            except Exception as exc:  # a broken stream: note it, list again, go on
                self.errors.append(str(exc))
                doc = self.api.request("GET", path)
                for job in doc.get("items") or []:
                    self.record(job)
                rv = str(doc["metadata"]["resourceVersion"])

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=40)

    def duplicates(self) -> dict[str, int]:
        with self.lock:
            return {"/".join(k): len(v) for k, v in self.uids.items() if len(v) > 1}


def phases(api: Api, namespace: str) -> dict[str, str | None]:
    """Flow name -> phase; retried while the API server answers 429/5xx (a CRD update makes
    it re-initialize the Flow storage: "storage is (re)initializing")."""
    for _ in range(60):
        try:
            doc = api.request("GET", FLOWS.format(ns=namespace))
            break
        except BenchError:
            time.sleep(1)
    else:
        doc = api.request("GET", FLOWS.format(ns=namespace))
    return {
        f["metadata"]["name"]: (f.get("status") or {}).get("phase") for f in doc.get("items") or []
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    api = Api(KWOK_KUBECONFIG)
    install_crd(KWOK_KUBECONFIG)
    rng = random.Random(args.seed)
    namespace = api.create_namespace("chaos")
    workdir = ROOT / "build" / "bench" / namespace
    # client-go's timing (15 s / 10 s / 2 s): shorter deadlines on a starved machine make
    # leaders give up their Lease (and exit) over and over.
    election = ["--leader-elect", f"--leader-election-namespace={namespace}"]
    operators = [
        Operator(
            KWOK_KUBECONFIG,
            [namespace],
            workdir / f"operator-{i}.log",
            [*election, f"--leader-election-identity=op-{i}"] if args.replicas > 1 else [],
        )
        for i in range(args.replicas)
    ]
    ledger = JobLedger(api, namespace)
    kills = pod_deletes = restarts = 0
    try:
        for op in operators:
            op.start()
        ledger.start()
        flows = [chaos_flow(f"c{i:03d}") for i in range(args.flows)]
        began = time.monotonic()
        api.create_flows(namespace, flows)
        next_kill = began + args.kill_every * rng.uniform(0.5, 1.5)
        while time.monotonic() - began < args.duration:
            now = time.monotonic()
            for op in operators:
                if not op.alive() and op.proc is not None:
                    op.start()  # exited by itself (a leader that lost its Lease)
                    restarts += 1
            if now >= next_kill:
                victim = rng.choice(operators)
                if victim.alive() and victim.proc is not None:
                    victim.proc.kill()  # SIGKILL, by pid
                    victim.proc.wait(timeout=30)
                    kills += 1
                victim.start()
                next_kill = now + args.kill_every * rng.uniform(0.5, 1.5)
            if rng.random() < args.pod_deletes * 0.2:
                try:
                    pods = api.request(
                        "GET",
                        PODS.format(ns=namespace),
                        params={"labelSelector": "app.kubernetes.io/managed-by=flowcraft-operator"},
                    )["items"]
                except BenchError:
                    pods = []
                live = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
                if live:
                    pod = rng.choice(live)["metadata"]["name"]
                    try:
                        api.request(
                            "DELETE", PODS.format(ns=namespace) + "/" + urllib.parse.quote(pod)
                        )
                        pod_deletes += 1
                    except BenchError:
                        pass  # gone already
            if all(p in TERMINAL for p in phases(api, namespace).values()):
                break
            time.sleep(0.2)
        chaos_s = time.monotonic() - began
        for op in operators:
            if not op.alive():
                op.start()
        settle_end = time.monotonic() + args.settle
        while time.monotonic() < settle_end:
            if all(p in TERMINAL for p in phases(api, namespace).values()):
                break
            for op in operators:
                if not op.alive():  # as a Deployment would: e.g. a leader that lost its Lease
                    op.start()
                    restarts += 1
            time.sleep(1)
        final = phases(api, namespace)
        time.sleep(2)  # the last Job events reach the ledger
        duplicates = ledger.duplicates()
        not_terminal = sorted(name for name, phase in final.items() if phase not in TERMINAL)
        return {
            "flows": args.flows,
            "nodes_per_flow": len(flows[0]["spec"]["nodes"]),
            "replicas": args.replicas,
            "seed": args.seed,
            "operator_kills": kills,
            "pod_deletes": pod_deletes,
            "operator_exits_restarted": restarts,
            "chaos_seconds": round(chaos_s, 1),
            "settled_seconds": round(time.monotonic() - began, 1),
            "jobs_seen": sum(len(v) for v in ledger.uids.values()),
            "node_attempts": len(ledger.uids),
            "duplicate_jobs": duplicates,
            "flows_not_terminal": not_terminal,
            "phases": {p: list(final.values()).count(p) for p in set(final.values())},
            "ledger_errors": ledger.errors[:5],
            "logs": str(workdir),
        }
    finally:
        ledger.stop()
        for op in operators:
            op.stop()
        api.delete_namespace(namespace)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flows", type=int, default=20)
    parser.add_argument("--duration", type=float, default=90, help="seconds of chaos at most")
    parser.add_argument("--kill-every", type=float, default=6, help="mean seconds between kills")
    parser.add_argument("--pod-deletes", type=float, default=1, help="mean pod deletions/s")
    parser.add_argument("--replicas", type=int, default=1, choices=(1, 2))
    parser.add_argument("--settle", type=float, default=300)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "chaos.json")
    args = parser.parse_args()
    result = run(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    ok = not result["duplicate_jobs"] and not result["flows_not_terminal"]
    print("chaos:", "OK" if ok else "FAILED", f"({args.out})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
