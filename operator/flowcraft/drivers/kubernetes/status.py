"""What the operator records about a Flow, computed without I/O (pure).

Why separate from the reconcile loop: these are the decisions users *see* (the status
`kubectl get flow` prints, which Events appear, the reason an invalid Flow failed, which
outputs a node's pod mounts), so they are unit-tested directly; the reconcile only sends them.

Status conventions (what generic Kubernetes tooling reads): ``status.observedGeneration`` is the
``metadata.generation`` the status was computed for, and ``status.conditions`` holds standard
``metav1.Condition`` entries, batch/v1 Job style: ``Succeeded`` (True once the Flow succeeded,
False once it failed or was cancelled, Unknown while it runs; ``kubectl wait
--for=condition=Succeeded flow/x``) and ``Failed`` (True once it failed or was cancelled;
``kubectl wait --for=condition=Failed``). ``lastTransitionTime`` moves only when a
condition's status changes, so re-rendering an unchanged Flow writes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flowcraft.contract import item_key, result_key
from flowcraft.drivers.kubernetes import names
from flowcraft.drivers.kubernetes import policy as flow_policy
from flowcraft.drivers.kubernetes.policy import Policy
from flowcraft.model import (
    TERMINAL_FLOW_PHASES,
    TERMINAL_NODE_PHASES,
    Flow,
    FlowStatus,
    FlowValidationError,
    format_timestamp,
)
from flowcraft.model import parse_flow as validated_flow
from flowcraft.model.bounds import bound_message
from flowcraft.model.flow import ITEM_CANCELLED, ITEM_FAILED, ITEM_SUCCEEDED

Manifest = dict[str, Any]

CONDITION_SUCCEEDED = "Succeeded"
CONDITION_FAILED = "Failed"
CONDITION_RECONCILING = "Reconciling"  # present (False) while passes over the Flow fail
_CONDITION_MESSAGE_MAX = 32768  # metav1.Condition's bound

# phase -> (Succeeded status, Failed status, default message)
_CONDITION_TABLE: dict[str, tuple[str, str, str]] = {
    "Pending": ("Unknown", "False", "the flow has not started"),
    "Running": ("Unknown", "False", "the flow is running"),
    "Succeeded": ("True", "False", "every node finished"),
    "Failed": ("False", "True", "the flow failed"),
    "Cancelled": ("False", "True", "the flow was cancelled"),
}


@dataclass(frozen=True)
class Note:
    """One Kubernetes Event to post on the Flow."""

    reason: str
    message: str
    warning: bool


def parse_flow(body: Manifest, policy: Policy | None = None) -> tuple[Flow | None, str]:
    """The validated Flow, or None and every problem as one readable message.

    With a `policy` (the operator's, for shared clusters), a Flow that breaks it is refused the
    same way, naming each node, and an accepted Flow comes back with the policy's defaults in
    its spec (node resources, parallelism cap): the spec the engine and the pod builders use.
    """
    try:
        # The same check as `flowcraft validate` and the admission webhook.
        flow = validated_flow(body)
    except FlowValidationError as exc:
        return None, "invalid flow: " + "; ".join(str(p) for p in exc.problems)
    if policy is not None and policy.restricts:
        refused = flow_policy.check(flow.spec, policy)
        if refused:
            return None, "refused by the operator's policy: " + "; ".join(refused)
        flow = flow.model_copy(update={"spec": flow_policy.apply(flow.spec, policy)})
    return flow, ""


def conditions(
    phase: str,
    message: str | None,
    generation: int | None,
    previous: Any,
    now: datetime,
) -> list[Manifest]:
    """The ``Succeeded`` and ``Failed`` conditions for ``phase`` (metav1.Condition fields).

    ``previous`` is the ``conditions`` list last written (anything else counts as none): a
    condition whose status did not change keeps its ``lastTransitionTime``.
    """
    succeeded, failed, default = _CONDITION_TABLE.get(phase, ("Unknown", "False", phase))
    before: dict[str, Mapping[str, Any]] = {}
    if isinstance(previous, Sequence) and not isinstance(previous, str):
        before = {
            str(c.get("type")): c for c in previous if isinstance(c, Mapping) and c.get("type")
        }
    stamp = format_timestamp(now.replace(microsecond=0))
    out: list[Manifest] = []
    for kind, value in ((CONDITION_SUCCEEDED, succeeded), (CONDITION_FAILED, failed)):
        old = before.get(kind)
        since = stamp
        if old is not None and old.get("status") == value:
            since = str(old.get("lastTransitionTime") or stamp)
        condition: Manifest = {
            "type": kind,
            "status": value,
            "reason": phase,
            "message": (message or default)[:_CONDITION_MESSAGE_MAX],
            "lastTransitionTime": since,
        }
        if generation is not None:
            condition["observedGeneration"] = generation
        out.append(condition)
    return out


def with_conventions(
    out: Manifest, previous: Mapping[str, Any], generation: int | None, now: datetime
) -> Manifest:
    """``out`` plus ``observedGeneration`` and ``conditions`` (see the module docstring)."""
    out = dict(out)
    if generation is not None:
        out["observedGeneration"] = generation
    out["conditions"] = conditions(
        str(out.get("phase") or "Pending"),
        out.get("message"),
        generation,
        previous.get("conditions"),
        now,
    )
    return out


def with_reconcile_error(
    previous: Mapping[str, Any], reason: str, message: str, now: datetime
) -> Manifest:
    """``previous`` with a ``Reconciling`` condition (status False) saying why the last pass
    failed; the next status the operator writes normally drops it again."""
    out = dict(previous)
    kept = [
        c
        for c in previous.get("conditions") or []
        if isinstance(c, Mapping) and c.get("type") != CONDITION_RECONCILING
    ]
    kept.append(
        {
            "type": CONDITION_RECONCILING,
            "status": "False",
            "reason": reason,
            "message": message[:_CONDITION_MESSAGE_MAX],
            "lastTransitionTime": format_timestamp(now.replace(microsecond=0)),
        }
    )
    out["conditions"] = kept
    return out


def observe_finished(
    previous: Mapping[str, Any], generation: int | None, now: datetime
) -> Manifest | None:
    """A finished Flow's status with its conventions brought up to date, None when they are.

    A finished run does not change when its spec is edited, but ``observedGeneration`` must
    follow (``kubectl wait`` waits for it), and a Flow finished by an older operator gains
    its conditions.
    """
    updated = with_conventions(dict(previous), previous, generation, now)
    return None if updated == dict(previous) else updated


def invalid_status(
    previous: Mapping[str, Any],
    problem: str,
    now: datetime,
    *,
    generation: int | None = None,
) -> Manifest:
    """The status of a Flow the operator refuses to run (the problem cut to the status's
    message bound: a spec can carry thousands of problems)."""
    problem = bound_message(problem)
    out: Manifest = {
        "phase": "Failed",
        "message": problem,
        "errors": [problem],
        "startedAt": previous.get("startedAt") or format_timestamp(now),
        "finishedAt": format_timestamp(now),
    }
    return with_conventions(out, previous, generation, now)


def render_status(
    status: FlowStatus,
    real_start: Mapping[str, datetime],
    total: int,
    *,
    previous: Mapping[str, Any] | None = None,
    generation: int | None = None,
    now: datetime | None = None,
) -> Manifest:
    """The engine snapshot as written to ``.status``, plus the operator's own fields.

    ``real_start`` holds the pods' real start times of first attempts: they replace the
    moment the engine asked for the Job. ``progress`` and ``duration`` feed the printer columns.
    With ``now``, the conventions too: ``observedGeneration`` (``generation``) and the
    conditions, carried over from ``previous`` (the status last written) where unchanged.
    """
    nodes = dict(status.nodes)
    for node, started in real_start.items():
        ns = nodes.get(node)
        if ns is not None and ns.started_at != started:
            nodes[node] = ns.model_copy(update={"started_at": started})
    status = status.model_copy(update={"nodes": nodes})
    out = status.model_dump(mode="json", by_alias=True, exclude_none=True)
    done = sum(1 for ns in nodes.values() if ns.phase in TERMINAL_NODE_PHASES)
    items_done, items_total = item_progress(status)
    out["progress"] = f"{done + items_done}/{total + items_total}"
    if status.started_at is not None and status.finished_at is not None:
        seconds = (status.finished_at - status.started_at).total_seconds()
        out["duration"] = f"{seconds:.1f}s"
    if now is not None:
        out = with_conventions(out, previous or {}, generation, now)
    return out


def item_progress(status: FlowStatus) -> tuple[int, int]:
    """(finished, total) batch items over every scatter node: the DONE column counts them.

    An item is finished when it succeeded, failed for good or was cancelled; str.count keeps
    this cheap at 10,000 items (one C loop per scatter, no per-item Python)."""
    done = total = 0
    for ns in status.nodes.values():
        batch = ns.batch
        if batch is None:
            continue
        items = batch.items
        done += items.count(ITEM_SUCCEEDED) + items.count(ITEM_FAILED) + items.count(ITEM_CANCELLED)
        total += batch.total
    return done, total


def material_change(old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    """Whether ``new`` is worth a status write over ``old``.

    A pod's real start time alone is not: with 1000 pods starting, writing a large status per
    start would load the API server for no decision. Start times ride along with the next
    write that matters (at the latest, the node's own end).
    """
    if old == new:
        return False
    return _without_starts(old) != _without_starts(new)


def _without_starts(status: Mapping[str, Any]) -> dict[str, Any]:
    nodes = status.get("nodes")
    if not isinstance(nodes, dict):
        return dict(status)
    stripped = {
        node: {k: v for k, v in ns.items() if k != "startedAt"} if isinstance(ns, dict) else ns
        for node, ns in nodes.items()
    }
    return {**status, "nodes": stripped}


def notes(
    old: FlowStatus, new: FlowStatus, flow: str = "FLOW", namespace: str | None = None
) -> list[Note]:
    """Events for the transitions from ``old`` to ``new``: final node failures, a wait node
    that starts awaiting (NodeAwaiting, with the command that resumes it: ``flow`` and
    ``namespace`` name the Flow there) or that was resumed (NodeResumed), and the end.

    Only transitions produce Events, so re-running a pass never repeats one, and retries or
    routine starts never flood ``kubectl describe``.
    """
    out: list[Note] = []
    where = f" -n {namespace}" if namespace else ""
    for node, ns in new.nodes.items():
        before = old.nodes.get(node)
        was = before.phase if before is not None else "Pending"
        if ns.phase == "Failed" and was != "Failed":
            out.append(Note("NodeFailed", f"node {node} failed: {ns.message or ns.reason}", True))
        elif ns.phase == "Awaiting" and was != "Awaiting":
            out.append(
                Note(
                    "NodeAwaiting",
                    f"node {node} awaits resume data; resume it with: flowcraft resume {flow} "
                    f"{node}{where} --data '{{\"output\": ...}}' (or kubectl patch flow {flow}"
                    f'{where} --type merge -p \'{{"spec":{{"resume":{{"{node}":'
                    f'{{"output": ...}}}}}}}}\')',
                    False,
                )
            )
        elif was == "Awaiting" and ns.phase == "Succeeded":
            action = f" (action {ns.action})" if ns.action else ""
            out.append(Note("NodeResumed", f"node {node} resumed{action}", False))
    if new.phase in TERMINAL_FLOW_PHASES and old.phase != new.phase:
        out.append(Note(f"Flow{new.phase}", new.message or new.phase, new.phase != "Succeeded"))
    return out


def output_refs(status: FlowStatus) -> dict[str, str]:
    """Result key -> output ConfigMap of every stored success, current and from earlier loop
    iterations (what a view can mount; see ``flowcraft.contract.result_key``)."""
    refs = {
        result_key(node, ns.iteration or 0): ns.output_ref
        for node, ns in status.nodes.items()
        if ns.output_ref is not None
    }
    for done in status.history:
        if done.output_ref is not None:
            refs[result_key(done.node, done.iteration)] = done.output_ref
    return refs


def item_output_names(status: FlowStatus, flow: str, uid: str) -> dict[str, str]:
    """Item key -> output ConfigMap of every succeeded batch item, current and from earlier
    loop iterations (what the final context reads; the names are deterministic, so the status
    needs no reference per item)."""
    out: dict[str, str] = {}
    for scatter, ns in status.nodes.items():
        if ns.batch is None:
            continue
        iteration = ns.iteration or 0
        for item, state in enumerate(ns.batch.items):
            if state == ITEM_SUCCEEDED:
                key = item_key(scatter, iteration, item)
                out[key] = names.item_output_name(flow, uid, scatter, iteration, item)
    for done in status.history:
        for item in range(done.items or 0):
            key = item_key(done.node, done.iteration, item)
            out[key] = names.item_output_name(flow, uid, done.node, done.iteration, item)
    return out
