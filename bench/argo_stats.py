"""Figures of the Argo comparison from what the watches recorded: pure code, unit-tested.

Why separate: the driver (bench/argo_bench.py) talks to the cluster; this turns its records
into the published numbers, and a wrong statistic would go unnoticed in a table, so it is
tested on its own (tests/unit/test_argo_bench_stats.py).

Per run: wall time (create request sent -> first watch event showing the flow/workflow in a
terminal phase), its ratio to the critical path, and per step with predecessors the gap from
the *last* predecessor's pod terminating to this step's pod being created (its ADDED event).
"Terminating" is the first watch event showing the step's own container terminated (ours: the
pod's one container; Argo: ``main``): the moment the step's work is over and a controller can
know it. The pod's phase turning Succeeded comes later (the kubelet's next status update, up to
~1 s; for Argo also after its ``wait`` container has reported): that gap is kept too
(``pod_gap``) but, measured from a later instant, it can be negative for a controller that acts
on the container's termination, as ours does. Pods are matched to steps through
annotations: ours ``flowcraft.io/flow-name`` + ``flowcraft.io/node-id``, Argo's
``workflows.argoproj.io/workflow`` label + ``workflows.argoproj.io/node-name`` ("wf.task").
"""

from __future__ import annotations

import statistics
import threading
from dataclasses import dataclass, field
from typing import Any

Obj = dict[str, Any]
TERMINAL = ("Succeeded", "Failed", "Error")
FLOW_ANN, NODE_ANN = "flowcraft.io/flow-name", "flowcraft.io/node-id"
WF_LABEL, WF_NODE_ANN = "workflows.argoproj.io/workflow", "workflows.argoproj.io/node-name"


@dataclass
class PodTimes:
    """Receipt times (epoch s) of the first watch event showing each fact of one step's pod."""

    added: float | None = None
    main_terminated: float | None = None  # the step's own container (Argo: "main") ended
    terminated: float | None = None  # the pod's phase is Succeeded/Failed


@dataclass
class Records:
    """Fed by the watch threads (kube_harness.Watches with ``streams``)."""

    pods: dict[tuple[str, str], PodTimes] = field(default_factory=dict)
    phases: dict[str, tuple[str, float]] = field(default_factory=dict)  # name -> (phase, seen)
    events: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def pod(self, kind: str, obj: Obj, now: float) -> None:
        key = pod_step(obj)
        if key is None or kind == "DELETED":
            return
        times = self.pods.setdefault(key, PodTimes())
        if times.added is None:
            times.added = now
        status = obj.get("status") or {}
        statuses = status.get("containerStatuses") or []
        for cs in statuses:
            if (cs.get("name") == "main" or len(statuses) == 1) and "terminated" in (
                cs.get("state") or {}
            ):
                times.main_terminated = times.main_terminated or now
        if times.terminated is None and status.get("phase") in TERMINAL:
            times.terminated = now

    def flow(self, kind: str, obj: Obj, now: float) -> None:
        name = str((obj.get("metadata") or {}).get("name"))
        phase = (obj.get("status") or {}).get("phase")
        if kind != "DELETED" and phase in TERMINAL and name not in self.phases:
            self.phases[name] = (str(phase), now)


def pod_step(obj: Obj) -> tuple[str, str] | None:
    """(flow or workflow name, step id) of a step's pod, or None for any other pod."""
    meta = obj.get("metadata") or {}
    ann, labels = meta.get("annotations") or {}, meta.get("labels") or {}
    if isinstance(ann.get(FLOW_ANN), str) and isinstance(ann.get(NODE_ANN), str):
        return ann[FLOW_ANN], ann[NODE_ANN]
    wf, node = labels.get(WF_LABEL), ann.get(WF_NODE_ANN)
    if isinstance(wf, str) and isinstance(node, str) and node.startswith(wf + "."):
        return wf, node[len(wf) + 1 :]
    return None


def step_gaps(
    preds: dict[str, list[str]], pods: dict[str, PodTimes], *, phase: bool = False
) -> list[float]:
    """Per step with predecessors: its pod ADDED minus its last predecessor's step container
    terminated (``phase``: the predecessor's pod phase Succeeded/Failed instead). Steps with a
    missing record are left out."""
    out = []
    for step, before in preds.items():
        if not before or step not in pods or pods[step].added is None:
            continue
        ends = [
            getattr(pods.get(p), "terminated" if phase else "main_terminated", None) for p in before
        ]
        if any(e is None for e in ends):
            continue
        out.append(pods[step].added - max(e for e in ends if e is not None))  # type: ignore[operator]
    return out


@dataclass(frozen=True)
class RunFigures:
    system: str
    shape: str
    rep: int
    phase: str
    wall_s: float
    ratio: float
    gaps_s: tuple[float, ...]
    pod_gaps_s: tuple[float, ...]
    pods: int

    @classmethod
    def from_dict(cls, doc: Obj) -> RunFigures:
        """Back from :meth:`as_dict` (gaps at its 0.1 ms rounding)."""
        return cls(
            doc["system"],
            doc["shape"],
            doc["rep"],
            doc["phase"],
            doc["wall_s"],
            doc["ratio"],
            tuple(g / 1000 for g in doc["gaps_ms"]),
            tuple(g / 1000 for g in doc.get("pod_gaps_ms", [])),
            doc["pods"],
        )

    def as_dict(self) -> Obj:
        return {
            "system": self.system,
            "shape": self.shape,
            "rep": self.rep,
            "phase": self.phase,
            "wall_s": round(self.wall_s, 3),
            "ratio": round(self.ratio, 2),
            "gap_median_ms": ms(median(self.gaps_s)),
            "pod_gap_median_ms": ms(median(self.pod_gaps_s)),
            "gaps_ms": [ms(g) for g in self.gaps_s],
            "pod_gaps_ms": [ms(g) for g in self.pod_gaps_s],
            "pods": self.pods,
        }


def run_figures(
    *,
    system: str,
    shape: str,
    rep: int,
    created: float,
    name: str,
    preds: dict[str, list[str]],
    critical_s: float,
    records: Records,
) -> RunFigures:
    phase, seen = records.phases[name]
    pods = {step: t for (flow, step), t in list(records.pods.items()) if flow == name}
    wall = seen - created
    return RunFigures(
        system,
        shape,
        rep,
        phase,
        wall,
        wall / critical_s,
        tuple(step_gaps(preds, pods)),
        tuple(step_gaps(preds, pods, phase=True)),
        len(pods),
    )


def median(values: list[float] | tuple[float, ...]) -> float | None:
    return statistics.median(values) if values else None


def ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)


def aggregate(runs: list[RunFigures]) -> dict[str, dict[str, Obj]]:
    """shape -> system -> medians over the successful runs (gaps pooled over the runs)."""
    out: dict[str, dict[str, Obj]] = {}
    for run in runs:
        out.setdefault(run.shape, {}).setdefault(run.system, {"runs": []})["runs"].append(run)
    for systems in out.values():
        for system, agg in systems.items():
            ok = [r for r in agg.pop("runs") if r.phase == "Succeeded"]
            walls = [r.wall_s for r in ok]
            gaps = [g for r in ok for g in r.gaps_s]
            pod_gaps = [g for r in ok for g in r.pod_gaps_s]
            systems[system] = {
                "runs": len(ok),
                "wall_s": round(median(walls), 2) if walls else None,
                "wall_min_max_s": [round(min(walls), 2), round(max(walls), 2)] if walls else None,
                "ratio": round(statistics.median([r.ratio for r in ok]), 2) if ok else None,
                "gap_median_ms": ms(median(gaps)),
                "pod_gap_median_ms": ms(median(pod_gaps)),
                "gaps": len(gaps),
            }
    return out


def ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 1) if a is not None and b else None


def table(agg: dict[str, dict[str, Obj]], critical: dict[str, float], ours: str = "ours") -> str:
    """A markdown table: one row per (flow, system), Argo rows with their ÷ ours ratios."""
    lines = [
        "| flow (critical path) | system | runs | wall s (median; min-max) | ÷ critical path "
        "| step gap ms (median) | gap ÷ ours | wall ÷ ours | gap from pod phase ms |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for shape, systems in agg.items():
        base = systems.get(ours) or {}
        for system in sorted(systems, key=lambda s: (s != ours, s)):
            fig = systems[system]
            lo, hi = fig["wall_min_max_s"] or (None, None)
            vs = system != ours
            gap_x = ratio(fig["gap_median_ms"], base.get("gap_median_ms")) if vs else None
            wall_x = ratio(fig["wall_s"], base.get("wall_s")) if vs else None
            lines.append(
                f"| {shape} ({critical[shape]:g} s) | {system} | {fig['runs']} "
                f"| {_f(fig['wall_s'])} ({_f(lo)}-{_f(hi)}) | {_f(fig['ratio'])} "
                f"| {_f(fig['gap_median_ms'])} | {_f(gap_x) if vs else ''} "
                f"| {_f(wall_x) if vs else ''} | {_f(fig['pod_gap_median_ms'])} |"
            )
    return "\n".join(lines)


def _f(value: Any) -> str:
    return "-" if value is None else f"{value:g}" if isinstance(value, float) else str(value)
