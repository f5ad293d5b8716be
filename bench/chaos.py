"""Chaos run on kwok: many Flows while the operator is SIGKILLed, the API server crashes once
and pods are deleted by hand.

What it checks (figures, printed and written to JSON; the exit code is 1 if any is not 0):

- duplicate Jobs: every Job the namespace ever had, from a watch that starts before the first
  Flow, grouped by (Flow UID, node, attempt, iteration); a key with more than one Job UID is a
  node attempt that ran twice (created again after a crash, or after its Job was deleted).
- Flows not terminal once the chaos stops and the operator has had ``--settle`` seconds.
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
fallback node only where it ran) plus the retries. ``attempts_without_job`` counts attempts the
Flow statuses say were started that never had a Job (bench/chaos_checks.attempts_without_job),
and ``jobs_missing_at_restart`` the operator's log lines where a restarted operator found a
running attempt's Job missing and failed the attempt: reported, not (yet) a failure of the run
(bench/README.md, "Chaos").

``make test-chaos`` (part of ``make test``, so CI) runs a small version of this
(hack/test-chaos.sh).
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
from collections import defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from chaos_checks import attempts_without_job, compare_outputs, kill_thresholds, spread
from kube_flows import MIX_20, layered
from kube_harness import (
    KWOK_KUBECONFIG,
    ROOT,
    Api,
    BenchError,
    Operator,
    install_crd,
)

sys.path.insert(0, str(ROOT / "operator"))

from flowcraft.drivers.kubernetes.results import final_context

FLOWS = "/apis/flowcraft.io/v1alpha1/namespaces/{ns}/flows"
JOBS = "/apis/batch/v1/namespaces/{ns}/jobs"
PODS = "/api/v1/namespaces/{ns}/pods"
CONFIGMAPS = "/api/v1/namespaces/{ns}/configmaps"
LEASE = "/apis/coordination.k8s.io/v1/namespaces/{ns}/leases/flowcraft-operator"
MANAGED = "app.kubernetes.io/managed-by=flowcraft-operator"
ANN_NODE = "flowcraft.io/node-id"
ANN_ATTEMPT = "flowcraft.io/attempt"
ANN_ITERATION = "flowcraft.io/iteration"
TERMINAL = ("Succeeded", "Failed")
GUARDED, FALLBACK = "l2-0", "rescue"
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


def retry(call: Any, tries: int = 120, pause: float = 1.0) -> Any:
    """``call()`` again while the API server answers an error or not at all (it may be
    restarting, or re-initializing a storage)."""
    for _ in range(tries - 1):
        try:
            return call()
        except Exception:  # any transport or HTTP error: wait and ask again
            time.sleep(pause)
    return call()


class JobLedger:
    """Every Job UID seen per (Flow UID, node, attempt, iteration), from a watch (listed again
    after a broken stream, e.g. while the API server restarts)."""

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

    def count(self) -> int:
        """Node attempts seen so far (distinct keys): the run's progress."""
        with self.lock:
            return len(self.uids)

    def _relist(self, path: str) -> str:
        doc = retry(lambda: self.api.request("GET", path))
        for job in doc.get("items") or []:
            self.record(job)
        return str(doc["metadata"]["resourceVersion"])

    def _run(self) -> None:
        path = JOBS.format(ns=self.namespace)
        rv = self._relist(path)
        while not self._stop.is_set():
            params = {"watch": "1", "resourceVersion": rv, "timeoutSeconds": "30"}
            try:
                resp = self.api.stream(path, params)
                if resp.status >= 300:
                    raise BenchError(f"watch: HTTP {resp.status}")
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
                self.errors.append(str(exc)[:200])
                time.sleep(0.5)
                rv = self._relist(path)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=40)

    def duplicates(self) -> dict[str, int]:
        with self.lock:
            return {"/".join(k): len(v) for k, v in self.uids.items() if len(v) > 1}


def flows(api: Api, namespace: str) -> list[dict[str, Any]]:
    doc = retry(lambda: api.request("GET", FLOWS.format(ns=namespace)))
    return list(doc.get("items") or [])


def phases(api: Api, namespace: str) -> dict[str, str | None]:
    """Flow name -> phase."""
    return {
        f["metadata"]["name"]: (f.get("status") or {}).get("phase") for f in flows(api, namespace)
    }


def contexts(
    api: Api, namespace: str, names: set[str]
) -> tuple[dict[str, dict[str, Any] | str], dict[str, bool]]:
    """Final context per Flow in ``names`` (or why there is none) and whether its fallback
    node ran, from one list of Flows and one of the operator's ConfigMaps."""
    cms = retry(
        lambda: api.request(
            "GET", CONFIGMAPS.format(ns=namespace), params={"labelSelector": MANAGED}
        )
    )
    by_name = {cm["metadata"]["name"]: cm for cm in cms.get("items") or []}
    out: dict[str, dict[str, Any] | str] = {}
    fallback_ran: dict[str, bool] = {}
    for body in flows(api, namespace):
        name = body["metadata"]["name"]
        if name not in names:
            continue
        status = body.get("status") or {}
        fallback_ran[name] = ((status.get("nodes") or {}).get(FALLBACK) or {}).get(
            "phase"
        ) == "Succeeded"
        if status.get("phase") not in TERMINAL:
            out[name] = f"not terminal ({status.get('phase')})"
            continue
        try:
            out[name] = final_context(body, by_name)
        except Exception as exc:  # a missing output is a differing output
            out[name] = f"{type(exc).__name__}: {exc}"
    return out, fallback_ran


def started_attempts(api: Api, namespace: str) -> dict[tuple[str, str], int]:
    """(Flow UID, node) -> attempts its status says were started."""
    out: dict[tuple[str, str], int] = {}
    for body in flows(api, namespace):
        uid = str(body["metadata"]["uid"])
        for node, st in ((body.get("status") or {}).get("nodes") or {}).items():
            out[(uid, node)] = int((st or {}).get("attempts") or 0)
    return out


def unfinished_nodes(api: Api, namespace: str, names: list[str]) -> dict[str, Any]:
    """For each Flow in ``names``: its nodes not yet ended, each with its current attempt's
    Job status and pod count (why a Flow did not finish, in the run's own output)."""
    jobs = retry(lambda: api.request("GET", JOBS.format(ns=namespace))).get("items") or []
    pods = (
        retry(
            lambda: api.request("GET", PODS.format(ns=namespace), params={"labelSelector": MANAGED})
        ).get("items")
        or []
    )
    out: dict[str, Any] = {}
    for body in flows(api, namespace):
        name, uid = body["metadata"]["name"], body["metadata"]["uid"]
        if name not in names:
            continue
        running = {
            node: st.get("attempts")
            for node, st in ((body.get("status") or {}).get("nodes") or {}).items()
            if (st or {}).get("phase") == "Running"
        }
        for node, attempt in running.items():
            job = next(
                (
                    j
                    for j in jobs
                    if any(o.get("uid") == uid for o in j["metadata"].get("ownerReferences") or [])
                    and (j["metadata"].get("annotations") or {}).get(ANN_NODE) == node
                    and (j["metadata"].get("annotations") or {}).get(ANN_ATTEMPT) == str(attempt)
                ),
                None,
            )
            job_name = job["metadata"]["name"] if job else None
            out[f"{name}/{node}"] = {
                "attempt": attempt,
                "job": job_name,
                "job_status": (job or {}).get("status"),
                "pods": sum(
                    1
                    for p in pods
                    if (p["metadata"].get("labels") or {}).get("job-name") == job_name
                ),
            }
    return out


JOB_GONE = "was deleted while attempt"  # reconcile/lost.job_gone's message


def jobs_missing_at_restart(workdir: Path) -> list[str]:
    """The operators' log lines failing an attempt because its Job did not exist."""
    lines: list[str] = []
    for log in sorted(workdir.glob("operator-*.log")):
        lines += [line.strip() for line in log.read_text(errors="replace").splitlines()]
    return [line for line in lines if JOB_GONE in line]


def leader(api: Api, namespace: str) -> str | None:
    """The Lease holder's identity (op-<i>), or None when no one holds it."""
    try:
        lease = api.request("GET", LEASE.format(ns=namespace))
    except BenchError:
        return None
    return (lease.get("spec") or {}).get("holderIdentity") or None


def wait_terminal(api: Api, namespace: str, names: set[str], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        now = phases(api, namespace)
        if all(now.get(n) in TERMINAL for n in names):
            return True
        time.sleep(1)
    return False


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
    ok = ok and not result["outputs_differing"]
    print("chaos:", "OK" if ok else "FAILED", f"({args.out})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
