"""The pure side of ``flowcraft submit | get | logs``: the tree, durations, pod choice."""

from __future__ import annotations

import asyncio
import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from flowcraft.cli import main
from flowcraft.clustercli import (
    SubmitRefused,
    dag_tree,
    flow_manifest,
    format_seconds,
    latest_pod,
    node_duration,
    node_logs,
    render_flow,
    submit_plan,
)

pytestmark = pytest.mark.unit

NOW = datetime(2026, 1, 1, 12, 0, 10, tzinfo=UTC)

PARALLEL_NODES = ["start-parallel", "task-1", "task-2", "task-3", "gather"]
PARALLEL_EDGES = [
    ("start-parallel", "task-1"),
    ("start-parallel", "task-2"),
    ("start-parallel", "task-3"),
    ("task-1", "gather"),
    ("task-2", "gather"),
    ("task-3", "gather"),
]


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0.0, "0ms"), (0.85, "850ms"), (2.04, "2.0s"), (59.9, "59.9s"), (65, "1m05s"),
     (7380, "2h03m"), (-1, "0ms")],
)  # fmt: skip
def test_format_seconds(seconds: float, text: str) -> None:
    assert format_seconds(seconds) == text


def test_node_duration_finished_running_and_not_started() -> None:
    done = {"startedAt": "2026-01-01T12:00:00Z", "finishedAt": "2026-01-01T12:00:02.5Z"}
    assert node_duration(done, NOW) == "2.5s"
    assert node_duration({"startedAt": "2026-01-01T12:00:07Z"}, NOW) == "3.0s+"
    assert node_duration({}, NOW) == "-"


def test_dag_tree_draws_a_join_once_and_references_it_elsewhere() -> None:
    lines = dag_tree(PARALLEL_NODES, PARALLEL_EDGES)
    drawn = [(line.prefix + line.node, line.repeat) for line in lines]
    assert drawn == [
        ("start-parallel", False),
        ("├── task-1", False),
        ("│   └── gather", False),
        ("├── task-2", False),
        ("│   └── gather", True),
        ("└── task-3", False),
        ("    └── gather", True),
    ]


def test_dag_tree_several_roots_and_isolated_nodes() -> None:
    lines = dag_tree(["a", "b", "c"], [("a", "b")])
    assert [(line.prefix, line.node) for line in lines] == [("", "a"), ("└── ", "b"), ("", "c")]


def _flow(status: dict[str, Any]) -> dict[str, Any]:
    return {
        "metadata": {"name": "parallel", "namespace": "demo"},
        "spec": {
            "nodes": [{"id": n} for n in PARALLEL_NODES],
            "edges": [{"source": s, "target": t} for s, t in PARALLEL_EDGES],
        },
        "status": status,
    }


def test_render_flow_shows_phase_duration_and_attempts_per_node() -> None:
    ts = "2026-01-01T12:00:0{}Z".format
    status = {
        "phase": "Running",
        "startedAt": ts(0),
        "progress": "2/5",
        "nodes": {
            "start-parallel": {"phase": "Succeeded", "startedAt": ts(0), "finishedAt": ts(1)},
            "task-1": {"phase": "Running", "startedAt": ts(2), "attempts": 2},
            "task-2": {"phase": "Succeeded", "startedAt": ts(2), "finishedAt": ts(3)},
            "task-3": {"phase": "Failed", "startedAt": ts(2), "finishedAt": ts(4),
                       "message": "exit code 1:\nboom"},
        },
    }  # fmt: skip
    text = render_flow(_flow(status), NOW)
    lines = text.splitlines()
    assert lines[0] == "flow demo/parallel: Running in 10.0s+ (2/5 done)"
    assert lines[1].split() == ["NODE", "PHASE", "DURATION"]
    assert any(line.split()[:3] == ["start-parallel", "Succeeded", "1.0s"] for line in lines), text
    assert any("task-1" in line and "Running" in line and "8.0s+" in line and "x2" in line
               for line in lines), text  # fmt: skip
    assert any("task-3" in line and "Failed" in line and "exit code 1: boom" in line
               for line in lines), text  # fmt: skip
    gather = [line for line in lines if "gather" in line]
    assert "Pending" in gather[0]
    assert all("(joined above)" in line for line in gather[1:])
    assert len(gather) == 3


def test_render_flow_of_a_flow_without_status() -> None:
    flow = _flow({})
    flow["metadata"].pop("namespace")
    text = render_flow(flow, NOW)
    assert text.splitlines()[0] == "flow parallel: Pending"


def test_render_flow_failed_shows_the_flow_message() -> None:
    text = render_flow(_flow({"phase": "Failed", "message": "node task-3 failed"}), NOW)
    assert text.splitlines()[-1] == "message: node task-3 failed"


def _pod(name: str, attempt: str, created: str) -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "labels": {"flowcraft.io/attempt": attempt},
            "creationTimestamp": created,
        }
    }


def test_latest_pod_prefers_the_highest_attempt_then_the_newest() -> None:
    pods = [
        _pod("a2", "2", "2026-01-01T00:00:01Z"),
        _pod("a10", "10", "2026-01-01T00:00:00Z"),
        _pod("a10-retry", "10", "2026-01-01T00:00:05Z"),
    ]
    assert latest_pod(pods) == pods[2]
    assert latest_pod([]) is None


def test_flow_manifest_sets_the_namespace_and_drops_server_fields() -> None:
    doc = {
        "apiVersion": "flowcraft.io/v1alpha1",
        "kind": "Flow",
        "metadata": {"name": "x", "namespace": "a", "labels": {"k": "v"}, "uid": "123"},
        "spec": {"nodes": []},
    }
    body = flow_manifest(doc, "b")
    assert body["metadata"] == {"name": "x", "namespace": "b", "labels": {"k": "v"}}
    assert body["spec"] == {"nodes": []}


def test_cluster_commands_are_listed_and_parse(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for command in ("submit", "get", "logs"):
        assert command in out


def test_unreachable_cluster_is_one_line_and_exit_3(
    tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        "clusters: [{name: c, cluster: {server: 'https://127.0.0.1:1'}}]\n"
        "users: [{name: u, user: {token: t}}]\n"
        "contexts: [{name: c, context: {cluster: c, user: u}}]\n"
    )
    code = main(["get", "parallel", "--kubeconfig", str(kubeconfig)])
    err = capsys.readouterr().err
    assert code == 3
    assert err.startswith("flowcraft: error: cannot reach the cluster at https://127.0.0.1:1")
    assert "Traceback" not in err


def test_missing_kubeconfig_is_one_line_and_exit_3(
    tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["get", "parallel", "--kubeconfig", str(tmp_path / "nope")])
    err = capsys.readouterr().err
    assert code == 3
    assert "nope" in err
    assert len(err.strip().splitlines()) == 1


class _LogClient:
    """Answers node_logs' requests; pods carry labels as the operator's Jobs give them."""

    def __init__(self) -> None:
        self.selectors: list[str] = []

    async def get_flow(self, namespace: str, name: str) -> dict[str, Any]:
        return {
            "metadata": {"name": name, "namespace": namespace, "uid": "uid-new"},
            "spec": {"nodes": [{"id": "a"}]},
        }

    async def list_pods(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        self.selectors.append(selector)
        pods = [
            {"metadata": {"name": f"a-{uid}", "labels": {
                "flowcraft.io/flow": "f", "flowcraft.io/flow-uid": uid,
                "flowcraft.io/node": "a", "flowcraft.io/attempt": attempt}}}
            for uid, attempt in (("uid-old", "5"), ("uid-new", "1"))
        ]  # fmt: skip
        wanted = dict(term.split("=") for term in selector.split(","))
        return [p for p in pods if wanted.items() <= p["metadata"]["labels"].items()]

    async def read_pod_log(self, namespace: str, pod: str) -> str:
        return f"log of {pod}"


def test_logs_read_this_flow_objects_pods_not_an_earlier_flow_of_the_name() -> None:
    client = _LogClient()
    logs = asyncio.run(node_logs(client, "ns", "f", "a"))  # type: ignore[arg-type]
    assert [(log.node, log.pod) for log in logs] == [("a", "a-uid-new")]
    assert "flowcraft.io/flow-uid=uid-new" in client.selectors[0]


# ----------------------------------------------------------------- submit on an existing Flow

SUBMITTED = {
    "apiVersion": "flowcraft.io/v1alpha1",
    "kind": "Flow",
    "metadata": {"name": "f", "namespace": "ns"},
    "spec": {
        "functions": {"ok": {"script": "def run(ctx):\n    return 1\n"}},
        "nodes": [{"id": "a", "uses": "ok"}, {"id": "b", "uses": "ok"}],
        "edges": [{"source": "a", "target": "b"}],
    },
}


def _stored(**spec: Any) -> dict[str, Any]:
    stored = copy.deepcopy(SUBMITTED)
    stored["metadata"].update(resourceVersion="7", uid="u-1")
    stored["spec"].update(spec)
    stored["status"] = {"phase": "Running"}
    return stored


def _body(**spec: Any) -> dict[str, Any]:
    body = copy.deepcopy(SUBMITTED)
    body["spec"].update(spec)
    return body


def test_submit_plan_of_the_same_flow_changes_nothing() -> None:
    # The file spells defaults out; the stored Flow (applied with kubectl) does not.
    assert submit_plan(_stored(), _body(failFast=True, expressionLanguage="flowcraft")) is None


def test_submit_plan_updates_only_the_runtime_controls_and_keeps_resume_data() -> None:
    stored = _stored(parallelism=2, resume={"w": {"output": 1}})
    plan = submit_plan(stored, _body(suspend=True, activeDeadlineSeconds=60))
    assert plan is not None
    assert plan["metadata"]["resourceVersion"] == "7"
    assert plan["spec"]["suspend"] is True
    assert plan["spec"]["activeDeadlineSeconds"] == 60
    assert "parallelism" not in plan["spec"]  # the file is the wanted state
    assert plan["spec"]["resume"] == {"w": {"output": 1}}  # handed to a wait node: kept
    assert plan["spec"]["edges"] == SUBMITTED["spec"]["edges"]


def test_submit_plan_refuses_a_changed_graph_and_says_what_to_do() -> None:
    edges = [{"source": "b", "target": "a"}]
    with pytest.raises(SubmitRefused) as refused:
        submit_plan(_stored(), _body(edges=edges, image="other:1"))
    message = str(refused.value)
    assert message.startswith(
        "flow 'f' already exists in namespace 'ns' with a different spec.edges, spec.image; "
    )
    assert "only parallelism, activeDeadlineSeconds, suspend and resume may change" in message
    assert "kubectl delete flow f -n ns" in message
    assert "under a new metadata.name" in message


def test_cli_submit_of_a_changed_flow_explains_and_exits_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from flowcraft import cli_cluster  # noqa: PLC0415
    from flowcraft.drivers.kubernetes.client import AlreadyExists  # noqa: PLC0415

    replaced: list[Any] = []

    class ExistingFlow:
        async def create_flow(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
            raise AlreadyExists(409, "AlreadyExists", "exists")

        async def get_flow(self, namespace: str, name: str) -> dict[str, Any]:
            return _stored(edges=[])

        async def replace_flow(self, namespace: str, name: str, body: Any) -> Any:
            replaced.append(body)
            return body

    monkeypatch.setattr(
        cli_cluster, "_on_cluster", lambda args, work: asyncio.run(work(ExistingFlow(), "ns"))
    )
    path = tmp_path / "f.json"
    path.write_text(json.dumps(SUBMITTED))
    assert main(["submit", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("flowcraft: error: flow 'f' already exists in namespace 'ns' with a ")
    assert "Traceback" not in err
    assert replaced == []
