"""The shipped examples: valid, cluster-ready (default runner image), and the reference flow."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from flowcraft.drivers.local import LocalRunner
from flowcraft.model import API_VERSION, DEFAULT_RUNNER_IMAGE, KIND, load_flow
from flowcraft.model.loader import load_initial_context

pytestmark = pytest.mark.unit

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples").glob("*.yaml"))


def test_the_four_documented_examples_exist() -> None:
    names = {path.stem for path in EXAMPLES}
    assert {"parallel", "conditional", "retry-fallback", "failing-branch"} <= names


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_example_is_a_valid_cluster_ready_flow(path: Path) -> None:
    flow = load_flow(path)
    assert flow.api_version == API_VERSION
    assert flow.kind == KIND
    assert flow.metadata.name == path.stem
    # Only script/python functions: they run unchanged in the default runner image.
    assert flow.spec.runner_image == DEFAULT_RUNNER_IMAGE
    kinds = {name: fn.kind for name, fn in flow.spec.functions.items()}
    assert set(kinds.values()) <= {"script", "python"}, kinds


def test_parallel_is_the_reference_flow() -> None:
    flow = load_flow(EXAMPLES[0].parent / "parallel.yaml")
    spec = flow.spec
    assert [node.id for node in spec.nodes] == [
        "start-parallel",
        "task-1",
        "task-2",
        "task-3",
        "gather",
    ]
    assert {node.id: node.params.get("seconds") for node in spec.nodes[1:4]} == {
        "task-1": 2.0,
        "task-2": 1.0,
        "task-3": 1.5,
    }
    edges = {(edge.source, edge.target) for edge in spec.edges}
    tasks = ("task-1", "task-2", "task-3")
    assert edges == {("start-parallel", t) for t in tasks} | {(t, "gather") for t in tasks}


BLUEPRINT = Path(__file__).resolve().parents[2] / "examples" / "blueprint"

# What flowcraft 2.10.1 itself returns as result.context for examples/blueprint (its
# UnsafeEvaluator, JavaScript twins of functions.yaml; `_executionId` left out).
FLOWCRAFT_CONTEXT = json.loads((BLUEPRINT / "flowcraft-context.json").read_text())


def test_the_blueprint_example_gives_flowcrafts_context(tmp_path: Path) -> None:
    flow = load_flow(
        BLUEPRINT / "blueprint.json",
        functions=BLUEPRINT / "functions.yaml",
        initial_context=load_initial_context(BLUEPRINT / "context.json"),
    )
    # camelCase ids, a loop, JavaScript conditions, writes and an initial context.
    result = asyncio.run(LocalRunner(flow, tmp_path / "run").run())
    assert result.status.phase == "Succeeded"
    assert result.context == FLOWCRAFT_CONTEXT
