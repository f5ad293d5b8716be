"""Cluster benchmarks of the operator: transition latency, throughput, memory, real pods.

Why: the operator aims at tens of milliseconds from "dependency succeeded" to "next Job create
sent" and an event-driven hot path; this measures it on a real kube-apiserver instead of
assuming it. kwok scenarios (fake nodes, Job pods reach Succeeded with no container) isolate
the operator + control plane; the real-pod scenario adds the kubelet and containers.

Scenarios (each gets a fresh namespace and a fresh operator process watching only it):

- ``latency``: 50 concurrent flows of a 20-node mix (chains and diamonds, kube_flows.MIX_20).
  (a) operator: its own ``dependency_to_create`` samples (raw, from its DEBUG line; the
  histogram's count/sum cross-check them); (b) end to end: bench receipt of the last
  dependency's pod-terminated watch event -> bench receipt of the dependent Job's ADDED event.
- ``throughput``: N concurrent flows x 10 nodes (kube_flows.MIX_10); node-Jobs per minute over
  the middle 80 % of Job creations (sustained) and over all of them.
- ``fanout``: one 1 -> 1000 -> 1 flow; wall time from the create request to status.finishedAt.
- ``scale`` (full only): 1000 concurrent 5-node chains: peak RSS with 1000 active flows.
- ``pods`` (real cluster): examples/parallel.yaml five times, one at a time; wall time / 2.0 s
  and where the time goes along the critical path start-parallel -> task-1 -> gather.

Every scenario also records the operator's peak RSS (VmHWM) and CPU seconds, the CPU seconds
of each cluster process (apiserver, etcd, kwok...) and ``uptime`` load, to show what limited it.

Usage: ``python bench/kube_bench.py --preset quick|full [--only latency,fanout,...]
[--out bench/results/latest.json] [--profile]``. Needs ``make cluster-kwok`` (and ``make
cluster`` + the runner image for ``pods``); bench/bench.mk brings them up.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

import kube_flows
from kube_harness import (
    KWOK_KUBECONFIG,
    REAL_KUBECONFIG,
    ROOT,
    Api,
    BenchError,
    NodeTimes,
    Operator,
    Recorder,
    Sample,
    Watches,
    apiserver_request_seconds,
    cluster_pids,
    cpu_snapshot,
    install_crd,
    job_controller_queue,
    request_means_ms,
)

RESULTS = ROOT / "bench" / "results"
WORK = ROOT / "build" / "bench"
CRITICAL_PATH_SECONDS = 2.0

Obj = dict[str, Any]


def pct(values: Sequence[float], q: float) -> float | None:
    """Linear-interpolated percentile (q in 0..100) of raw samples; None when empty."""
    if not values:
        return None
    data = sorted(values)
    pos = (len(data) - 1) * q / 100
    lo = int(pos)
    hi = min(lo + 1, len(data) - 1)
    return data[lo] + (data[hi] - data[lo]) * (pos - lo)


def summary_ms(seconds: Sequence[float]) -> dict[str, Any]:
    ms = [s * 1000 for s in seconds]
    out: dict[str, Any] = {"n": len(ms)}
    for q in (50, 95, 99):
        value = pct(ms, q)
        out[f"p{q}"] = None if value is None else round(value, 1)
    out["max"] = round(max(ms), 1) if ms else None
    return out


def bucket_quantile(hist: dict[str, float], q: float) -> float | None:
    """Prometheus-style histogram_quantile over cumulative buckets (for comparison only)."""
    bounds = sorted((float(le), n) for le, n in hist.items() if le not in ("count", "sum"))
    total = hist.get("count", 0)
    if not total:
        return None
    rank, prev_bound, prev_count = q * total, 0.0, 0.0
    for bound, count in bounds:
        if count >= rank:
            if bound == float("inf"):
                return prev_bound
            span = count - prev_count
            return prev_bound + (bound - prev_bound) * ((rank - prev_count) / span if span else 0)
        prev_bound, prev_count = bound, count
    return None


def hist_delta(after: dict[str, float], before: dict[str, float]) -> dict[str, float]:
    return {k: v - before.get(k, 0.0) for k, v in after.items()}


def load_avg() -> list[float]:
    return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]


# ---------------------------------------------------------------------------- one scenario


@dataclass
class Outcome:
    """Everything one scenario observed; ``figures`` is what goes into the JSON."""

    figures: dict[str, Any]
    recorder: Recorder
    flows: list[Obj]
    samples: list[Sample]
    submitted: float
    submits: dict[str, float]
    operator_created: dict[tuple[str, str], float]


def run_flows(
    api: Api,
    name: str,
    flows: list[Obj],
    *,
    timeout: float,
    profile: bool = False,
    sequential: bool = False,
    until_active: bool = False,
    operator_args: list[str] | None = None,
) -> Outcome:
    """Fresh namespace + operator; submit ``flows``; wait for them all to end; measure."""
    kubeconfig = api.kubeconfig
    pids = cluster_pids(kubeconfig)
    ns = api.create_namespace(f"bench-{name}")
    work = WORK / ns
    operator = Operator(kubeconfig, [ns], work / "operator.log", operator_args)
    watches: Watches | None = None
    spy: subprocess.Popen[bytes] | None = None
    try:
        operator.start()
        operator.wait_ready(api, ns, timeout=120)
        samples_before = len(operator.samples())
        hist_before = operator.histogram()
        op_cpu_before = operator.cpu_seconds()
        cluster_before = cpu_snapshot(pids)
        load_before = load_avg()
        queue_before = job_controller_queue(kubeconfig)
        requests_before = apiserver_request_seconds(kubeconfig)
        recorder = Recorder()
        watches = Watches(api, ns, recorder)
        watches.start()
        if profile:
            spy = start_profile(operator.pid, work / "profile")
        names = {f["metadata"]["name"] for f in flows}
        began = time.monotonic()
        submits: dict[str, float] = {}
        if sequential:
            for flow in flows:
                submits[flow["metadata"]["name"]] = api.create_flows(ns, [flow])
                wait_flows(recorder, {flow["metadata"]["name"]}, timeout, operator, name)
            submitted = min(submits.values())
        elif until_active:
            # Every flow has its first Job (all are active at once); hold for a while, then
            # measure without waiting for them to finish.
            submitted = api.create_flows(ns, flows)
            submits = dict.fromkeys(names, submitted)
            wait_active(recorder, names, timeout, operator, name)
            time.sleep(10)
        else:
            submitted = api.create_flows(ns, flows)
            submits = dict.fromkeys(names, submitted)
            wait_flows(recorder, names, timeout, operator, name)
        elapsed = time.monotonic() - began
        time.sleep(0.5)  # the last Job/pod events
        watches.stop()
        if spy is not None:
            stop_profile(spy)
            spy = None
        op_cpu = operator.cpu_seconds() - op_cpu_before
        cluster_after = cpu_snapshot(pids)
        figures: dict[str, Any] = {
            "namespace": ns,
            "flows": len(flows),
            "nodes": sum(len(f["spec"]["nodes"]) for f in flows),
            "elapsed_s": round(elapsed, 2),
            "operator_peak_rss_mib": round(operator.peak_rss_mib(), 1),
            "operator_cpu_s": round(op_cpu, 2),
            "operator_cpu_share": round(op_cpu / elapsed, 2) if elapsed else None,
            "cluster_cpu_s": {
                k: round(cluster_after[k] - v, 2)
                for k, v in cluster_before.items()
                if k in cluster_after
            },
            "loadavg_before": load_before,
            "loadavg_after": load_avg(),
            "job_controller": job_queue_delta(job_controller_queue(kubeconfig), queue_before),
            "apiserver_request_ms": request_means_ms(
                apiserver_request_seconds(kubeconfig), requests_before
            ),
            "watch_errors": watches.errors[:5],
            "operator_errors": operator.errors()[:5],
        }
        samples = operator.samples()[samples_before:]
        hist = hist_delta(operator.histogram(), hist_before)
        figures["histogram"] = {
            "count": int(hist.get("count", 0)),
            "mean_ms": round(hist["sum"] / hist["count"] * 1000, 2) if hist.get("count") else None,
            "bucket_p50_ms": _ms(bucket_quantile(hist, 0.5)),
            "bucket_p99_ms": _ms(bucket_quantile(hist, 0.99)),
        }
        phases = [recorder.flows[n].phase for n in names if n in recorder.flows]
        figures["flows_succeeded"] = sum(1 for p in phases if p == "Succeeded")
        figures["jobs_created"] = len(recorder.jobs_added)
        figures["pods_created"] = len(recorder.pods_added)
        figures["status_bytes_max"] = recorder.status_bytes_max
        figures["status_bytes_final"] = recorder.status_bytes_last
        outcome = Outcome(
            figures, recorder, flows, samples, submitted, submits, operator.created_lines()
        )
        figures["stages_ms"] = stages(outcome)
        dump_nodes(outcome)
        return outcome
    finally:
        if spy is not None:
            stop_profile(spy)
        if watches is not None:
            watches.stop()
        operator.stop()
        if not api.delete_namespace(ns, wait=300):
            print(f"  (namespace {ns} still terminating)", file=sys.stderr)


def job_queue_delta(after: dict[str, float], before: dict[str, float]) -> dict[str, Any]:
    d = hist_delta(after, before)
    syncs = d.get("workqueue_queue_duration_seconds_count", 0)
    if not syncs:
        return {}
    return {
        "syncs": int(syncs),
        "mean_queue_wait_ms": round(d["workqueue_queue_duration_seconds_sum"] / syncs * 1000, 1),
        "mean_sync_ms": round(d.get("workqueue_work_duration_seconds_sum", 0) / syncs * 1000, 1),
    }


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)


def wait_flows(
    recorder: Recorder, names: set[str], timeout: float, operator: Operator, what: str
) -> None:
    deadline = time.monotonic() + timeout
    last_print = time.monotonic()
    while True:
        done = sum(1 for n in names if (f := recorder.flows.get(n)) and f.ended is not None)
        if done == len(names):
            return
        if not operator.alive():
            raise BenchError(f"{what}: the operator exited; see {operator.log_path}")
        now = time.monotonic()
        if now > deadline:
            raise BenchError(
                f"{what}: {len(names) - done} of {len(names)} flows not finished after "
                f"{timeout:.0f}s; see {operator.log_path}"
            )
        if now - last_print > 10:
            jobs = sum(1 for t in list(recorder.nodes.values()) if t.job_added)
            print(f"  ... {done}/{len(names)} flows done, {jobs} Jobs", flush=True)
            last_print = now
        time.sleep(0.1)


def wait_active(
    recorder: Recorder, names: set[str], timeout: float, operator: Operator, what: str
) -> None:
    deadline = time.monotonic() + timeout
    while True:
        started = {f for (f, _), t in list(recorder.nodes.items()) if t.job_added}
        active = len(names & started)
        if active == len(names):
            return
        if not operator.alive():
            raise BenchError(f"{what}: the operator exited; see {operator.log_path}")
        if time.monotonic() > deadline:
            raise BenchError(f"{what}: only {active} of {len(names)} flows started")
        time.sleep(0.5)


def start_profile(pid: int, out: Path) -> subprocess.Popen[bytes] | None:
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(spy).exists():
        print("  (py-spy not installed: no profile; pip install py-spy)", file=sys.stderr)
        return None
    out.parent.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(
        [spy, "record", "--pid", str(pid), "--rate", "100", "--format", "raw", "-o", f"{out}.txt"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def stop_profile(spy: subprocess.Popen[bytes]) -> None:
    if spy.poll() is None:
        spy.send_signal(2)  # SIGINT: py-spy writes its output and exits
        try:
            spy.wait(timeout=30)
        except subprocess.TimeoutExpired:
            spy.kill()
            spy.wait(timeout=5)


# ---------------------------------------------------------------------------- analysis


def transitions(outcome: Outcome) -> dict[str, list[float]]:
    """Per dependent node: seconds from its last dependency finishing to its Job appearing."""
    nodes = outcome.recorder.nodes
    e2e: list[float] = []
    from_job_complete: list[float] = []
    api_seconds: list[float] = []
    for flow in outcome.flows:
        fname = flow["metadata"]["name"]
        for node, preds in kube_flows.predecessors(flow).items():
            if not preds:
                continue
            me = nodes.get((fname, node))
            deps = [nodes.get((fname, p)) for p in preds]
            if me is None or me.job_added is None or any(d is None for d in deps):
                continue
            done = [d for d in deps if d is not None]
            terminated = [d.pod_terminated for d in done]
            if all(t is not None for t in terminated):
                e2e.append(me.job_added - max(t for t in terminated if t is not None))
            complete = [d.job_complete for d in done]
            if all(t is not None for t in complete):
                from_job_complete.append(me.job_added - max(t for t in complete if t is not None))
            api = [d.api_completion for d in done]
            if me.api_created is not None and all(t is not None for t in api):
                api_seconds.append(me.api_created - max(t for t in api if t is not None))
    return {"e2e": e2e, "from_job_complete": from_job_complete, "api": api_seconds}


def stages(outcome: Outcome) -> dict[str, Any]:
    """Median ms per stage of a node's life (who is slow: Job controller, scheduler, kwok)."""
    parts: dict[str, list[float]] = {}
    for t in outcome.recorder.nodes.values():
        for key, a, b in (
            ("job_added_to_pod_added", t.job_added, t.pod_added),
            ("pod_added_to_scheduled", t.pod_added, t.pod_scheduled),
            ("pod_scheduled_to_running", t.pod_scheduled, t.pod_running),
            ("pod_running_to_terminated", t.pod_running, t.pod_terminated),
            ("pod_terminated_to_job_complete", t.pod_terminated, t.job_complete),
        ):
            if a is not None and b is not None:
                parts.setdefault(key, []).append(b - a)
    return {k: summary_ms(v) for k, v in parts.items()}


def dump_nodes(outcome: Outcome) -> None:
    """Raw per-node receipt times next to the operator log, for later analysis."""
    path = WORK / outcome.figures["namespace"] / "nodes.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = [vars(t) for t in outcome.recorder.nodes.values()]
    path.write_text(json.dumps({"submitted": outcome.submits, "nodes": rows}))


def job_rate(outcome: Outcome) -> dict[str, Any]:
    added = sorted(t.job_added for t in outcome.recorder.nodes.values() if t.job_added)
    if len(added) < 10:
        return {"jobs": len(added)}
    lo, hi = int(len(added) * 0.1), int(len(added) * 0.9)
    window = added[hi] - added[lo]
    total = added[-1] - added[0]
    return {
        "jobs": len(added),
        "node_jobs_per_min": round((hi - lo) / window * 60) if window > 0 else None,
        "node_jobs_per_min_overall": round((len(added) - 1) / total * 60) if total > 0 else None,
        "first_to_last_job_s": round(total, 2),
    }


def flow_walls(outcome: Outcome) -> list[float]:
    out = []
    for flow in outcome.flows:
        times = outcome.recorder.flows.get(flow["metadata"]["name"])
        if times is None:
            continue
        end = times.finished_at or times.ended
        if end is not None:
            out.append(end - outcome.submits[times.name])
    return out


# ---------------------------------------------------------------------------- scenarios


def scenario_latency(api: Api, preset: str, profile: bool) -> dict[str, Any]:
    flows = [kube_flows.layered(f"lat-{i:03d}", kube_flows.MIX_20) for i in range(50)]
    outcome = run_flows(api, "latency", flows, timeout=600, profile=profile)
    trans = transitions(outcome)
    fig = outcome.figures
    fig["operator_transition_ms"] = summary_ms([s.seconds for s in outcome.samples])
    fig["e2e_transition_ms"] = summary_ms(trans["e2e"])
    fig["job_complete_to_next_created_ms"] = summary_ms(trans["from_job_complete"])
    fig["api_completion_to_creation_s"] = {
        "n": len(trans["api"]),
        "p50": pct(trans["api"], 50),
        "p99": pct(trans["api"], 99),
    }
    fig.update(job_rate(outcome))
    walls = flow_walls(outcome)
    fig["flow_wall_s"] = {"p50": round(pct(walls, 50) or 0, 2), "max": round(max(walls), 2)}
    return fig


def scenario_single(api: Api, preset: str, profile: bool) -> dict[str, Any]:
    """The floor: one 20-node mix flow alone (no concurrency), same measurements."""
    flows = [kube_flows.layered("solo", kube_flows.MIX_20)]
    outcome = run_flows(api, "single", flows, timeout=300, profile=profile)
    trans = transitions(outcome)
    fig = outcome.figures
    fig["operator_transition_ms"] = summary_ms([s.seconds for s in outcome.samples])
    fig["e2e_transition_ms"] = summary_ms(trans["e2e"])
    walls = flow_walls(outcome)
    fig["wall_s"] = round(walls[0], 2) if walls else None
    return fig


def scenario_throughput(api: Api, preset: str, profile: bool) -> dict[str, Any]:
    count = 200 if preset == "full" else 60
    flows = [kube_flows.layered(f"tp-{i:03d}", kube_flows.MIX_10) for i in range(count)]
    outcome = run_flows(api, "throughput", flows, timeout=900, profile=profile)
    fig = outcome.figures
    fig.update(job_rate(outcome))
    walls = flow_walls(outcome)
    fig["all_flows_wall_s"] = round(max(walls), 2) if walls else None
    fig["operator_transition_ms"] = summary_ms([s.seconds for s in outcome.samples])
    fig["e2e_transition_ms"] = summary_ms(transitions(outcome)["e2e"])
    return fig


def scenario_fanout(api: Api, preset: str, profile: bool) -> dict[str, Any]:
    flows = [kube_flows.fan("fan-1000", 1000)]
    outcome = run_flows(api, "fanout", flows, timeout=600, profile=profile)
    fig = outcome.figures
    walls = flow_walls(outcome)
    fig["wall_s"] = round(walls[0], 2) if walls else None
    fig.update(job_rate(outcome))
    nodes = outcome.recorder.nodes
    root, sink = nodes.get(("fan-1000", "l0-0")), nodes.get(("fan-1000", "l2-0"))
    middle = [t for (_, n), t in nodes.items() if n.startswith("l1-")]
    if root and sink and middle and root.pod_terminated and sink.job_added:
        added = [t.job_added for t in middle if t.job_added]
        ended = [t.pod_terminated for t in middle if t.pod_terminated]
        fig["fan_out_s"] = round(max(added) - root.pod_terminated, 2) if added else None
        fig["fan_in_s"] = round(sink.job_added - max(ended), 3) if ended else None
    return fig


def scenario_scale(api: Api, preset: str, profile: bool) -> dict[str, Any]:
    flows = [kube_flows.chain(f"sc-{i:04d}", 5) for i in range(1000)]
    outcome = run_flows(api, "scale", flows, timeout=900, profile=profile, until_active=True)
    fig = outcome.figures
    fig["active_flows"] = len(flows) - fig.pop("flows_succeeded", 0)
    fig.update(job_rate(outcome))
    return fig


# Batch scenarios (``--batch-items``, ``--batch-modes``, ``--batch-repeats``): set by main().
BATCH = {"items": [1000], "modes": ["per-item", "indexed"], "repeats": 3, "chunk": None}


def scenario_batch(api: Api, preset: str, profile: bool) -> dict[str, Any]:
    """1 -> N-item batch -> gather -> 1 on kwok, each --batch-jobs mode, ``repeats`` times:
    wall time (Flow create request -> status.finishedAt), Jobs and pods created, the Flow's
    status size, the operator's peak RSS and CPU. Medians per (N, mode)."""
    out: dict[str, Any] = {"runs": {}, "median": {}}
    for items in BATCH["items"]:
        for mode in BATCH["modes"]:
            label = f"{items}-{mode}"
            runs = []
            for rep in range(int(BATCH["repeats"])):
                flow = kube_flows.batch(f"batch-{items}", items, chunk=BATCH["chunk"])
                print(f"  batch {label} run {rep + 1}", flush=True)
                outcome = run_flows(
                    api,
                    f"batch{items}-{'idx' if mode == 'indexed' else 'job'}",
                    [flow],
                    timeout=max(600, items * 0.3),
                    profile=profile,
                    operator_args=["--batch-jobs", mode],
                )
                fig = outcome.figures
                walls = flow_walls(outcome)
                keep = (
                    "namespace",
                    "flows_succeeded",
                    "jobs_created",
                    "pods_created",
                    "status_bytes_max",
                    "status_bytes_final",
                    "operator_peak_rss_mib",
                    "operator_cpu_s",
                    "cluster_cpu_s",
                    "job_controller",
                    "loadavg_before",
                    "loadavg_after",
                    "operator_errors",
                )
                run = {k: fig.get(k) for k in keep}
                run["wall_s"] = round(walls[0], 2) if walls else None
                runs.append(run)
                shown = ("wall_s", "jobs_created", "status_bytes_max", "operator_cpu_s")
                print(f"    {json.dumps({k: run[k] for k in shown})}", flush=True)
            out["runs"][label] = runs
            out["median"][label] = {
                key: _median([r[key] for r in runs])
                for key in (
                    "wall_s",
                    "jobs_created",
                    "pods_created",
                    "status_bytes_max",
                    "status_bytes_final",
                    "operator_peak_rss_mib",
                    "operator_cpu_s",
                )
            }
            out["median"][label]["runs"] = len(runs)
            out["median"][label]["succeeded"] = sum(r["flows_succeeded"] or 0 for r in runs)
    return out


def _median(values: list[Any]) -> float | None:
    numbers = [v for v in values if isinstance(v, (int, float))]
    return round(statistics.median(numbers), 2) if numbers else None


BATCH_PODS_ITEMS = 50


def scenario_batch_pods(api: Api, preset: str, profile: bool) -> dict[str, Any]:
    """Real pods: 1 -> 50-item batch (each item doubled) -> gather -> sum, each mode."""
    out: dict[str, Any] = {"runs": {}, "median": {}}
    for mode in BATCH["modes"]:
        runs = []
        for rep in range(int(BATCH["repeats"])):
            flow = kube_flows.batch_real(f"batch-pods-{rep}", BATCH_PODS_ITEMS)
            print(f"  batch-pods {mode} run {rep + 1}", flush=True)
            outcome = run_flows(
                api,
                f"bpods-{'idx' if mode == 'indexed' else 'job'}",
                [flow],
                timeout=600,
                operator_args=["--batch-jobs", mode],
            )
            fig = outcome.figures
            walls = flow_walls(outcome)
            run = {
                k: fig.get(k)
                for k in (
                    "namespace",
                    "flows_succeeded",
                    "jobs_created",
                    "pods_created",
                    "status_bytes_max",
                    "operator_peak_rss_mib",
                    "operator_cpu_s",
                    "operator_errors",
                )
            }
            run["wall_s"] = round(walls[0], 2) if walls else None
            runs.append(run)
            print(f"    {json.dumps(run)[:400]}", flush=True)
        out["runs"][mode] = runs
        out["median"][mode] = {
            key: _median([r[key] for r in runs])
            for key in ("wall_s", "jobs_created", "pods_created", "operator_cpu_s")
        }
    return out


PODS_RUNS = 5
CRITICAL = ("start-parallel", "task-1", "gather")


def scenario_pods(api: Api, preset: str, profile: bool) -> dict[str, Any]:
    base = yaml.safe_load((ROOT / "examples" / "parallel.yaml").read_text())
    flows = []
    for i in range(PODS_RUNS):
        doc = json.loads(json.dumps(base))
        doc["metadata"]["name"] = f"parallel-{i}"
        flows.append(doc)
    outcome = run_flows(api, "pods", flows, timeout=180, sequential=True)
    fig = outcome.figures
    walls = []
    steps: dict[str, list[float]] = {}
    for flow in flows:
        fname = flow["metadata"]["name"]
        times = outcome.recorder.flows[fname]
        nodes = {n: outcome.recorder.nodes.get((fname, n)) for n in CRITICAL}
        first = nodes["start-parallel"]
        end = times.finished_at or times.ended
        if first is None or first.job_added is None or end is None:
            continue
        submitted = outcome.submits[fname]
        walls.append(end - submitted)
        _add(steps, "0 Flow created -> first Job ADDED", first.job_added - submitted)
        for here, nxt in zip(CRITICAL, (*CRITICAL[1:], None), strict=True):
            _breakdown(
                steps,
                here,
                me=nodes[here],
                nxt=nodes[nxt] if nxt else None,
                outcome=outcome,
                flow=fname,
                nxt_id=nxt,
            )
        if nodes["gather"] and nodes["gather"].pod_terminated and times.ended:
            _add(
                steps,
                "gather terminated -> flow Succeeded seen",
                times.ended - nodes["gather"].pod_terminated,
            )
    fig["runs_wall_s"] = [round(w, 3) for w in walls]
    fig["wall_s"] = round(statistics.median(walls), 3) if walls else None
    fig["ratio"] = round(fig["wall_s"] / CRITICAL_PATH_SECONDS, 3) if walls else None
    fig["breakdown_ms_median"] = {
        k: round(statistics.median(v) * 1000, 1) for k, v in steps.items() if v
    }
    return fig


def _add(steps: dict[str, list[float]], key: str, value: float | None) -> None:
    if value is not None:
        steps.setdefault(key, []).append(value)


def _breakdown(
    steps: dict[str, list[float]],
    here: str,
    *,
    me: NodeTimes | None,
    nxt: NodeTimes | None,
    outcome: Outcome,
    flow: str,
    nxt_id: str | None,
) -> None:
    if me is None or me.job_added is None:
        return
    sub = lambda a, b: (a - b) if a is not None and b is not None else None  # noqa: E731
    _add(steps, f"{here}: Job ADDED -> pod scheduled", sub(me.pod_scheduled, me.job_added))
    _add(steps, f"{here}: scheduled -> container running", sub(me.pod_running, me.pod_scheduled))
    _add(steps, f"{here}: running -> terminated", sub(me.pod_terminated, me.pod_running))
    _add(steps, f"{here}: container run (API, 1 s res.)", sub(me.api_finished, me.api_started))
    if nxt is None or nxt_id is None:
        return
    sample = _sample_for(outcome, nxt_id, me.pod_terminated, nxt.job_added)
    if sample is not None:
        saw = sample.logged - sample.seconds
        _add(steps, f"{here}: terminated -> operator saw it", sub(saw, me.pod_terminated))
        _add(steps, f"{here}: operator saw -> create sent", sample.seconds)
        _add(steps, f"{here}: create sent -> next Job ADDED", sub(nxt.job_added, sample.logged))
    _add(steps, f"{here}: terminated -> next Job ADDED", sub(nxt.job_added, me.pod_terminated))


def _sample_for(
    outcome: Outcome, node: str, after: float | None, before: float | None
) -> Sample | None:
    if after is None or before is None:
        return None
    for sample in outcome.samples:
        if sample.node == node and after - 0.5 <= sample.logged <= before + 0.5:
            return sample
    return None


SCENARIOS: dict[str, tuple[str, Callable[[Api, str, bool], dict[str, Any]]]] = {
    "single": ("kwok", scenario_single),
    "latency": ("kwok", scenario_latency),
    "throughput": ("kwok", scenario_throughput),
    "fanout": ("kwok", scenario_fanout),
    "scale": ("kwok", scenario_scale),
    "pods": ("real", scenario_pods),
    "batch": ("kwok", scenario_batch),
    "batch-pods": ("real", scenario_batch_pods),
}
PRESETS = {
    "quick": ("single", "latency", "throughput", "fanout", "pods"),
    "full": ("single", "latency", "throughput", "fanout", "scale", "pods"),
}


# ---------------------------------------------------------------------------- report


def headline(results: dict[str, Any]) -> dict[str, Any]:
    s = results["scenarios"]
    lat, tp, fan, pods = (s.get(k) or {} for k in ("latency", "throughput", "fanout", "pods"))
    rss = [v["operator_peak_rss_mib"] for v in s.values() if "operator_peak_rss_mib" in v]

    def pick(d: dict[str, Any]) -> dict[str, Any] | None:
        return {k: d.get(k) for k in ("p50", "p95", "p99", "n")} if d else None

    return {
        "transition_latency_ms": pick(lat.get("operator_transition_ms") or {}),
        "single_flow_transition_ms": pick(
            (s.get("single") or {}).get("operator_transition_ms") or {}
        ),
        "single_flow_e2e_ms": pick((s.get("single") or {}).get("e2e_transition_ms") or {}),
        "e2e_transition_latency_ms": pick(lat.get("e2e_transition_ms") or {}),
        "node_jobs_per_min": tp.get("node_jobs_per_min"),
        # The operator alone: Job creations during the 1 -> 1000 fan-out burst.
        "operator_fanout_jobs_per_min": fan.get("node_jobs_per_min"),
        "fanout_1000_s": fan.get("wall_s"),
        "operator_peak_rss_mib": max(rss) if rss else None,
        "operator_peak_rss_mib_1000_flows": (s.get("scale") or {}).get("operator_peak_rss_mib"),
        "parallel_example_ratio": pods.get("ratio"),
        "parallel_example_wall_s": pods.get("wall_s"),
    }


def table(results: dict[str, Any]) -> str:
    h = results
    lat, e2e = h.get("transition_latency_ms") or {}, h.get("e2e_transition_latency_ms") or {}
    s = results["scenarios"]
    rows = [
        ("transition, operator (p50/p95/p99 ms)", _triple(lat), "<= 20 / - / <= 100"),
        ("transition, end to end (p50/p95/p99 ms)", _triple(e2e), "-"),
        ("  one flow alone, operator (ms)", _triple(h.get("single_flow_transition_ms")), "-"),
        ("  one flow alone, end to end (ms)", _triple(h.get("single_flow_e2e_ms")), "-"),
        ("node-Jobs per minute (sustained)", h.get("node_jobs_per_min"), ">= 3000"),
        ("  operator Job creates/min (fan-out)", h.get("operator_fanout_jobs_per_min"), "-"),
        ("1 -> 1000 -> 1 wall time (s)", h.get("fanout_1000_s"), "<= 60"),
        ("operator peak RSS (MiB)", h.get("operator_peak_rss_mib"), "<= 200 @1000 flows"),
        ("  at 1000 active flows (MiB)", h.get("operator_peak_rss_mib_1000_flows"), "<= 200"),
        ("parallel example / 2.0 s", h.get("parallel_example_ratio"), "<= 2.5 (2 s + 3 s)"),
    ]
    width = max(len(r[0]) for r in rows)
    lines = [f"{'figure':<{width}}  {'measured':>18}  target", "-" * (width + 36)]
    lines += [f"{name:<{width}}  {_fmt(value):>18}  {target}" for name, value, target in rows]
    lines.append("")
    for name, fig in s.items():
        if "error" in fig:
            lines.append(f"{name}: ERROR {fig['error']}")
            continue
        if "median" in fig:  # batch scenarios: medians per (items, mode)
            lines.append(f"{name} (medians):")
            for label, med in fig["median"].items():
                lines.append(
                    f"  {label}: wall {med.get('wall_s')} s, Jobs {med.get('jobs_created')}, "
                    f"pods {med.get('pods_created')}, status max {med.get('status_bytes_max')} B, "
                    f"operator RSS {med.get('operator_peak_rss_mib')} MiB, "
                    f"CPU {med.get('operator_cpu_s')} s ({med.get('runs')} runs)"
                )
            continue
        cpu = fig.get("cluster_cpu_s") or {}
        jc = fig.get("job_controller") or {}
        lines.append(
            f"{name}: {fig.get('flows')} flows / {fig.get('nodes')} nodes in "
            f"{fig.get('elapsed_s')} s; operator CPU {fig.get('operator_cpu_s')} s "
            f"({fig.get('operator_cpu_share')} cores), RSS {fig.get('operator_peak_rss_mib')} "
            f"MiB; cluster CPU s: {', '.join(f'{k} {v}' for k, v in cpu.items())}; "
            f"Job controller queue wait {jc.get('mean_queue_wait_ms')} ms, "
            f"sync {jc.get('mean_sync_ms')} ms (mean); load {fig.get('loadavg_after')}"
        )
    return "\n".join(lines)


def _triple(d: dict[str, Any] | None) -> str:
    return "/".join(_fmt(d.get(k)) for k in ("p50", "p95", "p99")) if d else "-"


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3g}" if value < 10 else f"{value:.0f}"
    return str(value)


def ensure_cluster(kubeconfig: Path, make_target: str) -> Api:
    if not kubeconfig.is_file():
        raise BenchError(f"no cluster at {kubeconfig}: run `make {make_target}` first")
    api = Api(kubeconfig)
    if not api.ready():
        raise BenchError(f"the cluster at {kubeconfig} is not ready: `make {make_target}`")
    install_crd(kubeconfig)
    return api


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", choices=sorted(PRESETS), default="quick")
    parser.add_argument("--only", help="comma-separated scenarios: " + ", ".join(SCENARIOS))
    parser.add_argument("--out", type=Path, default=RESULTS / "latest.json")
    parser.add_argument("--profile", action="store_true", help="py-spy record the operator")
    parser.add_argument("--show", type=Path, help="print the table of an earlier results file")
    parser.add_argument(
        "--batch-items", default="1000", help="batch scenario: item counts, comma-separated"
    )
    parser.add_argument(
        "--batch-modes", default="per-item,indexed", help="batch scenario: --batch-jobs modes"
    )
    parser.add_argument("--batch-repeats", type=int, default=3, help="batch scenario: runs each")
    parser.add_argument("--batch-chunk", type=int, help="batch scenario: chunkSize (default all)")
    args = parser.parse_args()
    BATCH.update(
        items=[int(x) for x in args.batch_items.split(",")],
        modes=args.batch_modes.split(","),
        repeats=args.batch_repeats,
        chunk=args.batch_chunk,
    )
    if args.show:
        shown = json.loads(args.show.read_text())
        shown.update(headline(shown))
        print(table(shown))
        return 0
    chosen = args.only.split(",") if args.only else list(PRESETS[args.preset])
    unknown = [c for c in chosen if c not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenarios {unknown}")

    apis: dict[str, Api] = {}
    results: dict[str, Any] = {
        "preset": args.preset,
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "scenarios": {},
    }
    failed = False
    for name in chosen:
        mode, fn = SCENARIOS[name]
        print(f"== {name} ({mode}) load {load_avg()}", flush=True)
        try:
            if mode not in apis:
                apis[mode] = (
                    ensure_cluster(KWOK_KUBECONFIG, "cluster-kwok")
                    if mode == "kwok"
                    else ensure_cluster(REAL_KUBECONFIG, "cluster")
                )
            results["scenarios"][name] = fn(apis[mode], args.preset, args.profile)
        except BenchError as exc:
            print(f"   {name} failed: {exc}", file=sys.stderr, flush=True)
            results["scenarios"][name] = {"error": str(exc)}
            failed = True
        print(json.dumps(results["scenarios"][name], indent=None)[:2000], flush=True)
    results.update(headline(results))
    results["finished"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print()
    print(table(results))
    print(f"\nwritten: {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
