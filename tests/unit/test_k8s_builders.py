"""The node pod is the driver's contract with the runtime and with cluster security policy."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from flowcraft.contract import ViewItem
from flowcraft.drivers.kubernetes import builders, names, timeouts
from flowcraft.model import FunctionSpec, NodeSpec

pytestmark = pytest.mark.unit

FLOW = builders.FlowRef(name="parallel", namespace="ns1", uid="uid-1")


def _job(fn: FunctionSpec, **kw: Any) -> dict[str, Any]:
    node = NodeSpec(id="gather", uses="g", params={"a": 1})
    args: dict[str, Any] = {
        "timeout_seconds": None,
        "view": builders.View(
            order=(
                ViewItem("task-1", key="task-1"),
                ViewItem("fetchUser", key="fetchUser/2", wrote=True),
                ViewItem("recovered", inline=True, value=None),
            ),
            configmaps={"task-1": "parallel-task-1-1-out", "fetchUser/2": "parallel-fu-1-out"},
            context_configmap="parallel-context",
        ),
        "runner_image": "flowcraft-runner:0.1.0",
    }
    args.update(kw)
    return builders.job_manifest(FLOW, node, fn, 2, {"x": [1, 2]}, **args)


def test_job_identity_labels_and_owner() -> None:
    job = _job(FunctionSpec(script="def run(ctx): return 1"))
    meta = job["metadata"]
    assert meta["name"] == names.job_name("parallel", "uid-1", "gather", 2)
    assert meta["labels"][builders.LABEL_FLOW] == "parallel"
    assert meta["labels"][builders.LABEL_FLOW_UID] == "uid-1"
    assert meta["labels"][builders.LABEL_NODE] == "gather"
    assert meta["labels"][builders.LABEL_ATTEMPT] == "2"
    owner = meta["ownerReferences"][0]
    assert owner["kind"] == "Flow"
    assert owner["uid"] == "uid-1"
    assert owner["controller"] is True
    assert job["spec"]["template"]["metadata"]["labels"] == meta["labels"]


def test_job_runs_once_never_restarts_and_has_no_deadline_without_timeout() -> None:
    spec = _job(FunctionSpec(script="x"))["spec"]
    assert spec["backoffLimit"] == 0
    assert spec["template"]["spec"]["restartPolicy"] == "Never"
    assert "activeDeadlineSeconds" not in spec


def test_a_node_timeout_leaves_a_whole_second_backstop_deadline_to_the_job_controller() -> None:
    """The operator times the attempt itself; the Job's deadline only backs it up."""
    slack = timeouts.BACKSTOP_SECONDS
    job = _job(FunctionSpec(script="x"), timeout_seconds=1.2)
    assert job["spec"]["activeDeadlineSeconds"] == 2 + slack
    job = _job(FunctionSpec(script="x"), timeout_seconds=0.1)
    assert job["spec"]["activeDeadlineSeconds"] == 1 + slack


def test_pod_is_locked_down() -> None:
    pod = _job(FunctionSpec(script="x"))["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    sc = pod["containers"][0]["securityContext"]
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["readOnlyRootFilesystem"] is True
    assert {"name": "tmp", "emptyDir": {}} in pod["volumes"]


def test_script_node_runs_the_runtime_with_the_contract_env() -> None:
    job = _job(FunctionSpec(script="def run(ctx): return 1", env={"A": "b"}))
    c = job["spec"]["template"]["spec"]["containers"][0]
    assert c["image"] == "flowcraft-runner:0.1.0"
    assert c["command"] == ["python3", "-m", "flowcraft.runtime"]
    env = {e["name"]: e["value"] for e in c["env"]}
    assert env["FLOWCRAFT_NODE"] == "gather"
    assert env["FLOWCRAFT_ATTEMPT"] == "2"
    assert env["FLOWCRAFT_OUT"] == "/dev/termination-log"
    assert env["FLOWCRAFT_OUT_LIMIT"] == "1048576"  # a ConfigMap's data
    assert env["FLOWCRAFT_OUT_INLINE"] == "4096"  # the termination message
    assert env["FLOWCRAFT_IN"] == builders.IN_DIR
    assert env["A"] == "b"
    assert c["terminationMessagePath"] == "/dev/termination-log"
    assert c["terminationMessagePolicy"] == "File"
    assert c["imagePullPolicy"] == "IfNotPresent"


def test_inputs_are_one_projected_volume_from_annotations_and_output_configmaps() -> None:
    tpl = _job(FunctionSpec(script="def run(ctx): return 1"))["spec"]["template"]
    ann = tpl["metadata"]["annotations"]
    assert ann[builders.ANN_FUNCTION] == '{"script":"def run(ctx): return 1","name":"g"}'
    assert ann[builders.ANN_PARAMS] == '{"a":1}'
    assert ann[builders.ANN_INPUT] == '{"x":[1,2]}'
    assert json.loads(ann[builders.ANN_VIEW]) == [
        {"id": "task-1"},
        {"id": "fetchUser", "key": "fetchUser/2", "writes": True},
        {"id": "recovered", "value": None},
    ]
    (vol,) = [v for v in tpl["spec"]["volumes"] if v["name"] == "flowcraft-in"]
    down, context, cm, cm2 = vol["projected"]["sources"]
    paths = {i["path"]: i["fieldRef"]["fieldPath"] for i in down["downwardAPI"]["items"]}
    assert paths["function.json"] == "metadata.annotations['flowcraft.io/function']"
    assert paths["input.json"] == "metadata.annotations['flowcraft.io/input']"
    assert paths["view.json"] == "metadata.annotations['flowcraft.io/view']"
    assert context["configMap"] == {
        "name": "parallel-context",
        "items": [{"key": "initial.json", "path": "context.json"}],
    }
    assert cm["configMap"]["name"] == "parallel-task-1-1-out"
    assert cm["configMap"]["items"] == [{"key": "output.json", "path": "outputs/task-1.json"}]
    # A node that wrote to the context also contributes its writes; a recovered node
    # (no ConfigMap) is in the view only: the runtime shows it as null.
    assert cm2["configMap"]["items"] == [  # a later loop iteration's result: its key
        {"key": "output.json", "path": "outputs/fetchUser%2F2.json"},
        {"key": "writes.json", "path": "writes/fetchUser%2F2.json"},
    ]


def test_container_function_runs_the_users_image_as_given() -> None:
    fn = FunctionSpec(
        image="busybox:1.36",
        command=["sh", "-c"],
        args=["echo hi"],
        resources={"requests": {"cpu": "10m"}, "limits": {"memory": "64Mi"}},
    )
    c = _job(fn)["spec"]["template"]["spec"]["containers"][0]
    assert c["image"] == "busybox:1.36"
    assert c["command"] == ["sh", "-c"]
    assert c["args"] == ["echo hi"]
    assert c["resources"] == {"requests": {"cpu": "10m"}, "limits": {"memory": "64Mi"}}


def test_container_function_without_command_keeps_the_entrypoint() -> None:
    c = _job(FunctionSpec(image="img:1"))["spec"]["template"]["spec"]["containers"][0]
    assert "command" not in c
    assert "args" not in c


def test_oversized_payload_is_refused_with_the_limit_named() -> None:
    with pytest.raises(builders.ManifestTooLarge, match="byte limit"):
        _job(FunctionSpec(script="x" * (builders.MAX_PAYLOAD_BYTES + 1)))


def test_output_configmap_roundtrip() -> None:
    cm = builders.output_configmap(FLOW, "gather", 1, {"t1": "a", "n": None})
    assert cm["metadata"]["name"] == names.output_configmap_name("parallel", "uid-1", "gather", 1)
    assert cm["metadata"]["labels"][builders.LABEL_FLOW_UID] == "uid-1"
    assert cm["immutable"] is True
    assert cm["metadata"]["ownerReferences"][0]["uid"] == "uid-1"
    assert cm["metadata"]["labels"][builders.LABEL_FLOW] == "parallel"
    assert builders.read_output(cm) == ({"t1": "a", "n": None}, ())
    writes = ({"op": "set", "key": "k", "value": [1]}, {"op": "delete", "key": "old"})
    with_writes = builders.output_configmap(FLOW, "gather", 1, "x", writes)
    assert builders.read_output(with_writes) == ("x", writes)


def test_context_configmap_holds_the_initial_context() -> None:
    cm = builders.context_configmap(FLOW, {"orderId": 7})
    assert cm["metadata"]["name"] == names.context_configmap_name("parallel", "uid-1")
    assert cm["metadata"]["labels"][builders.LABEL_FLOW_UID] == "uid-1"
    assert builders.controlled_by(cm, "uid-1")
    assert cm["immutable"] is True
    assert cm["metadata"]["ownerReferences"][0]["uid"] == "uid-1"
    assert json.loads(cm["data"]["initial.json"]) == {"orderId": 7}


def test_event_is_about_the_flow() -> None:
    ev = builders.event_manifest(
        FLOW,
        reason="NodeFailed",
        message="task-1 failed",
        warning=True,
        now=datetime(2026, 1, 2, 3, 4, 5, 600000, tzinfo=UTC),
        instance="op-1",
    )
    assert ev["involvedObject"]["kind"] == "Flow"
    assert ev["involvedObject"]["uid"] == "uid-1"
    assert ev["type"] == "Warning"
    assert ev["firstTimestamp"] == "2026-01-02T03:04:05Z"


def test_long_flow_names_still_give_valid_label_selectors() -> None:
    long = builders.FlowRef(name="f" * 200, namespace="n", uid="u")
    value = builders.labels(long)[builders.LABEL_FLOW]
    assert names.is_label_value(value)
    assert builders.flow_selector(long.name) == f"{builders.LABEL_FLOW}={value}"


def test_objects_are_controlled_by_their_flow_object_only() -> None:
    job = _job(FunctionSpec(script="x"))
    cm = builders.output_configmap(FLOW, "gather", 1, 1)
    for obj in (job, cm):
        assert builders.controlled_by(obj, "uid-1")
        assert not builders.controlled_by(obj, "uid-2")  # a re-created Flow of the same name
        assert not builders.controlled_by(obj, "")
    assert builders.flow_uid_selector(FLOW) == "flowcraft.io/flow-uid=uid-1"


def test_only_a_controller_reference_counts_as_control() -> None:
    owned = {"metadata": {"ownerReferences": [{"kind": "Flow", "uid": "uid-1"}]}}
    assert not builders.controlled_by(owned, "uid-1")  # an owner, not the controller
    assert builders.describe_controller(owned) == "no controller"
    assert not builders.controlled_by({"metadata": {}}, "uid-1")
    stale = {
        "metadata": {
            "ownerReferences": [
                {"kind": "Flow", "name": "parallel", "uid": "old", "controller": True}
            ]
        }
    }
    assert not builders.controlled_by(stale, "uid-1")
    assert builders.describe_controller(stale) == "Flow parallel (uid old)"
    assert builders.controller_of(stale, "Job") is None
