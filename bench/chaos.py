"""Chaos run on kwok: many Flows while the operator is SIGKILLed, the API server crashes once
and pods are deleted by hand.

What it checks (figures, printed and written to JSON; the exit code is 1 if any is not 0):

- duplicate Jobs: every Job the namespace ever had, from a watch that starts before the first
  Flow, grouped by (Flow UID, node, attempt, iteration); a key with more than one Job UID is a
  node attempt that ran twice (created again after a crash, or after its Job was deleted).
- Flows not terminal once the chaos stops and the operator has had ``--settle`` seconds.
- attempts without a Job: attempts the Flow statuses say were started that never had a Job
  (bench/chaos_checks.attempts_without_job): an attempt failed without having run, as when a
  restarted operator took a Job it had never created for one deleted by hand.
- outputs differing from a clean run: before the chaos, ``--clean`` Flows of the same manifest
  run undisturbed; every chaos Flow's final context (drivers/kubernetes/results.py, what
  ``flowcraft run`` reports) must equal theirs (bench/chaos_checks.py says what may differ).
  On kwok no container runs and every node's output is ``null``, so this checks that every
  node's output, routing and context entry is there, once, with the clean run's value.

The Flows: ``--flows`` of 20 nodes each (chains and diamonds, bench/kube_flows.MIX_20), every
node with ``maxRetries: 3`` (a deleted pod fails its attempt, a retry runs), and one node per
Flow with a ``fallback`` and a single attempt (a deleted pod there runs the fallback). kwok
completes pods in milliseconds, so pod deletions hit whatever is running at that moment.

The chaos driver: exactly ``--kills`` SIGKILLs of the operator (restarted at once), at random
moments spread over the run by progress (bench/chaos_checks.kill_thresholds: the k-th kill
when the node Jobs created reach a random point of the k-th slice of 90 % of the expected
Jobs); ``--apiserver-restarts`` SIGKILLs of the kube-apiserver at random points between 30 %
and 70 % of the Jobs, each started again by ``hack/cluster.sh crash-apiserver kwok`` (same
command line as the harness; everything else keeps running); ``--pod-deletes`` random managed
pods deleted per second on average. With ``--replicas 2`` two operators with leader election
run and each kill hits the current leader (the Lease's holder). Everything it starts it stops,
by pid (on SIGTERM too); the namespace is deleted at the end unless ``--keep``.

Jobs: a Flow runs one Job per node attempt, so the Jobs seen are the nodes (20 a Flow; the
fallback node only where it ran) plus the retries. ``jobs_missing_at_restart`` counts the
operator's log lines where it found a running attempt's Job missing and failed the attempt
(reported; with no Job deleted by the run, each is also an attempt without a Job).

``make test-chaos`` (part of ``make test``, so CI) runs a small version of this
(hack/test-chaos.sh). What the run reads back from the cluster (the Job ledger, phases,
contexts, attempts) is bench/chaos_observe.py; the checks on it are bench/chaos_checks.py.
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import subprocess
import sys
import time
import urllib.parse
from collections import defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from chaos_checks import attempts_without_job, compare_outputs, kill_thresholds, spread
from chaos_observe import (
    FALLBACK,
    GUARDED,
    MANAGED,
    PODS,
    TERMINAL,
    JobLedger,
    contexts,
    jobs_missing_at_restart,
    leader,
    phases,
    started_attempts,
    unfinished_nodes,
    wait_terminal,
)
from kube_flows import MIX_20, layered
from kube_harness import (
    KWOK_KUBECONFIG,
    ROOT,
    Api,
    BenchError,
    Operator,
    install_crd,
)

NODES = sum(MIX_20)  # node Jobs of a Flow whose fallback does not run


def chaos_flow(name: str) -> dict[str, Any]:
    """20 nodes (MIX_20), retries everywhere, one single-attempt node with a fallback."""
    flow = layered(name, MIX_20)
    for node in flow["spec"]["nodes"]:
        node["config"] = {"maxRetries": 3}
    guarded = flow["spec"]["nodes"][2]
    assert guarded["id"] == GUARDED
    guarded["config"] = {"maxRetries": 1, "fallback": FALLBACK}
    flow["spec"]["nodes"].append({"id": FALLBACK, "uses": "ok", "config": {"maxRetries": 3}})
    flow["spec"]["failFast"] = False
    return flow


def crash_apiserver() -> float:
    """SIGKILL the kwok kube-apiserver and start it again the harness's way; seconds it took
    until the new one was ready."""
    began = time.monotonic()
    proc = subprocess.run(
        [str(ROOT / "hack" / "cluster.sh"), "crash-apiserver", "kwok"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if proc.returncode != 0:
        raise BenchError(f"crash-apiserver: {proc.stderr.strip()[-500:]}")
    return time.monotonic() - began


class Chaos:
    """The driver's state: operators, schedule, and what it did."""

    def __init__(self, args: argparse.Namespace, api: Api, namespace: str, workdir: Path):
        self.args, self.api, self.namespace, self.workdir = args, api, namespace, workdir
        self.rng = random.Random(args.seed)
        # client-go's timing (15 s / 10 s / 2 s): shorter deadlines on a starved machine make
        # leaders give up their Lease (and exit) over and over.
        election = ["--leader-elect", f"--leader-election-namespace={namespace}"]
        self.operators = [
            Operator(
                KWOK_KUBECONFIG,
                [namespace],
                workdir / f"operator-{i}.log",
                [
                    *(
                        [*election, f"--leader-election-identity=op-{i}"]
                        if args.replicas > 1
                        else []
                    ),
                    *args.operator_arg,
                ],
            )
            for i in range(args.replicas)
        ]
        self.starts = [0] * args.replicas
        self.kills = self.leader_kills = self.pod_deletes = self.restarts = 0
        self.kill_log: list[dict[str, Any]] = []
        # what each deleted pod was: phase, or "Unscheduled" for a Pending pod with no node
        self.deleted_states: dict[str, int] = defaultdict(int)
        self.apiserver_restarts: list[dict[str, Any]] = []

    def start(self, index: int) -> None:
        """(Re)start operator ``index``, each run of it with its own log file."""
        op = self.operators[index]
        self.starts[index] += 1
        op.log_path = self.workdir / f"operator-{index}.{self.starts[index]}.log"
        op.start()

    def restart_exited(self) -> None:
        for i, op in enumerate(self.operators):
            if not op.alive() and op.proc is not None:
                self.start(
                    i
                )  # exited by itself (a leader that lost its Lease), as a Deployment would
                self.restarts += 1

    def kill_one(self, progress: int, elapsed: float) -> None:
        victim_index = self.rng.randrange(len(self.operators))
        if len(self.operators) > 1:
            holder = leader(self.api, self.namespace)
            if holder is not None and holder.startswith("op-"):
                victim_index = int(holder[3:])
                self.leader_kills += 1
        victim = self.operators[victim_index]
        if victim.alive() and victim.proc is not None:
            victim.proc.kill()  # SIGKILL, by pid
            victim.proc.wait(timeout=30)
            self.kills += 1
        self.start(victim_index)
        self.kill_log.append({"jobs": progress, "s": round(elapsed, 1), "op": victim_index})

    def delete_pod(self) -> None:
        try:
            pods = self.api.request(
                "GET", PODS.format(ns=self.namespace), params={"labelSelector": MANAGED}
            )["items"]
        except BenchError:
            return
        live = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
        if not live:
            return
        chosen = self.rng.choice(live)
        pod = chosen["metadata"]["name"]
        state = str((chosen.get("status") or {}).get("phase"))
        if state == "Pending" and not (chosen.get("spec") or {}).get("nodeName"):
            state = "Unscheduled"
        try:
            self.api.request(
                "DELETE", PODS.format(ns=self.namespace) + "/" + urllib.parse.quote(pod)
            )
            self.pod_deletes += 1
            self.deleted_states[state] += 1
        except BenchError:
            pass  # gone already


def run(args: argparse.Namespace) -> dict[str, Any]:
    api = Api(KWOK_KUBECONFIG)
    install_crd(KWOK_KUBECONFIG)
    namespace = api.create_namespace("chaos")
    workdir = ROOT / "build" / "bench" / namespace
    chaos = Chaos(args, api, namespace, workdir)
    rng = chaos.rng
    ledger = JobLedger(api, namespace)
    try:
        for i in range(len(chaos.operators)):
            chaos.start(i)
        ledger.start()
        # The clean run: the same manifest, no chaos, before any.
        clean_names = {f"clean-{i}" for i in range(args.clean)}
        api.create_flows(namespace, [chaos_flow(n) for n in sorted(clean_names)])
        if not wait_terminal(api, namespace, clean_names, args.settle):
            raise BenchError(f"the clean Flows did not finish in {args.settle:g} s")
        failed = {n for n, p in phases(api, namespace).items() if n in clean_names} - {
            n for n, p in phases(api, namespace).items() if p == "Succeeded"
        }
        if failed:
            raise BenchError(f"clean Flows did not succeed: {sorted(failed)}")
        clean, clean_fallback = contexts(api, namespace, clean_names)
        reference = clean[sorted(clean_names)[0]]
        if isinstance(reference, str) or any(clean_fallback.values()):
            raise BenchError(f"the clean run did not succeed as built: {reference!r}")
        clean_check = compare_outputs(reference, clean, {}, FALLBACK)
        if clean_check["differing"]:
            raise BenchError(f"the clean runs disagree: {clean_check}")

        offset = ledger.count()
        expected = args.flows * NODES
        thresholds = kill_thresholds(args.kills, expected, rng)
        restarts_at = [int(p * expected) for p in spread(args.apiserver_restarts, 0.3, 0.7, rng)]
        names = {f"c{i:03d}" for i in range(args.flows)}
        began = time.monotonic()
        api.create_flows(namespace, [chaos_flow(n) for n in sorted(names)])
        last_check, done = 0.0, False
        while time.monotonic() - began < args.duration:
            now, progress = time.monotonic(), ledger.count() - offset
            chaos.restart_exited()
            if thresholds and progress >= thresholds[0]:
                thresholds.pop(0)
                chaos.kill_one(progress, now - began)
            if restarts_at and progress >= restarts_at[0]:
                restarts_at.pop(0)
                took = crash_apiserver()
                chaos.apiserver_restarts.append(
                    {"jobs": progress, "s": round(now - began, 1), "ready_after_s": round(took, 1)}
                )
            if rng.random() < args.pod_deletes * 0.2:
                chaos.delete_pod()
            if now - last_check >= 2:
                last_check = now
                current = phases(api, namespace)
                done = all(current.get(n) in TERMINAL for n in names)
                if done and not thresholds and not restarts_at:
                    break
            time.sleep(0.2)
        chaos_s = time.monotonic() - began
        settle_end = time.monotonic() + args.settle
        while time.monotonic() < settle_end:
            chaos.restart_exited()
            current = phases(api, namespace)
            if all(current.get(n) in TERMINAL for n in names):
                break
            time.sleep(1)
        settled_s = time.monotonic() - began
        time.sleep(2)  # the last Job events reach the ledger
        final = {n: p for n, p in phases(api, namespace).items() if n in names}
        duplicates = ledger.duplicates()
        not_terminal = sorted(n for n in names if final.get(n) not in TERMINAL)
        got, fallback_ran = contexts(api, namespace, names)
        outputs = compare_outputs(reference, got, fallback_ran, FALLBACK)
        with ledger.lock:
            keys = list(ledger.uids)
        without_job = attempts_without_job(started_attempts(api, namespace), keys)
        missing_at_restart = jobs_missing_at_restart(workdir)
        return {
            "flows": args.flows,
            "nodes_per_flow": NODES + 1,
            "replicas": args.replicas,
            "seed": args.seed,
            "clean_flows": args.clean,
            "operator_kills": chaos.kills,
            "operator_kills_asked": args.kills,
            "leader_kills": chaos.leader_kills,
            "kills": chaos.kill_log,
            "apiserver_restarts": chaos.apiserver_restarts,
            "pod_deletes": chaos.pod_deletes,
            "pods_deleted_by_state": dict(chaos.deleted_states),
            "operator_exits_restarted": chaos.restarts,
            "chaos_seconds": round(chaos_s, 1),
            "settled_seconds": round(settled_s, 1),
            "jobs_seen": sum(len(v) for v in ledger.uids.values()),
            "node_attempts": len(ledger.uids),
            "attempts_without_job": len(without_job),
            "attempts_without_job_examples": without_job[:10],
            "jobs_missing_at_restart": len(missing_at_restart),
            "jobs_missing_at_restart_examples": [line[-220:] for line in missing_at_restart[:5]],
            "duplicate_jobs": duplicates,
            "flows_not_terminal": not_terminal,
            "unfinished_nodes": unfinished_nodes(api, namespace, not_terminal)
            if not_terminal
            else {},
            "phases": {str(p): list(final.values()).count(p) for p in set(final.values())},
            "outputs": outputs,
            "clean_context_keys": len(reference),
            "outputs_differing": outputs["differing"],
            "loadavg_end": Path("/proc/loadavg").read_text().split()[:3],
            "ledger_errors": ledger.errors[:5],
            "logs": str(workdir),
        }
    finally:
        ledger.stop()
        for op in chaos.operators:
            op.stop()
        if not args.keep:
            api.delete_namespace(namespace)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flows", type=int, default=20)
    parser.add_argument("--kills", type=int, default=20, help="operator SIGKILLs, exactly")
    parser.add_argument(
        "--apiserver-restarts", type=int, default=1, help="kube-apiserver SIGKILL + start"
    )
    parser.add_argument("--pod-deletes", type=float, default=1, help="mean pod deletions/s")
    parser.add_argument("--replicas", type=int, default=1, choices=(1, 2))
    parser.add_argument("--clean", type=int, default=2, help="undisturbed Flows first")
    parser.add_argument("--duration", type=float, default=600, help="seconds of chaos at most")
    parser.add_argument("--settle", type=float, default=300)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", action="store_true", help="keep the namespace, to inspect")
    parser.add_argument(
        "--operator-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="one more argument for every operator (repeatable: --operator-arg=--flag=1)",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "chaos.json")
    args = parser.parse_args()
    # SIGTERM (make interrupted, a CI timeout) unwinds like Ctrl-C, so the operators, which run
    # in sessions of their own, are stopped by the run's ``finally``.
    signal.signal(signal.SIGTERM, _interrupt)
    loadavg_start = Path("/proc/loadavg").read_text().split()[:3]
    result = {"loadavg_start": loadavg_start, **run(args)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    ok = not result["duplicate_jobs"] and not result["flows_not_terminal"]
    ok = ok and not result["outputs_differing"] and not result["attempts_without_job"]
    print("chaos:", "OK" if ok else "FAILED", f"({args.out})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
