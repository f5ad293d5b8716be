"""What the cluster benchmarks stand on: a raw API client, watch recorders, the operator process.

Why not kubectl or the kubernetes client's models: the figures are milliseconds, so the bench
records *when it received* each watch event (wall clock, ``time.time()``) from a plain
streaming HTTP request and keeps only a few fields; deserializing thousands of objects into
client models on the same two cores would both slow the cluster down and blur the timings.

What is measured where:

- Job ADDED / Job Complete, pod scheduled / container running / container terminated, flow
  phase: the first receipt of a watch event showing it (ms resolution; every such event
  travels the same apiserver watch path, so the common delivery delay mostly cancels out in
  differences). The API's own timestamps (``creationTimestamp``, ``completionTime``,
  container ``startedAt``/``finishedAt``) have 1 s resolution and are kept as a cross-check.
- The operator's own latency: its per-sample DEBUG line ``dependency_to_create <seconds>``
  (raw samples, enabled for the reconcile logger only) and its Prometheus histogram.
- The operator's peak RSS (``VmHWM``) and CPU seconds (``utime + stime``) from ``/proc``, and
  the CPU seconds of every harness cluster process from its pidfile.

Everything this module starts (the operator, watch threads) it stops; the operator by pid.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import urllib3

ROOT = Path(__file__).resolve().parents[1]
CLUSTER_DIR = ROOT / ".cluster"
KWOK_KUBECONFIG = CLUSTER_DIR / "kwok.kubeconfig"
REAL_KUBECONFIG = CLUSTER_DIR / "kubeconfig"
CRD_FILE = ROOT / "crds" / "flow.yaml"
KUBECTL = CLUSTER_DIR / "bin" / "kubectl"

ANN_FLOW = "flowcraft.io/flow-name"
ANN_NODE = "flowcraft.io/node-id"
ANN_ITEM = "flowcraft.io/item"  # a batch item's Job (a Job per item)
ANN_ROUND_START = "flowcraft.io/round-start"  # a batch round's Indexed Job: item of index 0
INDEX_ANN = "batch.kubernetes.io/job-completion-index"
TERMINAL = ("Succeeded", "Failed")
CLK_TCK = os.sysconf("SC_CLK_TCK")

Obj = dict[str, Any]


class BenchError(RuntimeError):
    """A benchmark cannot run or did not finish; the message says what to do."""


def parse_ts(value: Any) -> float | None:
    """RFC 3339 from the API (``...Z``, optional fraction) -> epoch seconds."""
    if not isinstance(value, str) or not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


# ---------------------------------------------------------------------------- API


class Api:
    """Just enough of the Kubernetes REST API over urllib3, configured from a kubeconfig."""

    def __init__(self, kubeconfig: Path) -> None:
        from kubernetes import client, config  # noqa: PLC0415 - only to read the kubeconfig

        if not kubeconfig.is_file():
            raise BenchError(f"{kubeconfig} not found")
        cfg = client.Configuration()
        config.load_kube_config(config_file=str(kubeconfig), client_configuration=cfg)
        self.kubeconfig = kubeconfig
        self.host = str(cfg.host).rstrip("/")
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        token = (cfg.api_key or {}).get("authorization")
        if token:
            headers["Authorization"] = token
        self._headers = headers
        self._pool = urllib3.PoolManager(
            maxsize=16,
            cert_reqs="CERT_REQUIRED" if cfg.verify_ssl else "CERT_NONE",
            ca_certs=cfg.ssl_ca_cert,
            cert_file=cfg.cert_file,
            key_file=cfg.key_file,
            timeout=urllib3.Timeout(connect=5, read=60),
            retries=False,
        )

    def request(
        self, method: str, path: str, body: Any = None, params: dict[str, str] | None = None
    ) -> Any:
        url = self.host + path + ("?" + urllib.parse.urlencode(params) if params else "")
        data = json.dumps(body).encode() if body is not None else None
        resp = self._pool.request(method, url, body=data, headers=self._headers)
        if resp.status >= 300:
            raise BenchError(f"{method} {path}: HTTP {resp.status}: {resp.data[:300]!r}")
        return json.loads(resp.data) if resp.data else None

    def ready(self) -> bool:
        try:
            resp = self._pool.request("GET", self.host + "/readyz", headers=self._headers)
        except urllib3.exceptions.HTTPError:
            return False
        return resp.status == 200

    def stream(self, path: str, params: dict[str, str]) -> urllib3.BaseHTTPResponse:
        url = self.host + path + "?" + urllib.parse.urlencode(params)
        return self._pool.request(
            "GET",
            url,
            headers=self._headers,
            preload_content=False,
            timeout=urllib3.Timeout(connect=5, read=90),
        )

    # -- helpers ---------------------------------------------------------------------------

    def create_namespace(self, prefix: str) -> str:
        name = f"{prefix}-{int(time.time()) % 100000:05d}-{os.getpid() % 1000:03d}"
        self.request("POST", "/api/v1/namespaces", {"metadata": {"name": name}})
        return name

    def delete_namespace(self, name: str, wait: float = 120) -> bool:
        """Delete and wait (bounded) until it is gone; True when it went."""
        with contextlib.suppress(BenchError):
            self.request("DELETE", f"/api/v1/namespaces/{name}")
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            try:
                self.request("GET", f"/api/v1/namespaces/{name}")
            except BenchError as exc:
                if "HTTP 404" in str(exc):
                    return True
                raise
            time.sleep(1)
        return False

    def create_flows(self, namespace: str, flows: list[Obj], workers: int = 8) -> float:
        """POST every Flow (a small thread pool); returns the time the first POST was sent."""
        path = f"/apis/flowcraft.io/v1alpha1/namespaces/{namespace}/flows"
        began = time.time()
        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(lambda f: self.request("POST", path, f), flows))
        return began

    def list_items(self, path: str) -> tuple[list[Obj], str]:
        doc = self.request("GET", path)
        return list(doc.get("items") or []), str(doc["metadata"]["resourceVersion"])


def kubectl(kubeconfig: Path, *args: str, timeout: float = 120) -> str:
    binary = str(KUBECTL) if KUBECTL.exists() else "kubectl"
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    proc = subprocess.run(
        [binary, "--kubeconfig", str(kubeconfig), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )
    if proc.returncode != 0:
        raise BenchError(f"kubectl {' '.join(args)}: {proc.stderr.strip()}")
    return proc.stdout


def install_crd(kubeconfig: Path) -> None:
    kubectl(kubeconfig, "apply", "--server-side", "--force-conflicts", "-f", str(CRD_FILE))
    kubectl(kubeconfig, "wait", "--for=condition=Established", "crd/flows.flowcraft.io")


# ---------------------------------------------------------------------------- recording


@dataclass
class NodeTimes:
    """Receipt times (epoch s) of what the watches showed for one node's first attempt."""

    flow: str
    node: str
    job: str = ""
    job_added: float | None = None
    job_complete: float | None = None
    pod_added: float | None = None
    pod_scheduled: float | None = None
    pod_running: float | None = None
    pod_terminated: float | None = None
    # The API's own timestamps (1 s resolution).
    api_created: float | None = None
    api_completion: float | None = None
    api_started: float | None = None
    api_finished: float | None = None


@dataclass
class FlowTimes:
    name: str
    phase: str | None = None
    ended: float | None = None  # receipt of the terminal phase
    started_at: float | None = None  # status.startedAt (µs resolution, operator's clock)
    finished_at: float | None = None


@dataclass
class Recorder:
    """Fed by the watch threads; read after they stopped (or for progress)."""

    nodes: dict[tuple[str, str], NodeTimes] = field(default_factory=dict)
    flows: dict[str, FlowTimes] = field(default_factory=dict)
    events: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    jobs_added: set[str] = field(default_factory=set)  # every Job name seen
    pods_added: set[str] = field(default_factory=set)
    # Size of the Flows' .status as JSON (bytes): the largest seen and the last one.
    status_bytes_max: int = 0
    status_bytes_last: int = 0

    def _node(self, obj: Obj) -> NodeTimes | None:
        """The times of a node, or of a batch item ("<scatter>#<item>")."""
        ann = (obj.get("metadata") or {}).get("annotations") or {}
        flow, node = ann.get(ANN_FLOW), ann.get(ANN_NODE)
        if not isinstance(flow, str) or not isinstance(node, str):
            return None
        item = ann.get(ANN_ITEM)
        if isinstance(ann.get(ANN_ROUND_START), str):
            index = ann.get(INDEX_ANN)
            if not isinstance(index, str):
                return None  # the Indexed Job itself: its pods are the items
            item = str(int(ann[ANN_ROUND_START]) + int(index))
        if isinstance(item, str):
            node = f"{node}#{item}"
        key = (flow, node)
        times = self.nodes.get(key)
        if times is None:
            times = self.nodes[key] = NodeTimes(flow, node)
        return times

    def job(self, kind: str, obj: Obj, now: float) -> None:
        if kind == "ADDED":
            self.jobs_added.add(str((obj.get("metadata") or {}).get("name")))
        times = self._node(obj)
        if times is None or kind == "DELETED":
            return
        meta, status = obj.get("metadata") or {}, obj.get("status") or {}
        if times.job_added is None:
            times.job_added = now
            times.job = str(meta.get("name"))
            times.api_created = parse_ts(meta.get("creationTimestamp"))
        if times.job_complete is None and any(
            c.get("type") == "Complete" and c.get("status") == "True"
            for c in status.get("conditions") or []
        ):
            times.job_complete = now
            times.api_completion = parse_ts(status.get("completionTime"))

    def pod(self, kind: str, obj: Obj, now: float) -> None:
        if kind == "ADDED":
            self.pods_added.add(str((obj.get("metadata") or {}).get("name")))
        times = self._node(obj)
        if times is None or kind == "DELETED":
            return
        spec, status = obj.get("spec") or {}, obj.get("status") or {}
        if times.pod_added is None:
            times.pod_added = now
        if times.pod_scheduled is None and spec.get("nodeName"):
            times.pod_scheduled = now
        for cs in status.get("containerStatuses") or []:
            state = cs.get("state") or {}
            if times.pod_running is None and ("running" in state or "terminated" in state):
                times.pod_running = now
                started = (state.get("running") or state.get("terminated") or {}).get("startedAt")
                times.api_started = parse_ts(started)
            if times.pod_terminated is None and "terminated" in state:
                times.pod_terminated = now
                times.api_finished = parse_ts(state["terminated"].get("finishedAt"))
        if times.pod_terminated is None and status.get("phase") in TERMINAL:
            times.pod_terminated = now

    def flow(self, kind: str, obj: Obj, now: float) -> None:
        name = str((obj.get("metadata") or {}).get("name"))
        times = self.flows.setdefault(name, FlowTimes(name))
        status = obj.get("status") or {}
        if kind != "DELETED" and not name.startswith("warmup"):
            size = len(json.dumps(status, separators=(",", ":")))
            self.status_bytes_last = size
            self.status_bytes_max = max(self.status_bytes_max, size)
        times.phase = status.get("phase") if kind != "DELETED" else "Deleted"
        if times.ended is None and times.phase in TERMINAL:
            times.ended = now
            times.started_at = parse_ts(status.get("startedAt"))
            times.finished_at = parse_ts(status.get("finishedAt"))

    def terminal_flows(self) -> int:
        return sum(1 for f in list(self.flows.values()) if f.ended is not None)


class _Relisted(Exception):
    """The watch restarts from a fresh list (its resourceVersion expired)."""


class Watches:
    """Watch threads feeding a recorder: by default Jobs, pods and Flows of one namespace into
    a :class:`Recorder`; ``streams`` (collection path -> handler) watches other collections."""

    def __init__(
        self,
        api: Api,
        namespace: str,
        recorder: Any,
        streams: dict[str, Any] | None = None,
    ) -> None:
        self.api, self.namespace, self.recorder = api, namespace, recorder
        self.streams = streams
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._responses: list[urllib3.BaseHTTPResponse] = []
        self.errors: list[str] = []

    def start(self) -> None:
        ns = self.namespace
        streams = self.streams or {
            f"/apis/batch/v1/namespaces/{ns}/jobs": self.recorder.job,
            f"/api/v1/namespaces/{ns}/pods": self.recorder.pod,
            f"/apis/flowcraft.io/v1alpha1/namespaces/{ns}/flows": self.recorder.flow,
        }
        for path, handler in streams.items():
            _, rv = self.api.list_items(path + "?limit=1")
            thread = threading.Thread(
                target=self._run, args=(path, rv, handler), daemon=True, name=f"watch {path}"
            )
            thread.start()
            self._threads.append(thread)

    def _run(self, path: str, rv: str, handler: Any) -> None:
        while not self._stop.is_set():
            params = {"watch": "1", "resourceVersion": rv, "timeoutSeconds": "60"}
            params["allowWatchBookmarks"] = "true"
            try:
                resp = self.api.stream(path, params)
                self._responses.append(resp)
                buf = b""
                for chunk in resp.read_chunked():
                    now = time.time()
                    buf += chunk
                    while b"\n" in buf:
                        line, buf = buf.split(b"\n", 1)
                        if not line.strip():
                            continue
                        event = json.loads(line)
                        kind, obj = event.get("type"), event.get("object") or {}
                        if kind == "ERROR" and obj.get("code") == 410:
                            # Our resourceVersion left the watch cache (long runs): list
                            # again, feed what the list shows, watch on from there.
                            listed, rv = self.api.list_items(path)
                            with self.recorder.lock:
                                for item in listed:
                                    handler("MODIFIED", item, time.time())
                            raise _Relisted
                        if kind == "ERROR":
                            raise BenchError(f"watch {path}: {obj.get('message')}")
                        rv = str((obj.get("metadata") or {}).get("resourceVersion") or rv)
                        if kind != "BOOKMARK":
                            with self.recorder.lock:
                                self.recorder.events += 1
                                handler(kind, obj, now)
                    if self._stop.is_set():
                        break
                resp.release_conn()
            except _Relisted:
                continue
            except (urllib3.exceptions.HTTPError, BenchError, OSError) as exc:
                if self._stop.is_set():
                    return
                self.errors.append(f"{path}: {exc}")
                time.sleep(0.2)

    def stop(self) -> None:
        self._stop.set()
        for resp in self._responses:
            with contextlib.suppress(Exception):
                resp.shutdown()  # type: ignore[attr-defined]
        for thread in self._threads:
            thread.join(timeout=5)


# ---------------------------------------------------------------------------- processes


def proc_cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` (its threads included), seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def proc_status_kib(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise BenchError(f"{key} not in /proc/{pid}/status")


def cluster_pids(kubeconfig: Path) -> dict[str, int]:
    """Harness cluster processes (by their pidfiles) of the instance ``kubeconfig`` belongs to."""
    pid_dir = (CLUSTER_DIR / "kwok" if kubeconfig == KWOK_KUBECONFIG else CLUSTER_DIR) / "pids"
    out: dict[str, int] = {}
    for pidfile in sorted(pid_dir.glob("*.pid")) if pid_dir.is_dir() else []:
        with contextlib.suppress(ValueError, OSError):
            pid = int(pidfile.read_text().strip())
            if Path(f"/proc/{pid}").exists():
                out[pidfile.stem] = pid
    return out


def cpu_snapshot(pids: dict[str, int]) -> dict[str, float]:
    out: dict[str, float] = {}
    for name, pid in pids.items():
        with contextlib.suppress(OSError, BenchError):
            out[name] = proc_cpu_seconds(pid)
    return out


def job_controller_queue(kubeconfig: Path) -> dict[str, float]:
    """The kube-controller-manager's Job workqueue counters (wait and work time), or {}.

    Read from its /metrics with the harness admin certificate: whether Jobs wait in the Job
    controller's queue (default 5 workers) is what decides the cluster's Job throughput here.
    """
    kwok = kubeconfig == KWOK_KUBECONFIG
    pki = (CLUSTER_DIR / "kwok" if kwok else CLUSTER_DIR) / "pki"
    if not (pki / "admin.crt").exists():
        return {}
    http = urllib3.PoolManager(
        cert_reqs="CERT_NONE", cert_file=str(pki / "admin.crt"), key_file=str(pki / "admin.key")
    )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            resp = http.request(
                "GET", f"https://127.0.0.1:{10357 if kwok else 10257}/metrics", timeout=5
            )
    except urllib3.exceptions.HTTPError:
        return {}
    out: dict[str, float] = {}
    for line in resp.data.decode(errors="replace").splitlines():
        for metric in (
            "workqueue_queue_duration_seconds_sum",
            "workqueue_queue_duration_seconds_count",
            "workqueue_work_duration_seconds_sum",
        ):
            if line.startswith(metric + '{name="job"}'):
                out[metric] = float(line.rsplit(" ", 1)[1])
    return out


# (verb, resource, subresource) of the requests on the operator's hot path.
HOT_REQUESTS = (
    ("POST", "configmaps", ""),  # a node's output, before its dependents' Jobs
    ("POST", "jobs", ""),  # a node's Job
    ("PUT", "flows", "status"),  # the Flow's status after a pass
    ("GET", "configmaps", ""),  # an output read back (after a restart, or AlreadyExists)
    ("GET", "flows", ""),  # the Flow read afresh (no copy from our own write)
)
_REQUEST_SERIES = re.compile(r"^apiserver_request_duration_seconds_(sum|count)\{([^}]*)\} (\S+)$")


def apiserver_request_seconds(kubeconfig: Path) -> dict[str, float]:
    """The API server's own time for the hot-path requests (``apiserver_request_duration_
    seconds`` sum and count per ``VERB resource[/sub]``), or {}: how long a request takes in
    the server, apart from the client's and the network's share."""
    kwok = kubeconfig == KWOK_KUBECONFIG
    pki = (CLUSTER_DIR / "kwok" if kwok else CLUSTER_DIR) / "pki"
    if not (pki / "admin.crt").exists():
        return {}
    host = "127.0.0.1:16444" if kwok else "10.244.0.1:16443"
    http = urllib3.PoolManager(
        cert_reqs="CERT_NONE", cert_file=str(pki / "admin.crt"), key_file=str(pki / "admin.key")
    )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            resp = http.request("GET", f"https://{host}/metrics", timeout=10)
    except urllib3.exceptions.HTTPError:
        return {}
    wanted = {(f'"{v}"', f'"{r}"', f'"{sub}"') for v, r, sub in HOT_REQUESTS}
    out: dict[str, float] = {}
    for line in resp.data.decode(errors="replace").splitlines():
        if not line.startswith("apiserver_request_duration_seconds_"):
            continue
        match = _REQUEST_SERIES.match(line)
        if match is None:
            continue
        labels = dict(part.split("=", 1) for part in match[2].split(",") if "=" in part)
        verb, resource, sub = (labels.get(k, "") for k in ("verb", "resource", "subresource"))
        if (verb, resource, sub) not in wanted:
            continue
        verb, resource, sub = (v.strip('"') for v in (verb, resource, sub))
        key = f"{verb} {resource}{'/' + sub if sub else ''}"
        out[f"{key} {match[1]}"] = out.get(f"{key} {match[1]}", 0.0) + float(match[3])
    return out


def request_means_ms(after: dict[str, float], before: dict[str, float]) -> dict[str, Any]:
    """Per hot-path request: count and mean server time (ms) between two snapshots."""
    out: dict[str, Any] = {}
    for verb, resource, sub in HOT_REQUESTS:
        key = f"{verb} {resource}{'/' + sub if sub else ''}"
        n = after.get(f"{key} count", 0.0) - before.get(f"{key} count", 0.0)
        total = after.get(f"{key} sum", 0.0) - before.get(f"{key} sum", 0.0)
        if n > 0:
            out[key] = {"n": int(n), "mean_ms": round(total / n * 1000, 1)}
    return out


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# The reconcile logger alone at DEBUG: one line per latency sample, no kopf chatter.
# $BENCH_OPERATOR_PRELUDE (a Python file) runs first when set: for experiments (instrumenting
# or patching the operator in the bench only), never used by the make targets.
_OPERATOR_CODE = (
    "import logging, os, sys; "
    "logging.getLogger('flowcraft.drivers.kubernetes.reconcile').setLevel(logging.DEBUG); "
    "p = os.environ.get('BENCH_OPERATOR_PRELUDE'); "
    "p and exec(compile(open(p).read(), p, 'exec')); "
    "from flowcraft.drivers.kubernetes.__main__ import main; sys.exit(main())"
)
_SAMPLE = re.compile(
    r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) DEBUG \S+: dependency_to_create ([0-9.]+) (\S+)"
)
_CREATED = re.compile(
    r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) INFO \S+: ([^/\s]+)/(\S+): node (\S+) attempt"
)


def _log_time(text: str) -> float:
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S,%f").timestamp()


@dataclass(frozen=True)
class Sample:
    logged: float  # epoch s (ms resolution) of the log line, right before the create request
    seconds: float  # dependency success seen -> create request sent
    node: str


class Operator:
    """The operator as a subprocess watching given namespaces; everything about it by pid."""

    def __init__(
        self,
        kubeconfig: Path,
        namespaces: list[str],
        log_path: Path,
        extra_args: list[str] | None = None,
    ) -> None:
        self.kubeconfig = kubeconfig
        self.namespaces = namespaces
        self.log_path = log_path
        self.extra_args = list(extra_args or [])
        self.metrics_port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        args = [sys.executable, "-c", _OPERATOR_CODE, "--kubeconfig", str(self.kubeconfig)]
        for ns in self.namespaces:
            args += ["--namespace", ns]
        args += ["--metrics-port", str(self.metrics_port), *self.extra_args]
        env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
        env["PYTHONPATH"] = str(ROOT / "operator") + os.pathsep + env.get("PYTHONPATH", "")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                args, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )

    @property
    def pid(self) -> int:
        if self.proc is None:
            raise BenchError("operator not started")
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        if not self.alive() or self.proc is None:
            return
        os.kill(self.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.kill(self.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def peak_rss_mib(self) -> float:
        return proc_status_kib(self.pid, "VmHWM") / 1024

    def rss_mib(self) -> float:
        return proc_status_kib(self.pid, "VmRSS") / 1024

    def cpu_seconds(self) -> float:
        return proc_cpu_seconds(self.pid)

    def metrics(self) -> str:
        http = urllib3.PoolManager(retries=False, timeout=5)
        resp = http.request("GET", f"http://127.0.0.1:{self.metrics_port}/metrics")
        return resp.data.decode()

    def histogram(self) -> dict[str, float]:
        """Buckets (le -> cumulative count), ``count`` and ``sum`` of the latency histogram."""
        out: dict[str, float] = {}
        for line in self.metrics().splitlines():
            if not line.startswith("flowcraft_node_schedule_latency_seconds") or (
                'stage="dependency_to_create"' not in line
            ):
                continue
            name, _, value = line.rpartition(" ")
            if "_bucket{" in name:
                le = re.search(r'le="([^"]+)"', name)
                if le:
                    out[le.group(1)] = float(value)
            elif name.startswith("flowcraft_node_schedule_latency_seconds_count"):
                out["count"] = float(value)
            elif name.startswith("flowcraft_node_schedule_latency_seconds_sum"):
                out["sum"] = float(value)
        return out

    def log_lines(self) -> Iterator[str]:
        if self.log_path.exists():
            yield from self.log_path.read_text(errors="replace").splitlines()

    def samples(self) -> list[Sample]:
        out = []
        for line in self.log_lines():
            match = _SAMPLE.match(line)
            if match:
                out.append(Sample(_log_time(match[1]), float(match[2]), match[3]))
        return out

    def created_lines(self) -> dict[tuple[str, str], float]:
        """(flow, node) -> log time of the operator's "node X -> Job" line (after the create)."""
        out: dict[tuple[str, str], float] = {}
        for line in self.log_lines():
            match = _CREATED.match(line)
            if match:
                out.setdefault((match[3], match[4]), _log_time(match[1]))
        return out

    def errors(self) -> list[str]:
        return [line for line in self.log_lines() if " ERROR " in line or "Traceback" in line]

    def wait_ready(self, api: Api, namespace: str, timeout: float = 60) -> None:
        """Run a one-node flow through it: the watches are up and the code paths are warm."""
        from kube_flows import chain  # noqa: PLC0415

        deadline = time.monotonic() + timeout
        while not self.metrics_port_open():
            if not self.alive():
                raise BenchError(f"the operator exited; see {self.log_path}")
            if time.monotonic() > deadline:
                raise BenchError(f"operator /metrics not up after {timeout}s; see {self.log_path}")
            time.sleep(0.2)
        api.request(
            "POST", f"/apis/flowcraft.io/v1alpha1/namespaces/{namespace}/flows", chain("warmup", 2)
        )
        while time.monotonic() < deadline:
            if not self.alive():
                raise BenchError(f"the operator exited; see {self.log_path}")
            flow = api.request(
                "GET", f"/apis/flowcraft.io/v1alpha1/namespaces/{namespace}/flows/warmup"
            )
            phase = (flow.get("status") or {}).get("phase")
            if phase == "Succeeded":
                return
            if phase == "Failed":
                raise BenchError(f"warm-up flow failed: {flow['status'].get('message')}")
            time.sleep(0.2)
        raise BenchError(f"warm-up flow did not finish in {timeout}s; see {self.log_path}")

    def metrics_port_open(self) -> bool:
        with socket.socket() as sock:
            sock.settimeout(0.5)
            return sock.connect_ex(("127.0.0.1", self.metrics_port)) == 0
