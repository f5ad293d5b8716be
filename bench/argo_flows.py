"""The DAGs of the Argo comparison (bench/argo_bench.py), written once and rendered for both.

Why one description: the comparison is only fair if both systems run the same graph with the
same work per step. A :class:`Shape` lists the steps (id, seconds of sleep) and the edges; it
renders to a flowcraft ``Flow`` and to an Argo ``Workflow`` (a ``dag`` template whose tasks run
a ``container`` template). Both run their steps in the same image (the node runtime image):
ours through the runtime's entrypoint, Argo's as ``python3 -c`` time.sleep behind its emissary.

Shapes: ``seed`` is examples/parallel.yaml itself (start -> 3 parallel sleeps of 2.0/1.0/1.5 s
-> gather), ``chain10`` is ten 0.1 s steps in a row, ``fan50`` is 1 -> 50 -> 1 of 0.1 s steps.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

Obj = dict[str, Any]
SEED_FILE = Path(__file__).resolve().parents[1] / "examples" / "parallel.yaml"
STEP_SECONDS = 0.1
SLEEP = "import time\n\ndef run(ctx):\n    time.sleep(ctx.params['seconds'])\n    return 1\n"
ARGO_SLEEP = "import sys, time; time.sleep(float(sys.argv[1]))"


@dataclass(frozen=True)
class Shape:
    name: str
    steps: tuple[tuple[str, float], ...]  # (id, seconds of work), in topological order
    edges: tuple[tuple[str, str], ...]

    def predecessors(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {sid: [] for sid, _ in self.steps}
        for src, dst in self.edges:
            out[dst].append(src)
        return out

    def critical_path(self) -> float:
        """The longest sum of step seconds along any path: the flow's floor."""
        work = dict(self.steps)
        longest: dict[str, float] = {}
        preds = self.predecessors()
        for sid, _ in self.steps:
            longest[sid] = work[sid] + max((longest[p] for p in preds[sid]), default=0.0)
        return max(longest.values())


def seed() -> Shape:
    """examples/parallel.yaml as a Shape (its params carry each sleep's seconds)."""
    doc = yaml.safe_load(SEED_FILE.read_text())
    steps = tuple(
        (n["id"], float((n.get("params") or {}).get("seconds", 0.0))) for n in doc["spec"]["nodes"]
    )
    edges = tuple((e["source"], e["target"]) for e in doc["spec"]["edges"])
    return Shape("seed", steps, edges)


def chain(length: int = 10) -> Shape:
    ids = [f"s{i}" for i in range(length)]
    return Shape(
        f"chain{length}",
        tuple((i, STEP_SECONDS) for i in ids),
        tuple(itertools.pairwise(ids)),
    )


def fan(width: int = 50) -> Shape:
    mids = [f"m{i}" for i in range(width)]
    steps = (("start", STEP_SECONDS), *((m, STEP_SECONDS) for m in mids), ("end", STEP_SECONDS))
    edges = (*(("start", m) for m in mids), *((m, "end") for m in mids))
    return Shape(f"fan{width}", steps, edges)


SHAPES = {"seed": seed, "chain10": chain, "fan50": fan}


def flowcraft_flow(shape: Shape, name: str) -> Obj:
    """Ours: the seed is examples/parallel.yaml verbatim (renamed); others sleep in a script."""
    if shape.name == "seed":
        doc: Obj = json.loads(json.dumps(yaml.safe_load(SEED_FILE.read_text())))
        doc["metadata"] = {"name": name}
        return doc
    return {
        "apiVersion": "flowcraft.io/v1alpha1",
        "kind": "Flow",
        "metadata": {"name": name},
        "spec": {
            "functions": {"sleep": {"script": SLEEP}},
            "nodes": [
                {"id": sid, "uses": "sleep", "params": {"seconds": s}} for sid, s in shape.steps
            ],
            "edges": [{"source": a, "target": b} for a, b in shape.edges],
        },
    }


def argo_workflow(shape: Shape, name: str, image: str) -> Obj:
    """Argo: one ``dag`` template; every task runs the ``sleep`` container template."""
    preds = shape.predecessors()
    tasks = []
    for sid, seconds in shape.steps:
        task: Obj = {
            "name": sid,
            "template": "sleep",
            "arguments": {"parameters": [{"name": "seconds", "value": str(seconds)}]},
        }
        if preds[sid]:
            task["dependencies"] = list(preds[sid])
        tasks.append(task)
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {"name": name},
        "spec": {
            "entrypoint": "main",
            "serviceAccountName": "default",
            "templates": [
                {"name": "main", "dag": {"tasks": tasks}},
                {
                    "name": "sleep",
                    "inputs": {"parameters": [{"name": "seconds"}]},
                    "container": {
                        "image": image,
                        "imagePullPolicy": "Never",
                        "command": ["python3", "-c", ARGO_SLEEP, "{{inputs.parameters.seconds}}"],
                    },
                },
            ],
        },
    }
