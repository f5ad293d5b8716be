"""``flowcraft submit | get | logs | resume``: the CLI's view of Flows that live on a cluster.

Why a module of its own: ``cli.py`` must stay import-light, and these commands need the
Kubernetes driver's client (the only module that talks to the API). The presentation — the
DAG drawn as a tree with a phase and a duration per node — is pure and unit-tested; the API
paths are thin coroutines over :class:`flowcraft.drivers.kubernetes.client.Client`.

``resume FLOW NODE`` checks the node is an Awaiting wait node, then sets ``spec.resume[NODE]``
with one patch of the Flow (a JSON merge patch; a JSON Patch when the data holds a null, which
a merge patch would read as a deletion): whoever may patch Flows may resume them, and the
operator, which rebuilds its engine on every new generation, continues the run.

Following a run (``submit --watch``) polls the Flow's status twice a second: a CLI watching
one Flow is not the operator's hot path, and polling survives API restarts and proxies that
cut long watches without extra code.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flowcraft.drivers.kubernetes.client import Client

Manifest = dict[str, Any]

TERMINAL = frozenset({"Succeeded", "Failed", "Cancelled"})
POLL_SECONDS = 0.5
LABEL_FLOW = "flowcraft.io/flow"
LABEL_FLOW_UID = "flowcraft.io/flow-uid"  # builders.LABEL_FLOW_UID
LABEL_NODE = "flowcraft.io/node"
LABEL_ATTEMPT = "flowcraft.io/attempt"


class FlowNotFound(Exception):
    """The named Flow does not exist in the namespace."""


# ----------------------------------------------------------------------------- pure views


def parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def format_seconds(seconds: float) -> str:
    """Human durations: ``850ms``, ``2.1s``, ``1m05s``, ``2h03m``."""
    seconds = max(0.0, seconds)
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{seconds:.1f}s"
    if seconds < 3600:
        minutes, rest = divmod(int(seconds), 60)
        return f"{minutes}m{rest:02d}s"
    hours, rest = divmod(int(seconds), 3600)
    return f"{hours}h{rest // 60:02d}m"


def node_duration(node: Mapping[str, Any], now: datetime) -> str:
    """Run time of a node: finished - started, or time so far (``+``) while it runs."""
    started, finished = parse_time(node.get("startedAt")), parse_time(node.get("finishedAt"))
    if started is None:
        return "-"
    if finished is None:
        return format_seconds((now - started).total_seconds()) + "+"
    return format_seconds((finished - started).total_seconds())


@dataclass(frozen=True)
class TreeLine:
    prefix: str  # box-drawing indent, e.g. "│   ├── "
    node: str
    repeat: bool  # already drawn above (a join reached through a second parent)


def dag_tree(nodes: Sequence[str], edges: Sequence[tuple[str, str]]) -> list[TreeLine]:
    """The DAG as a tree: roots in spec order, children in edge order.

    A node with several parents (a join) is drawn in full under the first parent that reaches
    it and as a one-line reference under the others, so the tree stays linear in size.
    """
    children: dict[str, list[str]] = {n: [] for n in nodes}
    has_parent: set[str] = set()
    for source, target in edges:
        if source in children and target in children and target not in children[source]:
            children[source].append(target)
            has_parent.add(target)
    roots = [n for n in nodes if n not in has_parent]
    drawn: set[str] = set()
    lines: list[TreeLine] = []

    def walk(node: str, indent: str, branch: str, last: bool) -> None:
        repeat = node in drawn
        lines.append(TreeLine(indent + branch, node, repeat))
        if repeat:
            return
        drawn.add(node)
        below = indent + ("" if not branch else ("    " if last else "│   "))
        kids = children[node]
        for i, kid in enumerate(kids):
            end = i == len(kids) - 1
            walk(kid, below, "└── " if end else "├── ", end)

    for root in roots:
        walk(root, "", "", True)
    for node in nodes:  # only a cycle could leave nodes unreached; the model forbids them
        if node not in drawn:
            walk(node, "", "", True)
    return lines


_ITEM_STATES = (
    ("R", "running"),
    ("r", "retrying"),
    ("F", "failed"),
    ("C", "cancelled"),
    (".", "pending"),
)


def batch_summary(batch: Mapping[str, Any]) -> str:
    """One line for a batch scatter's items (``status.nodes[id].batch``), whatever their
    number: ``items: 9,950/10,000 succeeded, 48 running, 2 failed``; with rounds
    (``chunkSize`` < items) also the current round."""
    items = str(batch.get("items") or "")
    total = int(batch.get("total") or len(items))
    text = f"items: {items.count('S'):,}/{total:,} succeeded"
    for char, word in _ITEM_STATES:
        count = items.count(char)
        if count:
            text += f", {count:,} {word}"
    chunk = int(batch.get("chunk") or 0)
    if 0 < chunk < total:
        rounds = -(-total // chunk)
        started = len(items.rstrip(".")) if items else 0
        current = max(1, -(-started // chunk))
        text += f" (round {min(current, rounds)}/{rounds} of {chunk:,})"
    retried = batch.get("attempts") or {}
    if retried:
        text += f"; {len(retried):,} retried"
    return text


def render_flow(flow: Manifest, now: datetime | None = None) -> str:
    """``flowcraft get``: a header line, then one tree line per node with phase and duration."""
    now = now or datetime.now(UTC)
    meta, spec = flow.get("metadata") or {}, flow.get("spec") or {}
    status = flow.get("status") or {}
    node_ids = [str(n["id"]) for n in spec.get("nodes") or []]
    edges = [(str(e["source"]), str(e["target"])) for e in spec.get("edges") or []]
    states: Mapping[str, Mapping[str, Any]] = status.get("nodes") or {}
    phase = status.get("phase") or "Pending"
    where = f"{meta['namespace']}/" if meta.get("namespace") else ""
    header = f"flow {where}{meta.get('name', '?')}: {phase}"
    took = node_duration(status, now)
    if took != "-":
        header += f" in {took}"
    if status.get("progress"):
        header += f" ({status['progress']} done)"
    rows: list[tuple[str, str, str, str, str]] = []
    notes: dict[int, str] = {}  # row index -> a batch's one-line item summary below it
    for line in dag_tree(node_ids, edges):
        label = line.prefix + line.node
        if line.repeat:
            rows.append((label, "(joined above)", "", "", ""))
            continue
        state = states.get(line.node) or {}
        batch = state.get("batch")
        if isinstance(batch, Mapping):
            under = line.prefix.replace("├── ", "│   ").replace("└── ", "    ")
            notes[len(rows)] = f"{under}  {batch_summary(batch)}"
        attempts = int(state.get("attempts") or 0)
        message = " ".join(str(state.get("message") or "").split())
        rows.append(
            (
                label,
                str(state.get("phase") or "Pending"),
                node_duration(state, now),
                f"x{attempts}" if attempts > 1 else "",
                message if len(message) <= 80 else message[:77] + "...",
            )
        )
    head = ("NODE", "PHASE", "DURATION", "", "")
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(4)]
    out = [header]
    for index, row in enumerate([head, *rows]):
        cells = [row[i].ljust(widths[i]) for i in range(4)]
        out.append("  ".join([*cells, row[4]]).rstrip())
        if index - 1 in notes:
            out.append(notes[index - 1])
    if status.get("message") and phase != "Succeeded":
        out.append(f"message: {status['message']}")
    return "\n".join(out)


def latest_pod(pods: Sequence[Manifest]) -> Manifest | None:
    """The pod of the node's latest attempt (highest attempt label, then newest)."""

    def key(pod: Manifest) -> tuple[int, str]:
        meta = pod.get("metadata") or {}
        attempt = (meta.get("labels") or {}).get(LABEL_ATTEMPT, "0")
        return (int(attempt) if str(attempt).isdigit() else 0, str(meta.get("creationTimestamp")))

    return max(pods, key=key) if pods else None


def flow_manifest(flow_doc: Manifest, namespace: str) -> Manifest:
    """The object to send: the validated Flow's wire form, in ``namespace``."""
    metadata = dict(flow_doc.get("metadata") or {})
    metadata["namespace"] = namespace
    return {
        "apiVersion": flow_doc.get("apiVersion", "flowcraft.io/v1alpha1"),
        "kind": "Flow",
        "metadata": {k: v for k, v in metadata.items() if k in _KEPT_METADATA},
        "spec": flow_doc["spec"],
    }


_KEPT_METADATA = ("name", "namespace", "labels", "annotations")


class SubmitRefused(Exception):
    """``flowcraft submit`` cannot update the existing Flow (a field that cannot change)."""


def submit_plan(current: Manifest, body: Manifest) -> Manifest | None:
    """What ``submit`` sends for an existing Flow: the stored object with the fields that may
    change (``suspend``, ``parallelism``, ``activeDeadlineSeconds``: as the file says; ``resume``:
    the file's entries merged over the stored ones, so data already handed to a wait node is
    kept) and the file's labels and annotations; None when that changes nothing (pure).

    The specs are compared as models, so a stored spec that spells a default out (or leaves it
    out) equals the file's. Raises :class:`SubmitRefused`, naming the fields and what the user
    can do, when any other field differs: the API server would refuse it (see ``crd``)."""
    from pydantic import ValidationError  # noqa: PLC0415

    from flowcraft.model.flow import (  # noqa: PLC0415
        MUTABLE_SPEC_FIELDS,
        FlowSpec,
        immutable_spec_changes,
        mutable_fields_text,
        spec_field_alias,
    )

    meta = current.get("metadata") or {}
    name, namespace = meta.get("name", "?"), meta.get("namespace", "?")
    stored: Manifest = dict(current.get("spec") or {})
    wanted: Manifest = body["spec"]
    try:
        changed = immutable_spec_changes(
            FlowSpec.model_validate(stored), FlowSpec.model_validate(wanted)
        )
    except ValidationError:  # stored by an older version: compare the wire form
        changed = [
            spec_field_alias(f)
            for f in FlowSpec.model_fields
            if f not in MUTABLE_SPEC_FIELDS
            and stored.get(spec_field_alias(f)) != wanted.get(spec_field_alias(f))
        ]
    if changed:
        fields = ", ".join(f"spec.{field}" for field in changed)
        raise SubmitRefused(
            f"flow {name!r} already exists in namespace {namespace!r} with a different "
            f"{fields}; a Flow's spec is fixed once it exists (only {mutable_fields_text()} may "
            f"change). To run this version: delete the Flow first (kubectl delete flow {name} "
            f"-n {namespace}; its Jobs and outputs go with it) and submit again, or submit it "
            "under a new metadata.name"
        )
    spec = dict(stored)
    for field in ("suspend", "parallelism", "active_deadline_seconds"):
        alias = spec_field_alias(field)
        if alias in wanted:
            spec[alias] = wanted[alias]
        else:
            spec.pop(alias, None)
    if wanted.get("resume"):
        spec["resume"] = {**(stored.get("resume") or {}), **wanted["resume"]}
    metadata = {**meta}
    for key in ("labels", "annotations"):
        if key in body["metadata"]:
            metadata[key] = body["metadata"][key]
    if spec == stored and metadata == meta:
        return None
    return {**current, "metadata": metadata, "spec": spec}


# ----------------------------------------------------------------------------- API paths


async def get_flow(client: Client, namespace: str, name: str) -> Manifest:
    from flowcraft.drivers.kubernetes.client import NotFound  # noqa: PLC0415

    try:
        return await client.get_flow(namespace, name)
    except NotFound:
        raise FlowNotFound(f"flow {name!r} not found in namespace {namespace!r}") from None


async def submit(client: Client, body: Manifest) -> tuple[str, Manifest]:
    """Create the Flow, or update the fields of the existing one that may change; returns
    (verb, object): ``created``, ``configured`` or ``unchanged``. Raises
    :class:`SubmitRefused` when a field that cannot change differs (nothing is sent)."""
    from flowcraft.drivers.kubernetes.client import (  # noqa: PLC0415
        AlreadyExists,
        Conflict,
        Invalid,
    )

    namespace, name = body["metadata"]["namespace"], body["metadata"]["name"]
    try:
        return "created", await client.create_flow(namespace, body)
    except AlreadyExists:
        pass
    for _ in range(5):  # a concurrent status write changes resourceVersion: read again
        current = await client.get_flow(namespace, name)
        replacement = submit_plan(current, body)
        if replacement is None:
            return "unchanged", current
        try:
            return "configured", await client.replace_flow(namespace, name, replacement)
        except Conflict:
            continue
        except Invalid as err:  # the Flow changed under us, or the server knows better
            message = f"the cluster refused the update of flow {name!r}: {err.message}"
            raise SubmitRefused(message) from None
    raise SubmitRefused(f"flow {name!r} kept changing while it was being updated; try again")


async def follow(
    client: Client,
    namespace: str,
    name: str,
    on_status: Callable[[Manifest], None],
    poll: float = POLL_SECONDS,
) -> Manifest:
    """Report each new status of the Flow until it reaches a terminal phase; returns it."""
    last_rv = None
    while True:
        flow = await get_flow(client, namespace, name)
        rv = (flow.get("metadata") or {}).get("resourceVersion")
        status = flow.get("status") or {}
        if rv != last_rv:
            last_rv = rv
            on_status(status)
        if status.get("phase") in TERMINAL:
            return flow
        await asyncio.sleep(poll)


@dataclass(frozen=True)
class NodeLog:
    node: str
    pod: str | None
    text: str


async def node_logs(client: Client, namespace: str, name: str, node: str | None) -> list[NodeLog]:
    """Logs of the latest attempt's pod of ``node`` (of every node that ran, when None)."""
    from flowcraft.drivers.kubernetes import names  # noqa: PLC0415

    flow = await get_flow(client, namespace, name)
    spec_nodes = [str(n["id"]) for n in (flow.get("spec") or {}).get("nodes") or []]
    if node is not None and node not in spec_nodes:
        raise FlowNotFound(f"flow {name!r} has no node {node!r} (nodes: {', '.join(spec_nodes)})")
    out: list[NodeLog] = []
    # This Flow object's pods only (its uid label), not those of an earlier Flow of the name.
    uid = names.label_value(str((flow.get("metadata") or {}).get("uid") or ""))
    for node_id in [node] if node is not None else spec_nodes:
        selector = (
            f"{LABEL_FLOW}={names.label_value(name)},{LABEL_FLOW_UID}={uid},"
            f"{LABEL_NODE}={names.label_value(node_id)}"
        )
        pod = latest_pod(await client.list_pods(namespace, selector))
        if pod is None:
            out.append(NodeLog(node_id, None, ""))
            continue
        pod_name = str(pod["metadata"]["name"])
        out.append(NodeLog(node_id, pod_name, await client.read_pod_log(namespace, pod_name)))
    return out


# ----------------------------------------------------------------------------- resume


class ResumeRefused(Exception):
    """The Flow cannot take resume data for that node (unknown node, not awaiting...)."""


def resume_problem(flow: Manifest, node: str) -> str | None:
    """Why ``flowcraft resume FLOW NODE`` must not patch this Flow, or None (pure)."""
    from flowcraft.model.flow import builtin_kind  # noqa: PLC0415

    meta, spec = flow.get("metadata") or {}, flow.get("spec") or {}
    status = flow.get("status") or {}
    name = meta.get("name", "?")
    phase = status.get("phase") or "Pending"
    states: Mapping[str, Mapping[str, Any]] = status.get("nodes") or {}
    awaiting = [n for n, ns in states.items() if ns.get("phase") == "Awaiting"]
    waiting_for = f"awaiting: {', '.join(awaiting)}" if awaiting else "no node is awaiting"
    nodes = {str(n.get("id")): n for n in spec.get("nodes") or []}
    if node not in nodes:
        return f"flow {name!r} has no node {node!r} ({waiting_for})"
    uses = str(nodes[node].get("uses"))
    if builtin_kind(uses, spec.get("functions") or {}) != "wait":
        return f"node {node!r} of flow {name!r} is not a wait node (uses {uses!r})"
    if phase in TERMINAL:
        return f"flow {name!r} already finished ({phase}): there is nothing to resume"
    node_phase = (states.get(node) or {}).get("phase") or "Pending"
    if node_phase != "Awaiting":
        return (
            f"node {node!r} of flow {name!r} is not awaiting (phase {node_phase}; "
            f"{waiting_for}); to hand it data before it is reached, kubectl patch spec.resume"
        )
    return None


def _has_null(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, dict):
        return any(_has_null(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_null(v) for v in value)
    return False


def resume_patch(flow: Manifest, node: str, data: Any) -> tuple[str, Any]:
    """("merge", patch) setting ``spec.resume[node] = data``; ("json", operations) when the
    data holds a null, which a JSON merge patch would read as "delete this key" (pure)."""
    if not _has_null(data):
        return "merge", {"spec": {"resume": {node: data}}}
    if "resume" in (flow.get("spec") or {}):
        escaped = node.replace("~", "~0").replace("/", "~1")
        return "json", [{"op": "add", "path": f"/spec/resume/{escaped}", "value": data}]
    return "json", [{"op": "add", "path": "/spec/resume", "value": {node: data}}]


async def resume(client: Client, namespace: str, name: str, node: str, data: Any) -> Manifest:
    """Set ``spec.resume[node]`` of an Awaiting wait node; the operator does the rest."""
    flow = await get_flow(client, namespace, name)
    problem = resume_problem(flow, node)
    if problem is not None:
        raise ResumeRefused(problem)
    kind, patch = resume_patch(flow, node, data)
    if kind == "merge":
        return await client.patch_flow(namespace, name, patch)
    return await client.json_patch_flow(namespace, name, patch)
