"""Model: loading, round trips, blueprint conversion, and one test per validation problem."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from flowcraft.model import (
    DEFAULT_RUNNER_IMAGE,
    Flow,
    FlowStatus,
    FlowValidationError,
    FunctionSpec,
    NodeStatus,
    dump_flow,
    load_flow,
    load_functions,
    parse_flow,
    sanitize_name,
)

pytestmark = pytest.mark.unit

FUNCTIONS = {"task": {"script": "def run(ctx):\n    return 1\n"}}


def manifest(
    nodes: list[dict[str, Any]] | None = None,
    edges: list[dict[str, Any]] | None = None,
    functions: dict[str, Any] | None = None,
    **spec: Any,
) -> dict[str, Any]:
    return {
        "apiVersion": "flowcraft.io/v1alpha1",
        "kind": "Flow",
        "metadata": {"name": "demo"},
        "spec": {
            "nodes": nodes if nodes is not None else [{"id": "a", "uses": "task"}],
            "edges": edges or [],
            "functions": functions if functions is not None else FUNCTIONS,
            **spec,
        },
    }


def problems(data: dict[str, Any]) -> list[str]:
    with pytest.raises(FlowValidationError) as info:
        parse_flow(data)
    return [str(p) for p in info.value.problems]


def only(data: dict[str, Any]) -> str:
    found = problems(data)
    assert len(found) == 1, found
    return found[0]


PARALLEL = """
apiVersion: flowcraft.io/v1alpha1
kind: Flow
metadata:
  name: parallel
  namespace: default
  labels: {team: data}
  uid: 1234
spec:
  failFast: false
  parallelism: 2
  activeDeadlineSeconds: 60
  image: my-runner:1
  functions:
    task: {script: "def run(ctx):\\n    return 1\\n"}
    gather: {python: "mypkg.nodes:gather", image: custom:2}
    shell: {image: "busybox:1.36", command: [sh, -c], args: ["echo hi"], env: {A: "1"},
            resources: {limits: {cpu: "1"}}}
  nodes:
    - {id: start, uses: task, params: {n: 1}}
    - id: task-1
      uses: task
      config: {maxRetries: 3, retryDelay: 100, timeout: 2000, fallback: rescue}
    - {id: rescue, uses: shell}
    - {id: gather, uses: gather, inputs: {one: task-1}, config: {joinStrategy: any}}
  edges:
    - {source: start, target: task-1, action: go, condition: "result.output > 0"}
    - {source: task-1, target: gather, transform: "result.output"}
"""


def test_load_manifest_reads_camel_case_and_fills_defaults() -> None:
    flow = load_flow(PARALLEL)
    spec = flow.spec
    assert flow.metadata.name == "parallel"
    assert spec.fail_fast is False
    assert spec.parallelism == 2
    assert spec.active_deadline_seconds == 60
    task = spec.node("task-1")
    assert task.config.max_retries == 3
    assert task.config.retry_delay == 100
    assert task.config.fallback == "rescue"
    assert spec.node("start").config.max_retries == 1
    assert spec.node("gather").config.join_strategy == "any"
    assert spec.edges[0].action == "go"
    assert spec.functions["task"].kind == "script"
    assert spec.functions["gather"].kind == "python"
    assert spec.functions["shell"].kind == "container"


def test_round_trip_load_dump_load_is_stable_and_camel_case(tmp_path: Path) -> None:
    flow = load_flow(PARALLEL)
    text = dump_flow(flow)
    assert "maxRetries: 3" in text
    assert "max_retries" not in text
    path = tmp_path / "flow.yaml"
    path.write_text(text)
    again = load_flow(path)
    assert again == flow
    as_json = load_flow(dump_flow(flow, fmt="json"))
    assert as_json == flow


def test_metadata_keeps_other_kubernetes_keys() -> None:
    flow = load_flow(PARALLEL)
    assert flow.to_dict()["metadata"]["uid"] == 1234


def test_python_names_are_accepted_too() -> None:
    data = manifest()
    data["spec"]["failFast"] = False
    data["spec"]["nodes"][0]["config"] = {"max_retries": 2}
    flow = parse_flow(data)
    assert flow.spec.nodes[0].config.max_retries == 2
    assert flow.to_dict()["spec"]["nodes"][0]["config"]["maxRetries"] == 2


def test_runner_image_defaults() -> None:
    flow = load_flow(PARALLEL)
    assert flow.spec.runner_image == "my-runner:1"
    assert flow.spec.functions["task"].effective_image(flow.spec.runner_image) == "my-runner:1"
    assert flow.spec.functions["gather"].effective_image(flow.spec.runner_image) == "custom:2"
    assert parse_flow(manifest()).spec.runner_image == DEFAULT_RUNNER_IMAGE


def test_status_timestamps_are_rfc3339_utc_with_z() -> None:
    status = FlowStatus(
        phase="Running",
        started_at=datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC),
        nodes={"a": NodeStatus(retry_at=datetime(2024, 5, 6, 7, 8, 9, 500000, tzinfo=UTC))},
    )
    data = status.to_dict()
    assert data["startedAt"] == "2024-05-06T07:08:09Z"
    assert data["nodes"]["a"]["retryAt"] == "2024-05-06T07:08:09.500000Z"
    assert FlowStatus.model_validate(json.loads(json.dumps(data))) == status


def test_status_rejects_naive_timestamps() -> None:
    with pytest.raises(ValueError, match="timezone"):
        FlowStatus.model_validate({"startedAt": "2024-05-06T07:08:09"})


def test_status_tolerates_foreign_keys() -> None:
    status = FlowStatus.model_validate({"phase": "Running", "kopf": {"progress": {}}})
    assert status.phase == "Running"


# -- blueprints -----------------------------------------------------------------------------

BLUEPRINT = {
    "id": "Parallel_Flow",
    "nodes": [
        {"id": "start", "uses": "task", "params": {}, "_sourceLocation": {"file": "x.ts"}},
        {"id": "gather", "uses": "gather", "config": {"joinStrategy": "all"}},
    ],
    "edges": [{"source": "start", "target": "gather"}],
    "metadata": {"version": "1.2"},
}


def test_blueprint_with_functions_file(tmp_path: Path) -> None:
    bp = tmp_path / "bp.json"
    bp.write_text(json.dumps(BLUEPRINT))
    fns = tmp_path / "functions.yaml"
    fns.write_text("task: {script: 'def run(ctx): return 1'}\ngather: {python: 'm:f'}\n")
    flow = load_flow(bp, functions=fns)
    assert flow.metadata.name == "parallel-flow"
    assert flow.metadata.annotations == {
        "flowcraft.io/blueprint-id": "Parallel_Flow",
        "flowcraft.io/blueprint-version": "1.2",
    }
    assert [n.id for n in flow.spec.nodes] == ["start", "gather"]
    assert flow.spec.edges[0].target == "gather"
    assert set(flow.spec.functions) == {"task", "gather"}


def test_blueprint_as_text_and_mapping_functions() -> None:
    flow = load_flow(json.dumps(BLUEPRINT), functions={**FUNCTIONS, "gather": {"python": "m:f"}})
    assert flow.spec.functions["gather"].python == "m:f"


def test_blueprint_without_functions_is_explained() -> None:
    with pytest.raises(FlowValidationError, match="functions file"):
        load_flow(json.dumps(BLUEPRINT))


def test_blueprint_id_that_cannot_become_a_name() -> None:
    with pytest.raises(FlowValidationError, match=r"blueprint id '___'"):
        load_flow(json.dumps({**BLUEPRINT, "id": "___"}), functions=FUNCTIONS)


def test_sanitize_name() -> None:
    assert sanitize_name("My_Flow v2") == "my-flow-v2"
    assert sanitize_name("x" * 80) == "x" * 63


def test_functions_file_errors_have_paths() -> None:
    with pytest.raises(FlowValidationError) as info:
        load_functions({"task": {"script": "x", "python": "a:b"}})
    assert "functions.task" in str(info.value)
    assert "script and python" in str(info.value)


def test_manifest_plus_functions_file_merge_and_clash() -> None:
    data = manifest(nodes=[{"id": "a", "uses": "extra"}], functions={})
    flow = load_flow(data, functions={"extra": {"image": "busybox:1"}})
    assert flow.spec.functions["extra"].kind == "container"
    clash = manifest()
    with pytest.raises(FlowValidationError, match="'task' is defined both"):
        load_flow(clash, functions=FUNCTIONS)


# -- one test per problem -------------------------------------------------------------------


def test_duplicate_node_ids() -> None:
    msg = only(manifest(nodes=[{"id": "a", "uses": "task"}, {"id": "a", "uses": "task"}]))
    assert msg.startswith("spec.nodes[1].id:")
    assert "duplicate node id 'a'" in msg
    assert "spec.nodes[0]" in msg


def test_edge_to_unknown_node() -> None:
    msg = only(manifest(edges=[{"source": "a", "target": "ghost"}]))
    assert msg.startswith("spec.edges[0].target:")
    assert "'ghost'" in msg


def test_edge_from_unknown_node() -> None:
    msg = only(manifest(edges=[{"source": "nobody", "target": "a"}]))
    assert msg.startswith("spec.edges[0].source:")
    assert "'nobody'" in msg


def test_unknown_uses() -> None:
    msg = only(manifest(nodes=[{"id": "a", "uses": "nope"}]))
    assert msg.startswith("spec.nodes[0].uses:")
    assert "unknown function 'nope'" in msg
    assert "task" in msg


def test_cycle_is_printed_in_order() -> None:
    nodes = [{"id": n, "uses": "task"} for n in ("a", "b", "c", "d")]
    edges = [
        {"source": "d", "target": "a"},
        {"source": "a", "target": "b"},
        {"source": "b", "target": "c"},
        {"source": "c", "target": "a"},
    ]
    msg = only(manifest(nodes=nodes, edges=edges))
    assert msg == "spec.edges: cycle: a -> b -> c -> a"


def test_self_loop_is_a_cycle() -> None:
    msg = only(manifest(edges=[{"source": "a", "target": "a"}]))
    assert "cycle: a -> a" in msg


def test_cycle_through_fallback() -> None:
    nodes = [
        {"id": "a", "uses": "task", "config": {"fallback": "f"}},
        {"id": "f", "uses": "task"},
        {"id": "b", "uses": "task"},
    ]
    found = problems(
        manifest(
            nodes=nodes, edges=[{"source": "f", "target": "b"}, {"source": "b", "target": "a"}]
        )
    )
    assert any("cycle: a -(fallback)-> f -> b -> a" in p for p in found), found


def test_unknown_fallback() -> None:
    nodes = [{"id": "a", "uses": "task", "config": {"fallback": "ghost"}}]
    msg = only(manifest(nodes=nodes))
    assert msg.startswith("spec.nodes[0].config.fallback:")
    assert "unknown fallback node 'ghost'" in msg


def test_fallback_pointing_to_itself() -> None:
    msg = only(manifest(nodes=[{"id": "a", "uses": "task", "config": {"fallback": "a"}}]))
    assert msg.startswith("spec.nodes[0].config.fallback:")
    assert "'a' names itself" in msg


def test_fallback_with_incoming_edges() -> None:
    nodes = [
        {"id": "a", "uses": "task", "config": {"fallback": "f"}},
        {"id": "f", "uses": "task"},
        {"id": "b", "uses": "task"},
    ]
    msg = only(manifest(nodes=nodes, edges=[{"source": "b", "target": "f"}]))
    assert "fallback node 'f' of 'a' must not have incoming edges" in msg


def test_fallback_shared_by_two_nodes() -> None:
    nodes = [
        {"id": "a", "uses": "task", "config": {"fallback": "f"}},
        {"id": "b", "uses": "task", "config": {"fallback": "f"}},
        {"id": "f", "uses": "task"},
    ]
    msg = only(manifest(nodes=nodes))
    assert msg.startswith("spec.nodes[1].config.fallback:")
    assert "fallback of several nodes (a, b)" in msg


@pytest.mark.parametrize("field", ["condition", "transform"])
def test_bad_expression_names_edge_and_expression(field: str) -> None:
    nodes = [{"id": "a", "uses": "task"}, {"id": "b", "uses": "task"}]
    msg = only(manifest(nodes=nodes, edges=[{"source": "a", "target": "b", field: "result.x +"}]))
    assert msg.startswith(f"spec.edges[0].{field}:")
    assert "a -> b" in msg
    assert "'result.x +'" in msg
    assert "syntax error at 1:" in msg


def test_empty_flow() -> None:
    msg = only(manifest(nodes=[]))
    assert msg.startswith("spec.nodes:")
    assert "no nodes" in msg


@pytest.mark.parametrize(
    ("node_id", "rule"),
    [
        ("a/b", "must not contain '/'"),
        ("t" * 254, "must be at most 253 characters (has 254)"),
        ("", "must not be empty"),
    ],
)
def test_node_id_that_cannot_work_is_rejected(node_id: str, rule: str) -> None:
    msg = only(manifest(nodes=[{"id": node_id, "uses": "task"}]))
    assert msg.startswith("spec.nodes[0].id:")
    assert f"node id {node_id!r} {rule}" in msg


@pytest.mark.parametrize(
    "node_id",
    ["fetchUser", "double-items_scatter", "Task_1", "-x-", "two words", "naïve", "t" * 253],
)
def test_node_ids_are_any_string_flowcraft_accepts(node_id: str) -> None:
    flow = parse_flow(manifest(nodes=[{"id": node_id, "uses": "task"}]))
    assert flow.spec.nodes[0].id == node_id


@pytest.mark.parametrize(
    ("function", "expected"),
    [
        ({}, "set one of script (inline Python), python (pkg.mod:fn) or image"),
        ({"script": "x", "python": "a:b"}, "found script and python"),
        ({"python": "not a ref"}, "python must look like 'package.module:function'"),
        ({"python": "pkg.mod"}, "got 'pkg.mod'"),
        ({"script": "x", "command": ["sh"]}, "command/args apply to container functions only"),
    ],
)
def test_bad_function_spec(function: dict[str, Any], expected: str) -> None:
    msg = only(manifest(functions={"task": function}))
    assert msg.startswith("spec.functions.task:")
    assert expected in msg


def test_function_kinds() -> None:
    assert FunctionSpec(script="x").kind == "script"
    assert FunctionSpec(python="a.b:c").kind == "python"
    assert FunctionSpec(python="a.b:c", image="img:1").kind == "python"
    assert FunctionSpec(image="img:1").kind == "container"


def test_pydantic_errors_have_camel_case_paths() -> None:
    data = manifest(nodes=[{"id": "a", "uses": "task", "config": {"maxRetries": 0}}])
    msg = only(data)
    assert msg.startswith("spec.nodes[0].config.maxRetries:")
    assert "greater than or equal to 1" in msg


def test_bad_inputs_give_one_readable_problem() -> None:
    msg = only(manifest(nodes=[{"id": "a", "uses": "task", "inputs": 5}]))
    assert msg.startswith("spec.nodes[0].inputs: inputs must be a context key (string)")


def test_unknown_field_is_reported() -> None:
    data = manifest(nodes=[{"id": "a", "uses": "task", "config": {"maxRetry": 3}}])
    msg = only(data)
    assert msg == "spec.nodes[0].config.maxRetry: unknown field 'maxRetry'"


def test_missing_field_is_reported() -> None:
    msg = only(manifest(nodes=[{"id": "a"}]))
    assert msg == "spec.nodes[0].uses: required field is missing"


def test_flow_level_ranges() -> None:
    found = problems(manifest(parallelism=0, activeDeadlineSeconds=0))
    assert any(p.startswith("spec.parallelism:") for p in found)
    assert any(p.startswith("spec.activeDeadlineSeconds:") for p in found)


def test_several_problems_are_reported_together_and_readably() -> None:
    data = manifest(
        nodes=[{"id": "A/1", "uses": "nope"}, {"id": "b", "uses": "task"}],
        edges=[{"source": "b", "target": "zz"}],
    )
    with pytest.raises(FlowValidationError) as info:
        parse_flow(data)
    text = str(info.value)
    lines = text.splitlines()
    assert lines[0] == "invalid flow: 3 problems"
    assert any("spec.nodes[0].id" in line for line in lines[1:])
    assert any("spec.nodes[0].uses" in line for line in lines[1:])
    assert any("spec.edges[0].target" in line for line in lines[1:])
    assert "Traceback" not in text


def test_bad_yaml_is_reported_with_position() -> None:
    with pytest.raises(FlowValidationError, match=r"not valid YAML/JSON at line 3, column 1"):
        load_flow("spec:\n  nodes: [\n")


def test_missing_file_is_reported(tmp_path: Path) -> None:
    with pytest.raises(FlowValidationError, match="cannot read flow file"):
        load_flow(tmp_path / "missing.yaml")


def test_non_mapping_document() -> None:
    with pytest.raises(FlowValidationError, match="must be a mapping"):
        load_flow("- a\n- b\n")


def test_wrong_kind_and_bad_name() -> None:
    data = manifest()
    data["kind"] = "Pipeline"
    found = problems(data)
    assert any(p.startswith("kind:") for p in found)
    data = manifest()
    data["metadata"]["name"] = "Bad_Name"
    assert only(data).startswith("metadata.name: flow name 'Bad_Name'")


def test_flow_model_validate_directly_from_cr_body() -> None:
    body = manifest()
    body["status"] = {"phase": "Running", "nodes": {"a": {"phase": "Running", "attempts": 1}}}
    flow = Flow.model_validate(body)
    assert flow.status is not None
    assert flow.status.nodes["a"].attempts == 1
