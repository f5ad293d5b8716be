"""What a chaos run reads back from the cluster: the ledger of every Job the namespace ever had
(from a watch that outlives API-server restarts), the Flows' phases and final contexts, the
attempts their statuses count, the Jobs of unfinished Flows, the Lease holder, and the
operator log lines that tell of a running attempt's missing Job.

Why a module of its own: bench/chaos.py drives the chaos (operators killed, the API server
crashed, pods deleted) and decides; this is the observation side it relies on, and every read
here retries while the API server is down (:func:`retry`).
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from kube_harness import ROOT, Api, BenchError

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
