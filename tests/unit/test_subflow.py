"""Subflows: flowcraft's SubflowNode rules (pure), blueprint loading and checks, the local
runner running a subflow node as a nested run (nested, failing, missing, too deep, timed out),
and `flowcraft run/validate --blueprints`."""

from __future__ import annotations

import asyncio
import json
import textwrap
from pathlib import Path
from typing import Any

import pytest

from flowcraft.cli import main
from flowcraft.drivers.local import LocalRunner, RunResult
from flowcraft.engine import subflow
from flowcraft.model import Flow, FlowStatus, FlowValidationError, NodeSpec, load_flow
from flowcraft.model.blueprint import (
    Blueprint,
    BlueprintSpec,
    check_blueprint,
    check_blueprints,
    child_spec,
    load_blueprints,
)

pytestmark = pytest.mark.unit


def spec(nodes: list[str], edges: list[tuple[str, str]] = ()) -> BlueprintSpec:  # type: ignore[assignment]
    return BlueprintSpec.model_validate(
        {
            "nodes": [{"id": n, "uses": "f"} for n in nodes],
            "edges": [{"source": s, "target": t} for s, t in edges],
        }
    )


def params(**values: Any) -> subflow.SubflowParams:
    return subflow.SubflowParams.of(
        NodeSpec(id="sub", uses="subflow", params={"blueprintId": "bp", **values})
    )


# ------------------------------------------------------------------------- pure rules


def test_start_and_terminal_nodes_are_flowcrafts() -> None:
    graph = spec(["a", "b", "c", "d"], [("a", "b"), ("a", "c")])
    assert subflow.start_nodes(graph) == ["a", "d"]
    assert subflow.terminal_nodes(graph) == ["b", "c", "d"]


def test_inputs_read_the_key_then_its_output() -> None:
    parent = {"val1": 10, "_outputs.prep": "ready", "prep": "shadowed", "nothing": None}
    got = subflow.initial_context(
        params(inputs={"a": "val1", "b": "prep", "c": "absent", "d": "nothing", "e": "x"}),
        {**parent, "_outputs.x": 5},
        "ignored",
        spec(["n"]),
    )
    # `prep` exists as a key, so flowcraft reads it before `_outputs.prep`; null stays null;
    # a key absent in both stays undefined (left out).
    assert got == {"a": 10, "b": "shadowed", "d": None, "e": 5}


def test_without_inputs_the_node_input_goes_to_every_start_node() -> None:
    graph = spec(["a", "b", "c"], [("a", "c")])
    assert subflow.initial_context(params(), {}, [1, 2], graph) == {
        "_inputs.a": [1, 2],
        "_inputs.b": [1, 2],
    }
    assert subflow.initial_context(params(), {}, None, graph) == {}


def test_outputs_mapping_writes_and_returns_the_whole_context() -> None:
    final = {"a": 1, "_outputs.add": 30, "add": 31, "plain": "p", "_outputs.nul": None, "nul": 7}
    got = subflow.result(
        params(outputs={"sum": "add", "p": "plain", "n": "nul", "gone": "missing"}),
        spec(["add"]),
        final,
    )
    assert got.output == final
    assert got.writes == (
        {"op": "set", "key": "sum", "value": 30},
        {"op": "set", "key": "p", "value": "p"},
        {"op": "set", "key": "n", "value": 7},  # `??`: a null output falls through
        {"op": "set", "key": "gone", "value": None},
    )


def test_without_outputs_the_terminal_outputs_are_the_result() -> None:
    final = {"_outputs.a": 1, "_outputs.b": 2, "_outputs.c": 3}
    one = subflow.result(params(), spec(["a", "b"], [("a", "b")]), final)
    assert (one.output, one.writes) == (2, ())
    several = subflow.result(params(), spec(["a", "b", "c"], [("a", "b")]), final)
    assert several.output == {"b": 2, "c": 3}


def test_failure_message_names_blueprint_phase_and_first_error() -> None:
    status = FlowStatus(phase="Failed", errors=["node 'x' failed after 1 attempt: boom", "2nd"])
    assert subflow.failure_message("bp", status) == (
        "sub-workflow 'bp' did not complete successfully. Status: Failed. "
        "Error: node 'x' failed after 1 attempt: boom"
    )


def test_depth_bound_names_the_chain() -> None:
    assert subflow.depth_problem(["main", *["bp"] * subflow.MAX_DEPTH]) is None
    why = subflow.depth_problem(["main", *["bp"] * (subflow.MAX_DEPTH + 1)])
    assert why is not None
    assert why.startswith(f"subflows nest at most {subflow.MAX_DEPTH} levels deep")
    assert why.endswith("main -> bp -> bp -> bp -> bp -> bp -> bp -> bp -> bp -> bp -> bp -> bp")


def test_bad_params_are_named() -> None:
    with pytest.raises(subflow.SubflowError, match=r"'n' is missing params.blueprintId"):
        subflow.SubflowParams.of(NodeSpec(id="n", uses="subflow"))
    with pytest.raises(subflow.SubflowError, match=r"params.outputs must map"):
        subflow.SubflowParams.of(
            NodeSpec(id="n", uses="subflow", params={"blueprintId": "b", "outputs": ["x"]})
        )


def test_child_spec_merges_functions_and_inherits_options() -> None:
    parent = load_flow(MAIN).spec
    bp = BlueprintSpec.model_validate(
        {"nodes": [{"id": "x", "uses": "double"}], "functions": {"double": {"script": S}}}
    )
    child = child_spec(parent, bp, {"k": 1})
    assert child.functions["double"].script == S  # the blueprint's own wins
    assert set(parent.functions) <= set(child.functions)
    assert (child.fail_fast, child.context) == (parent.fail_fast, {"k": 1})
    assert child_spec(parent, bp, {}).context is None


# ------------------------------------------------------------------------ local runner

S = "def run(ctx):\n    return ctx.input\n"

MAIN = """
apiVersion: flowcraft.io/v1alpha1
kind: Flow
metadata: {name: main}
spec:
  functions:
    seed:
      script: |
        def run(ctx):
            ctx.set("base", 5)
            return 2
    double:
      script: |
        def run(ctx):
            return (ctx.input or 0) * 2
    add-base:
      script: |
        def run(ctx):
            return ctx.input + ctx.get("base", 0)
    fail:
      script: |
        def run(ctx):
            raise RuntimeError("inner boom")
    slow:
      script: |
        import time
        def run(ctx):
            time.sleep(30)
  nodes:
    - {id: seed, uses: seed}
    - {id: sub, uses: subflow, params: {blueprintId: pipeline}}
    - {id: after, uses: double}
  edges:
    - {source: seed, target: sub}
    - {source: sub, target: after}
"""


def blueprint(
    bid: str, nodes: list[dict[str, Any]], edges: list[tuple[str, str]] = ()
) -> Blueprint:  # type: ignore[assignment]
    return Blueprint.model_validate(
        {
            "metadata": {"name": bid},
            "spec": {
                "nodes": nodes,
                "edges": [{"source": s, "target": t} for s, t in edges],
            },
        }
    )


PIPELINE = blueprint(
    "pipeline",
    [{"id": "d", "uses": "double"}, {"id": "b", "uses": "add-base"}],
    [("d", "b")],
)


def run(flow: Flow, tmp_path: Path, blueprints: dict[str, Blueprint], **kw: Any) -> RunResult:
    runner = LocalRunner(flow, tmp_path / "run", blueprints=blueprints, **kw)
    return asyncio.run(runner.run())


def with_sub(params_: dict[str, Any], config: str = "") -> Flow:
    text = MAIN.replace("params: {blueprintId: pipeline}", f"params: {json.dumps(params_)}")
    if config:
        text = text.replace("- {id: sub, uses: subflow,", f"- {{id: sub, uses: subflow, {config},")
    return load_flow(text)


def test_subflow_runs_as_a_nested_run(tmp_path: Path) -> None:
    result = run(load_flow(MAIN), tmp_path, {"pipeline": PIPELINE})
    assert result.status.phase == "Succeeded", result.status.errors
    # input 2 -> _inputs.d -> d = 4 -> b = 4 + base; base is not visible in the child
    # (no inputs mapping: only the start nodes' _inputs), so b = 4.
    assert result.outputs["sub"] == 4
    assert result.outputs["after"] == 8
    child_dir = tmp_path / "run" / "nodes" / "sub" / "1" / "subflow"
    assert (child_dir / "outputs" / "b.json").read_text() == "4"
    assert "ended Succeeded" in (tmp_path / "run" / "nodes" / "sub" / "1" / "log.txt").read_text()


def test_inputs_and_outputs_mapping(tmp_path: Path) -> None:
    flow = with_sub(
        {
            "blueprintId": "pipeline",
            "inputs": {"base": "base", "_inputs.d": "seed"},
            "outputs": {"total": "b"},
        }
    )
    result = run(flow, tmp_path, {"pipeline": PIPELINE})
    # (`after` then fails: doubling the whole child context is a TypeError.)
    assert result.status.nodes["sub"].phase == "Succeeded", result.status.errors
    assert result.context["total"] == 9  # d = 2 * 2, b = 4 + base 5
    assert result.outputs["sub"]["_outputs.d"] == 4
    assert result.outputs["sub"]["base"] == 5


def test_nested_subflows(tmp_path: Path) -> None:
    outer = blueprint(
        "outer", [{"id": "inner", "uses": "subflow", "params": {"blueprintId": "pipeline"}}]
    )
    flow = with_sub({"blueprintId": "outer"})
    result = run(flow, tmp_path, {"pipeline": PIPELINE, "outer": outer})
    assert result.status.phase == "Succeeded", result.status.errors
    assert result.outputs["sub"] == 4
    nested = tmp_path / "run/nodes/sub/1/subflow/nodes/inner/1/subflow/outputs/b.json"
    assert nested.read_text() == "4"


def test_child_failure_fails_the_node_with_flowcrafts_message(tmp_path: Path) -> None:
    broken = blueprint("pipeline", [{"id": "x", "uses": "fail"}])
    result = run(load_flow(MAIN), tmp_path, {"pipeline": broken})
    assert result.status.phase == "Failed"
    message = result.status.nodes["sub"].message or ""
    assert message.startswith(
        "sub-workflow 'pipeline' did not complete successfully. Status: Failed. "
        "Error: node 'x' failed after 1 attempt: "
    )
    assert "inner boom" in message
    assert result.status.nodes["after"].phase in ("Skipped", "Cancelled")


def test_failure_is_retried_and_recovered_like_any_node(tmp_path: Path) -> None:
    broken = blueprint("pipeline", [{"id": "x", "uses": "fail"}])
    flow = with_sub({"blueprintId": "pipeline"}, "config: {maxRetries: 2}")
    result = run(flow, tmp_path, {"pipeline": broken})
    assert result.status.nodes["sub"].attempts == 2
    assert (tmp_path / "run/nodes/sub/2/subflow").is_dir()


def test_missing_blueprint_fails_the_node(tmp_path: Path) -> None:
    result = run(load_flow(MAIN), tmp_path, {"other": PIPELINE})
    assert result.status.phase == "Failed"
    assert result.status.nodes["sub"].message == (
        "subflow node 'sub' runs blueprint 'pipeline', which is not among the blueprints "
        "given (known: other)"
    )
    no_registry = asyncio.run(LocalRunner(load_flow(MAIN), tmp_path / "r2").run())
    assert "no blueprints were given (flowcraft run --blueprints" in (
        no_registry.status.nodes["sub"].message or ""
    )


def test_recursion_is_bounded(tmp_path: Path) -> None:
    loop = blueprint(
        "pipeline", [{"id": "again", "uses": "subflow", "params": {"blueprintId": "pipeline"}}]
    )
    result = run(load_flow(MAIN), tmp_path, {"pipeline": loop})
    assert result.status.phase == "Failed"
    message = result.status.nodes["sub"].message or ""
    # Each level reports its child's failure; the innermost names the whole chain.
    assert "subflows nest at most 10 levels deep; this one would be level 11: main -> " in message
    assert message.count("sub-workflow 'pipeline' did not complete") == subflow.MAX_DEPTH


def test_timeout_cancels_the_child_run(tmp_path: Path) -> None:
    slow = blueprint("pipeline", [{"id": "z", "uses": "slow"}])
    flow = with_sub({"blueprintId": "pipeline"}, "config: {timeout: 1000}")
    result = run(flow, tmp_path, {"pipeline": slow})
    ns = result.status.nodes["sub"]
    assert (ns.phase, ns.reason) == ("Failed", "Timeout")
    assert "timed out after 1 s (the subflow was cancelled)" in (ns.message or "")
    assert "ended Cancelled" in (tmp_path / "run/nodes/sub/1/log.txt").read_text()


# ------------------------------------------------------------- files and the command


def write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text))
    return path


def test_load_blueprints_from_files_and_dirs(tmp_path: Path) -> None:
    d = tmp_path / "bps"
    d.mkdir()
    write(d / "a.json", json.dumps({"id": "my_bp", "nodes": [{"id": "n", "uses": "f", "x": 1}]}))
    write(
        d / "b.yaml",
        """
        apiVersion: flowcraft.io/v1alpha1
        kind: Blueprint
        metadata: {name: kube-bp}
        spec: {nodes: [{id: x, uses: f}]}
        """,
    )
    write(d / "notes.json", "[1, 2]")
    flow_file = write(
        tmp_path / "flow.yaml",
        "apiVersion: flowcraft.io/v1alpha1\nkind: Flow\nmetadata: {name: as-flow}\n"
        "spec: {nodes: [{id: x, uses: f}], functions: {f: {script: 'def run(ctx): pass'}}}\n",
    )
    loaded = load_blueprints([d, flow_file])
    assert sorted(loaded.blueprints) == ["as-flow", "kube-bp", "my_bp"]
    assert loaded.blueprints["my_bp"].metadata.name == "my-bp"
    assert [str(w) for w in loaded.warnings] == [
        f"nodes[0].x ({d / 'a.json'}): ignored (not part of the blueprint format)",
        f"{d / 'notes.json'}: skipped: not a blueprint (flowcraft {{id, nodes, edges}}, "
        "kind Blueprint or Flow)",
    ]
    with pytest.raises(FlowValidationError) as err:
        load_blueprints([d / "notes.json", d, d / "a.json"])
    text = str(err.value)
    assert f"{d / 'notes.json'}: not a blueprint" in text
    assert "blueprint id 'my_bp' is defined twice" in text


def test_check_blueprints_reports_missing_ids_and_broken_blueprints() -> None:
    flow = load_flow(MAIN)
    bad = blueprint(
        "pipeline",
        [
            {"id": "x", "uses": "nope"},
            {"id": "y", "uses": "subflow", "params": {"blueprintId": "gone"}},
        ],
    )
    problems = [str(p) for p in check_blueprints(flow.spec, {"pipeline": bad}, {"pipeline": "f"})]
    assert problems[0].startswith(
        "blueprint pipeline.nodes[0].uses (f): node 'x' uses unknown function 'nope'"
    )
    assert problems[1] == (
        "blueprint pipeline.nodes[1].params.blueprintId (f): subflow node 'y' runs blueprint "
        "'gone', which no --blueprints file defines (known: pipeline)"
    )
    assert check_blueprints(flow.spec, {"pipeline": PIPELINE}) == []


def test_cli_run_with_blueprints(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    main_file = write(tmp_path / "main.yaml", MAIN)
    bp_file = write(
        tmp_path / "pipeline.json",
        json.dumps({"id": "pipeline", "nodes": [{"id": "d", "uses": "double"}]}),
    )
    assert (
        main(["run", str(main_file), "--blueprints", str(bp_file), "--output", "json", "-q"]) == 0
    )
    assert json.loads(capsys.readouterr().out)["_outputs.after"] == 8
    assert main(["validate", str(main_file), "--blueprints", str(bp_file)]) == 0
    assert "ok: flow main: 3 nodes, 2 edges, 1 blueprint" in capsys.readouterr().out
    other = write(tmp_path / "other.json", json.dumps({"id": "other", "nodes": []}))
    assert main(["validate", str(main_file), "--blueprints", str(other)]) == 2
    err = capsys.readouterr().err
    assert (
        "spec.nodes[1].params.blueprintId: subflow node 'sub' runs blueprint 'pipeline', which "
        "no --blueprints file defines (known: other)"
    ) in err
    assert main(["run", str(main_file), "--blueprints", str(tmp_path / "nope")]) == 2
    assert "--blueprints" in capsys.readouterr().err


def _alone(**spec: Any) -> list[str]:
    """check_blueprint's problems for a Blueprint of two nodes using a parent's `add`."""
    nodes = [{"id": "a", "uses": "add"}, {"id": "b", "uses": "add"}]
    data = {"nodes": nodes, **spec}
    return [str(p) for p in check_blueprint(BlueprintSpec.model_validate(data))]


def test_a_blueprint_alone_assumes_its_parents_functions_and_checks_the_graph() -> None:
    assert _alone(edges=[{"source": "a", "target": "b"}]) == []
    assert _alone(edges=[{"source": "a", "target": "zz"}]) == [
        "spec.edges[0].target: edge a -> zz: unknown target node 'zz'"
    ]
    # A built-in node is checked as one (a subflow needs its blueprintId).
    problems = _alone(nodes=[{"id": "s", "uses": "subflow"}])
    (problem,) = problems
    assert "blueprintId" in problem


def test_a_blueprints_expressions_are_read_in_its_language_else_in_both() -> None:
    js_only = [{"source": "a", "target": "b", "condition": "input === 1"}]
    # No language of its own: the parent's decides, so only what neither reads is reported.
    assert _alone(edges=js_only) == []
    cel = _alone(edges=js_only, expressionLanguage="cel")
    (problem,) = cel
    assert problem.startswith("spec.edges[0].condition")
    broken = [{"source": "a", "target": "b", "condition": "(("}]
    problems = _alone(edges=broken)
    (problem,) = problems
    assert problem.startswith("spec.edges[0].condition")


def test_validate_checks_a_blueprint_manifest_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = {
        "apiVersion": "flowcraft.io/v1alpha1",
        "kind": "Blueprint",
        "metadata": {"name": "math"},
        "spec": {"id": "math_subflow", "nodes": [{"id": "a", "uses": "add"}]},
    }
    good = write(tmp_path / "good.yaml", json.dumps(manifest))
    assert main(["validate", str(good)]) == 0
    assert capsys.readouterr().out == "ok: blueprint math_subflow: 1 node, 0 edges\n"
    manifest["spec"]["edges"] = [{"source": "a", "target": "a"}]
    bad = write(tmp_path / "bad.yaml", json.dumps(manifest))
    assert main(["validate", str(bad)]) == 2
    assert capsys.readouterr().err == (
        f"flowcraft: error: invalid blueprint ({bad}): 1 problem\n  - spec.edges: cycle: a -> a\n"
    )
    # run needs the flow that runs it: the message says so instead of "kind must be Flow".
    assert main(["run", str(good)]) == 2
    assert "this is a Blueprint, which runs as a subflow node's graph" in capsys.readouterr().err
