"""Batches: a batch-scatter runs its worker function once per item of its input array.

Why a module of its own: items are not nodes. A scatter with 10,000 items must neither put
10,000 entries in the Flow's status nor make each event cost O(items), so items live in a
compact per-scatter string (`BatchStatus.items`, one character per item) and the engine keeps
an index of running and retrying items beside its last snapshot. The rules are flowcraft's
(dist/nodes/batch-scatter.mjs, batch-gather.mjs, flow.mjs `batch()`); see the package
docstring for the semantics.
"""

from __future__ import annotations

import uuid
from typing import Any

from flowcraft.model import BatchStatus, NodeStatus
from flowcraft.model.flow import ITEM_RUNNING


def batch_id(scatter: str, iteration: int) -> str:
    """The batch id flowcraft draws at random, made deterministic (same after a restart)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"flowcraft-batch:{scatter}:{iteration}"))


def worker_id(uses: str, scatter: str, iteration: int, item: int) -> str:
    """flowcraft's id of the dynamic node that runs item `item`: `<uses>_<batchId>_<i>`."""
    return f"{uses}_{batch_id(scatter, iteration)}_{item}"


def running_items(batch: BatchStatus) -> list[int]:
    """Indexes of the items that run (a scan: for snapshots the engine has no index of)."""
    found = []
    items = batch.items
    index = items.find(ITEM_RUNNING)
    while index >= 0:
        found.append(index)
        index = items.find(ITEM_RUNNING, index + 1)
    return found


def item_input(scatter_input: Any, item: int) -> Any:
    """Item `item` of a scatter's input (validated to be an array when the scatter started)."""
    values = scatter_input if isinstance(scatter_input, list) else []
    return values[item]


def scatter_batch(ns: NodeStatus) -> BatchStatus | None:
    return ns.batch if ns.phase == "Running" else None
