"""The loader reads what flowcraft and kubectl read: initial context, blueprint keys, YAML 1.1.

Three promises: `--initial-context` files become `spec.context` (merged over the manifest's);
a blueprint's unknown keys are dropped with a warning (flowcraft ignores them) while a
manifest still rejects typos; and YAML means what it will mean on the cluster (go-yaml v2 via
kubectl), with a warning wherever an unquoted word silently became a boolean.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

from flowcraft.model import FlowValidationError, Problem, dump_flow, load_flow
from flowcraft.model.blueprint_json import blueprint_to_manifest
from flowcraft.model.kubectl_yaml import dump_yaml, read_yaml
from flowcraft.model.loader import load_flow_with_warnings, load_initial_context

pytestmark = pytest.mark.unit

FUNCTIONS = {"task": {"script": "def run(ctx):\n    return 1\n"}}

BLUEPRINT: dict[str, Any] = {
    "id": "bp",
    "nodes": [
        {"id": "a", "uses": "task", "_sourceLocation": {"file": "x.ts", "line": 1}},
        {"id": "b", "uses": "task", "params": {"_private": 1}},
    ],
    "edges": [{"source": "a", "target": "b"}],
    "metadata": {"version": "1", "cycleEntryPoints": [], "author": "someone"},
}


def manifest_text(body: str) -> str:
    head = "apiVersion: flowcraft.io/v1alpha1\nkind: Flow\nmetadata: {name: m}\nspec:\n"
    head += "  functions:\n    task: {script: 'def run(ctx): return 1'}\n"
    return head + textwrap.indent(textwrap.dedent(body), "  ")


# -- initial context ---------------------------------------------------------------------


def test_initial_context_from_json_and_yaml_files(tmp_path: Path) -> None:
    as_json = tmp_path / "ctx.json"
    as_json.write_text(json.dumps({"user": {"id": 7}, "items": [1, 2]}))
    as_yaml = tmp_path / "ctx.yaml"
    as_yaml.write_text("user: {id: 7}\nitems: [1, 2]\n")
    assert load_initial_context(as_json) == load_initial_context(as_yaml)
    flow = load_flow(json.dumps(BLUEPRINT), functions=FUNCTIONS, initial_context=as_yaml)
    assert flow.spec.context == {"user": {"id": 7}, "items": [1, 2]}


def test_initial_context_keys_win_over_the_manifest(tmp_path: Path) -> None:
    text = manifest_text("""\
        context: {keep: 1, both: manifest}
        nodes: [{id: a, uses: task}]
        """)
    ctx = tmp_path / "ctx.json"
    ctx.write_text('{"both": "file", "new": true}')
    flow = load_flow(text, initial_context=ctx)
    assert flow.spec.context == {"keep": 1, "both": "file", "new": True}
    assert load_flow(text).spec.context == {"keep": 1, "both": "manifest"}


@pytest.mark.parametrize(
    ("content", "got"),
    [("[1, 2]", "a list"), ('"text"', "a string"), ("", "nothing"), ("3", "int")],
)
def test_initial_context_must_be_an_object(tmp_path: Path, content: str, got: str) -> None:
    ctx = tmp_path / "ctx.json"
    ctx.write_text(content)
    with pytest.raises(FlowValidationError) as info:
        load_initial_context(ctx)
    assert f"initial context file {str(ctx)!r} must hold a JSON/YAML object" in str(info.value)
    assert f"got {got}" in str(info.value)


def test_initial_context_bad_yaml_and_missing_file_name_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "ctx.yaml"
    bad.write_text("a: [unclosed\n")
    with pytest.raises(FlowValidationError, match=r"initial context is not valid YAML/JSON"):
        load_initial_context(bad)
    with pytest.raises(FlowValidationError, match=r"cannot read initial context file"):
        load_initial_context(tmp_path / "missing.json")


# -- blueprints: unknown keys, flowcraft's defaults -----------------------------------------


def test_unknown_blueprint_keys_are_dropped_with_a_warning_each() -> None:
    blueprint = {
        **BLUEPRINT,
        "version": 2,
        "nodes": [
            {"id": "a", "uses": "task", "label": "A", "config": {"maxRetries": 2, "color": 1}},
            {"id": "b", "uses": "task", "max_retries": 3},
        ],
        "edges": [{"source": "a", "target": "b", "weight": 3, "_sourceLocation": {}}],
    }
    flow, warnings = load_flow_with_warnings(json.dumps(blueprint), functions=FUNCTIONS)
    assert [str(w) for w in warnings] == [
        "version: ignored (not part of the blueprint format)",
        "nodes[0].label: ignored (not part of the blueprint format)",
        "nodes[0].config.color: ignored (not part of the blueprint format)",
        "nodes[1].max_retries: ignored (not part of the blueprint format)",
        "edges[0].weight: ignored (not part of the blueprint format)",
    ]
    assert flow.spec.nodes[0].config.max_retries == 2
    assert flow.spec.nodes[1].config.max_retries == 1  # snake_case is not the blueprint format


def test_blueprint_private_keys_and_metadata_extras_are_silent() -> None:
    flow, warnings = load_flow_with_warnings(json.dumps(BLUEPRINT), functions=FUNCTIONS)
    assert warnings == []
    # Params are the node's own data: an underscore key there is kept.
    assert flow.spec.nodes[1].params == {"_private": 1}


def test_blueprint_to_manifest_collects_warnings_when_asked() -> None:
    collected: list[Problem] = []
    manifest = blueprint_to_manifest(
        {**BLUEPRINT, "edges": [{"source": "a", "target": "b", "x": 1}]},
        FUNCTIONS,
        warnings=collected,
    )
    assert manifest["spec"]["edges"] == [{"source": "a", "target": "b"}]
    assert collected == [Problem("edges[0].x", "ignored (not part of the blueprint format)")]
    blueprint_to_manifest(BLUEPRINT, FUNCTIONS)  # without a list: still fine


def test_manifest_typos_are_still_rejected() -> None:
    text = manifest_text("nodes: [{id: a, uses: task, lable: A}]\n")
    with pytest.raises(FlowValidationError, match=r"spec\.nodes\[0\]\.lable: unknown field"):
        load_flow(text)


def test_blueprints_default_to_flowcraft_behaviour() -> None:
    flow = load_flow(json.dumps(BLUEPRINT), functions=FUNCTIONS)
    assert flow.spec.fail_fast is False
    assert flow.spec.expression_language == "flowcraft"
    manifest = load_flow(manifest_text("nodes: [{id: a, uses: task}]\n"))
    assert manifest.spec.fail_fast is True


# -- YAML as kubectl reads it ----------------------------------------------------------------

GO_YAML_V2_BOOLS = {
    **dict.fromkeys(["y", "Y", "yes", "Yes", "YES", "on", "On", "ON"], True),
    **dict.fromkeys(["n", "N", "no", "No", "NO", "off", "Off", "OFF"], False),
}


@pytest.mark.parametrize(("word", "value"), sorted(GO_YAML_V2_BOOLS.items()))
def test_every_yaml_1_1_boolean_word_is_a_boolean_with_a_warning(word: str, value: bool) -> None:
    data, warnings = read_yaml(f"v: {word}\n{word}: 1\n")
    assert data == {"v": value, "true" if value else "false": 1}
    assert [(w.path, w.line) for w in warnings] == [("v", 1), (word, 2)]
    assert f"unquoted {word!r} is read as the boolean {str(value).lower()}" in warnings[0].message
    assert f"quote it: {json.dumps(word)}" in warnings[0].message
    assert f'becomes the key "{str(value).lower()}"' in warnings[1].message


def test_quoted_literal_and_explicitly_tagged_scalars_give_no_warning() -> None:
    text = "a: 'n'\nb: \"yes\"\nc: true\nd: FALSE\ne: !!bool on\n'y': 1\nf: |\n  n\n"
    data, warnings = read_yaml(text)
    assert data == {"a": "n", "b": "yes", "c": True, "d": False, "e": True, "y": 1, "f": "n\n"}
    assert warnings == []


def test_json_text_gives_no_warning() -> None:
    data, warnings = read_yaml('{"n": "y", "on": [true, 1e3]}')
    assert data == {"n": "y", "on": [True, 1000.0]}
    assert warnings == []


def test_plain_scalars_resolve_as_go_yaml_v2_does() -> None:
    text = (
        "time: 12:30\nsci: 1e3\noctal: 0o17\nold_octal: 017\nhex: 0x1F\nunder: 1_000\n"
        "date: 2024-1-2\nstamp: 2024-01-02 10:00:00\neq: =\nnull_: ~\nempty:\ndot: .5\n"
        "nan: .NaN\n"
    )
    data, _ = read_yaml(text)
    assert data["time"] == "12:30"  # PyYAML would say 750 (base 60)
    assert data["sci"] == 1000.0  # PyYAML would say "1e3"
    assert (data["octal"], data["old_octal"], data["hex"], data["under"]) == (15, 15, 31, 1000)
    assert (data["date"], data["stamp"]) == ("2024-1-2", "2024-01-02 10:00:00")  # not dates
    assert (data["eq"], data["null_"], data["empty"], data["dot"]) == ("=", None, None, 0.5)
    assert data["nan"] != data["nan"]


def test_mapping_keys_become_json_strings_like_sigs_k8s_yaml() -> None:
    data, _ = read_yaml("p: {1: a, true: b, 0: c, n: d, 0x10: e, 1.5: f, 100.0: g, 1e6: h}\n")
    # 1/true and 0/n stay distinct keys (Python alone would merge True with 1).
    assert data == {
        "p": {"1": "a", "true": "b", "0": "c", "false": "d", "16": "e"}
        | {"1.5": "f", "100": "g", "1e+06": "h"}
    }
    for text in ("p: {~: 1}\n", "p: {? [a]\n: 1}\n"):
        with pytest.raises(yaml.YAMLError, match=r"mapping key is not allowed"):
            read_yaml(text)
    with pytest.raises(FlowValidationError, match=r"line 1.*null mapping key is not allowed"):
        load_flow("metadata: {~: x}\n")


def test_a_manifest_reaches_the_model_as_the_cluster_sees_it() -> None:
    text = manifest_text("""\
        nodes:
          - id: a
            uses: task
            params:
              n: 1
              answer: yes
              quoted: "no"
        """)
    flow, warnings = load_flow_with_warnings(text)
    assert flow.spec.nodes[0].params == {"false": 1, "answer": True, "quoted": "no"}
    assert [str(w) for w in warnings] == [
        "spec.nodes[0].params.n (line 11): unquoted key 'n' is read as the boolean false by "
        'kubectl (YAML 1.1) and becomes the key "false"; quote it: "n"',
        "spec.nodes[0].params.answer (line 12): unquoted 'yes' is read as the boolean true by "
        'kubectl (YAML 1.1); quote it: "yes"',
    ]


def test_a_boolean_where_a_string_belongs_is_an_error_as_on_the_cluster() -> None:
    with pytest.raises(FlowValidationError, match=r"spec\.nodes\[0\]\.id"):
        load_flow(manifest_text("nodes: [{id: n, uses: task}]\n"))


def test_side_files_warnings_name_their_file(tmp_path: Path) -> None:
    functions = tmp_path / "functions.yaml"
    functions.write_text("task:\n  image: busybox\n  args: [-v, 'y']\n  env: {y: '1'}\n")
    ctx = tmp_path / "ctx.yaml"
    ctx.write_text("flag: off\n")
    warnings = load_flow_with_warnings(
        json.dumps(BLUEPRINT), functions=functions, initial_context=ctx
    ).warnings
    assert [str(w).split(": unquoted")[0] for w in warnings] == [
        f"task.env.y ({functions}, line 4)",
        f"flag ({ctx}, line 1)",
    ]
    assert "by flowcraft (YAML 1.1, like kubectl)" in warnings[0].message


def test_problem_rendering() -> None:
    assert str(Problem("a.b", "m")) == "a.b: m"
    assert str(Problem("a.b", "m", line=3)) == "a.b (line 3): m"
    assert str(Problem("a", "m", line=3, source="f.yaml")) == "a (f.yaml, line 3): m"
    assert str(Problem("", "m")) == "m"


def test_dump_yaml_quotes_what_kubectl_would_misread() -> None:
    data = {"n": ["n", "Y", "off", "1e3", "0o17", "12:30", "2024-01-02", "", "="], "x": [True, 1]}
    text = dump_yaml(data)
    assert "'n':" in text
    assert "- 'n'" in text
    assert read_yaml(text) == (data, [])
    assert yaml.safe_load(text) == data  # and any other YAML reader agrees


def test_dump_flow_reads_back_as_kubectl_sees_it() -> None:
    flow = load_flow(manifest_text("nodes: [{id: a, uses: task, params: {'n': 'y'}}]\n"))
    again, warnings = load_flow_with_warnings(dump_flow(flow))
    assert again == flow
    assert warnings == []
