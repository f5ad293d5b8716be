"""The Job manifests a pass sends: a node's Job, an item's Job, and the view both mount.

Pure (no request): the builders say what a Job looks like; this picks their inputs from the
pass (the engine's view of the outputs, the runner image). A manifest the builders refuse
fails its attempt through the next pass (``fail_later``) instead of hanging the Flow.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from flowcraft.drivers.kubernetes import builders, names
from flowcraft.engine import StartNode
from flowcraft.model import FlowStatus

from .cluster import Cluster
from .state import Manifest, Pass, fail_later


def view(ctx: Pass, status: FlowStatus, node: str, outputs: Mapping[str, str]) -> builders.View:
    """What ``node``'s pod mounts: the outputs it may read, in the engine's order."""
    order = tuple(ctx.engine.view(status, node, ctx.state.outputs, ctx.state.writes))
    return builders.View(
        order=order,
        configmaps=outputs,
        context_configmap=(
            names.context_configmap_name(ctx.ref.name, ctx.ref.uid)
            if ctx.spec.context is not None
            else None
        ),
    )


def with_input(found: builders.View, ctx: Pass, action: StartNode) -> builders.View:
    """``found`` mounting the node's input from the output ConfigMap that holds it, when it
    is a large stored output (a 700 KiB result must reach the next node; annotations cannot
    carry it)."""
    key = builders.input_source(action.input, found.order, ctx.state.outputs)
    return found if key is None else replace(found, input_key=key)


def node_job_manifest(
    cl: Cluster, ctx: Pass, status: FlowStatus, action: StartNode, outputs: Mapping[str, str]
) -> Manifest | None:
    """The Job of a node attempt (not a batch item); None when it failed the attempt."""
    spec = ctx.spec
    node = spec.node(action.node)
    try:
        return builders.job_manifest(
            ctx.ref,
            node,
            spec.functions[node.uses],
            action.attempt,
            action.input,
            timeout_seconds=action.timeout_seconds,
            view=with_input(view(ctx, status, action.node, outputs), ctx, action),
            runner_image=cl.runner_image_for(ctx.spec),
            iteration=action.iteration,
        )
    except builders.ManifestError as exc:
        fail_later(ctx.state, action, str(exc))
        return None


def item_view(
    ctx: Pass, status: FlowStatus, scatter: str, iteration: int, outputs: Mapping[str, str]
) -> builders.View:
    """What every item of ``scatter`` sees: the scatter's own view (built once a pass)."""
    found = ctx.views.get((scatter, iteration))
    if found is None:
        found = ctx.views[(scatter, iteration)] = view(ctx, status, scatter, outputs)
    return found


def item_job_manifest(
    cl: Cluster, ctx: Pass, status: FlowStatus, action: StartNode, outputs: Mapping[str, str]
) -> Manifest | None:
    """The Job of one batch item attempt of its own; None when it failed the attempt."""
    spec = ctx.spec
    uses = action.uses or ""
    fn = spec.functions.get(uses)
    if fn is None:
        fail_later(ctx.state, action, f"worker function {uses!r} is not in spec.functions")
        return None
    try:
        return builders.job_manifest(
            ctx.ref,
            spec.node(action.node),
            fn,
            action.attempt,
            action.input,
            timeout_seconds=action.timeout_seconds,
            view=item_view(ctx, status, action.node, action.iteration, outputs),
            runner_image=cl.runner_image_for(spec),
            iteration=action.iteration,
            item=action.item,
            uses=uses,
        )
    except builders.ManifestError as exc:
        fail_later(ctx.state, action, str(exc))
        return None
