"""Who an object belongs to: the labels, annotations and ownerReferences of everything the
operator creates, and the one test for adopting an existing object (pure).

Why a module of its own: Jobs (``jobs``) and ConfigMaps/Events (``builders``) carry the same
identity, and ``reconcile``/``cache`` select and adopt by it; a name, a label or an annotation
can be left behind by an earlier Flow of the same name, so only the controller reference says
whose an object is (``controlled_by``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flowcraft.drivers.kubernetes import names

Manifest = dict[str, Any]

API_VERSION = "flowcraft.io/v1alpha1"
KIND = "Flow"

LABEL_FLOW = "flowcraft.io/flow"
LABEL_FLOW_UID = "flowcraft.io/flow-uid"
LABEL_NODE = "flowcraft.io/node"
LABEL_ATTEMPT = "flowcraft.io/attempt"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGED_BY = "flowcraft-operator"
LABEL_COMPONENT = "flowcraft.io/component"
LABEL_ITEM = "flowcraft.io/item"  # a batch item's index (Jobs, pods, output ConfigMaps)
LABEL_ROUND = "flowcraft.io/round"  # an Indexed Job's round of a batch
COMPONENT_ITEM_OUTPUT = "item-output"

ANN_FLOW = "flowcraft.io/flow-name"
ANN_NODE = "flowcraft.io/node-id"
ANN_ATTEMPT = "flowcraft.io/attempt"
ANN_ITERATION = "flowcraft.io/iteration"  # loop iterations after the first (absent: 0)
ANN_FUNCTION = "flowcraft.io/function"
ANN_PARAMS = "flowcraft.io/params"
ANN_INPUT = "flowcraft.io/input"
ANN_VIEW = "flowcraft.io/view"
ANN_ITEM = "flowcraft.io/item"
ANN_ROUND_START = "flowcraft.io/round-start"  # an Indexed Job's first item (index 0)

# Keys of the ConfigMaps the operator writes (output/writes of a result, the initial context).
OUTPUT_KEY = "output.json"
WRITES_KEY = "writes.json"
CONTEXT_KEY = "initial.json"


@dataclass(frozen=True)
class FlowRef:
    """The identity of a Flow object, for names, labels and ownerReferences."""

    name: str
    namespace: str
    uid: str


def flow_selector(flow: str) -> str:
    return f"{LABEL_FLOW}={names.label_value(flow)}"


def flow_uid_selector(flow: FlowRef) -> str:
    """Selects the objects of this Flow *object* only, not of an earlier one of the same name."""
    return f"{LABEL_FLOW_UID}={names.label_value(flow.uid)}"


def labels(
    flow: FlowRef, node: str | None = None, attempt: int | None = None, item: int | None = None
) -> dict[str, str]:
    out = {
        LABEL_FLOW: names.label_value(flow.name),
        LABEL_FLOW_UID: names.label_value(flow.uid),
        LABEL_MANAGED_BY: MANAGED_BY,
    }
    if node is not None:
        out[LABEL_NODE] = names.label_value(node)
    if attempt is not None:
        out[LABEL_ATTEMPT] = str(attempt)
    if item is not None:
        out[LABEL_ITEM] = str(item)
    return out


def item_outputs_selector(flow: FlowRef, scatter: str) -> str:
    """The output ConfigMaps of a scatter's items of this Flow object: what a restarted
    operator lists once (by the uid label; each is still checked for its controller)."""
    return (
        f"{flow_uid_selector(flow)},{LABEL_COMPONENT}={COMPONENT_ITEM_OUTPUT},"
        f"{LABEL_NODE}={names.label_value(scatter)}"
    )


def owner_reference(flow: FlowRef) -> Manifest:
    # No blockOwnerDeletion: it would need update rights on flows/finalizers, and background
    # garbage collection removes Jobs (and, through the Jobs, pods) and ConfigMaps anyway.
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "name": flow.name,
        "uid": flow.uid,
        "controller": True,
    }


def controller_of(obj: Manifest, kind: str | None = None) -> Manifest | None:
    """The ownerReference with ``controller: true`` (at most one exists), if any.

    With ``kind``, only a controller of that kind counts.
    """
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if isinstance(ref, dict) and ref.get("controller") is True:
            return ref if kind is None or ref.get("kind") == kind else None
    return None


def controlled_by(obj: Manifest, uid: str) -> bool:
    """controller-runtime's ``IsControlledBy``: ``obj``'s controller reference has this uid.

    The one test for adopting an existing object: a name, a label or an annotation can be
    left behind by an earlier Flow of the same name, or written by anyone who may create the
    object; only the controller reference says whose it is.
    """
    ref = controller_of(obj)
    return ref is not None and bool(uid) and ref.get("uid") == uid


def describe_controller(obj: Manifest) -> str:
    """Who controls ``obj``, for messages: ``Flow x (uid ...)`` or ``no controller``."""
    ref = controller_of(obj)
    if ref is None:
        return "no controller"
    return f"{ref.get('kind')} {ref.get('name')} (uid {ref.get('uid')})"
