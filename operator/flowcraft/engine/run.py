"""One engine call: apply the events, then start what is ready and settle the flow.

Why a module of its own: this is the engine's main loop, the order in which one `advance`
happens. Events are applied in order (success, failure and retries, cancellation), then the
deadline and due timers, then `finish` starts every ready node (eagerly, in spec order, within
parallelism), settles the flow's phase and computes when to be called again (`wake_at`).
Routing and joins (`routing`), built-in nodes (`builtin_nodes`) and batches (`batch`) are the
parts it calls; `state` holds what they share.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from flowcraft.engine.builtin_nodes import BuiltinNodes
from flowcraft.engine.routing import Routing
from flowcraft.engine.state import ACTIVE, VIRTUAL
from flowcraft.engine.types import (
    REASON_DEADLINE,
    REASON_ERROR,
    REASON_FALLBACK_NOT_NEEDED,
    REASON_FLOW_CANCELLED,
    REASON_FLOW_FAILED,
    REASON_INPUT,
    REASON_NOT_REACHED,
    REASON_RECOVERED,
    REASON_ROUTING,
    REASON_TIMEOUT,
    CancelFlow,
    Event,
    NodeStarted,
    NodeSucceeded,
    StartNode,
    Step,
)
from flowcraft.model import ExpressionError, FlowStatus
from flowcraft.model.bounds import append_error, bound_message, error_count


class Run(Routing, BuiltinNodes):
    """The state of one engine call with every step it can take (see `state.RunState`)."""

    # -- events ---------------------------------------------------------------------------

    def apply(self, event: Event) -> None:
        if isinstance(event, CancelFlow):
            self.stop("Cancelled", REASON_FLOW_CANCELLED, f"cancelled: {event.reason}")
            return
        if isinstance(event, NodeStarted):
            return  # informational: startedAt is set when the engine issues StartNode
        if event.item is not None:
            self.batches.apply(event)
            return
        ns = self.nodes.get(event.node)
        if (
            ns is None
            or ns.phase != "Running"
            or ns.attempts != event.attempt
            or (ns.iteration or 0) != event.iteration
        ):
            return  # duplicate or stale: already applied, other attempt/iteration, not running
        if isinstance(event, NodeSucceeded):
            self.succeed(event)
        else:
            self.fail(event.node, event.attempt, event.at, event.message, event.timed_out)

    def succeed(self, event: NodeSucceeded) -> None:
        node_id = event.node
        if self.graph.builtin.get(node_id) not in VIRTUAL:
            self.fresh_outputs[node_id] = event.output
        self.fresh_writes[node_id] = event.writes
        seq = self.seq + 1
        ns = self.set(
            node_id,
            phase="Succeeded",
            finished_at=event.at,
            output_ref=event.output_ref,
            action=event.action,
            retry_at=None,
            message=None,
            reason=None,
            seq=seq,
            writes=len(event.writes) or None,
        )
        self.seq = seq
        self.forget_views()
        try:
            self.route(node_id, ns)
        except ExpressionError as exc:
            # The node ran but its routing cannot be decided: a final failure of the node.
            # outputRef is dropped too: a Failed node's output is not part of the context.
            self.set(
                node_id,
                phase="Failed",
                seq=None,
                output_ref=None,
                action=None,
                reason=REASON_ROUTING,
                message=str(exc),
                taken_edges=None,
                writes=None,
            )
            # Take back the sequence number so no context view includes this output.
            self.seq = seq - 1
            self.forget_views()
            self.final_failure(node_id, f"routing failed: {exc}")
            return
        owner = self.graph.owner.get(node_id)
        while owner is not None:
            self.set(owner, reason=REASON_RECOVERED, message=f"recovered by fallback {node_id!r}")
            owner = self.graph.owner.get(owner)
        fallback = self.graph.fallback.get(node_id)
        if fallback is not None:
            self.skip(fallback, REASON_FALLBACK_NOT_NEEDED, f"{node_id!r} succeeded")
        self.checks.extend(self.graph.route_targets[node_id])

    def fail(self, node_id: str, attempt: int, at: datetime, message: str, timed_out: bool) -> None:
        config = self.graph.nodes[node_id].config
        reason = REASON_TIMEOUT if timed_out else REASON_ERROR
        if attempt < config.max_retries:
            delay = timedelta(milliseconds=config.retry_delay_ms(attempt))
            self.set(
                node_id,
                phase="Retrying",
                retry_at=self.now + delay,
                reason=reason,
                message=f"attempt {attempt} failed: {message}",
            )
            return
        self.set(node_id, phase="Failed", finished_at=at, reason=reason, message=message)
        noun = "attempt" if attempt == 1 else "attempts"
        self.final_failure(node_id, f"failed after {attempt} {noun}: {message}")

    # -- timers: the deadline and due retries ---------------------------------------------

    def check_deadline(self) -> None:
        deadline = self.deadline()
        if deadline is not None and self.now >= deadline:
            seconds = self.spec.active_deadline_seconds
            text = f"activeDeadlineSeconds ({seconds}s) exceeded"
            append_error(self.errors, f"flow {text}")
            self.stop("Failed", REASON_DEADLINE, text)

    def deadline(self) -> datetime | None:
        seconds = self.spec.active_deadline_seconds
        started = self.original.started_at
        if seconds is None or started is None:
            return None
        return started + timedelta(seconds=seconds)

    def collect_due_retries(self) -> None:
        for node_id in self.retrying:
            ns = self.nodes[node_id]
            if ns.phase == "Retrying" and ns.retry_at is not None and ns.retry_at <= self.now:
                self.ready.add(node_id)

    # -- starts and settling --------------------------------------------------------------

    def finish(self) -> Step:
        """Start what is ready (eagerly, in spec order, within parallelism), then settle."""
        while not self.terminal:
            self.drain_checks()
            progressed = False
            batching = self.batches.startable()
            for node_id in sorted({*self.ready, *batching}, key=self.graph.order.__getitem__):
                if self.terminal or self.blocked():
                    break
                if node_id in self.ready:
                    self.ready.discard(node_id)
                    self.start_node(node_id)
                    progressed = True
                while not self.terminal and not self.blocked():
                    if not self.batches.start_next(node_id):
                        break
                    progressed = True
            if not progressed:
                break
        self.batches.materialize()
        queue = [] if self.terminal else sorted(self.ready, key=self.graph.order.__getitem__)
        if not self.terminal:
            self.phase = "Running"
            self.settle(queue)
        # Every field is already valid: construct without re-validating 1,000 node entries.
        status = FlowStatus.model_construct(
            phase=self.phase,
            started_at=self.original.started_at,
            finished_at=self.finished_at,
            message=self.message,
            nodes=self.nodes,
            errors=self.errors,
            seq=self.seq,
            queue=queue,
            history=self.history,
        )
        wake = None if self.terminal else self.wake_at()
        return Step(status=status, actions=tuple(self.actions), wake_at=wake)

    def blocked(self) -> bool:
        limit = self.spec.parallelism
        running = self.running + self.batches.running
        return self.spec.suspend or (limit is not None and running >= limit)

    def start_node(self, node_id: str) -> None:
        ns = self.nodes[node_id]
        if ns.phase not in ("Pending", "Retrying"):
            return
        first = ns.phase == "Pending"
        attempt = ns.attempts + 1
        changes: dict[str, Any] = {"phase": "Running", "attempts": attempt, "retry_at": None}
        if first:
            changes |= {"started_at": self.now, "input_seq": self.seq}
        self.set(node_id, **changes)
        try:
            value = self.input_of(node_id)
        except ExpressionError as exc:
            self.set(
                node_id, phase="Failed", finished_at=self.now, reason=REASON_INPUT, message=str(exc)
            )
            self.final_failure(node_id, f"input could not be computed: {exc}")
            return
        kind = self.graph.builtin.get(node_id)
        if kind == "batch-scatter":
            self.batches.begin(node_id, value)
            return
        if kind in VIRTUAL:
            self.run_builtin(node_id, kind)
            return
        iteration = self.nodes[node_id].iteration or 0
        timeout = self.graph.timeout_seconds(node_id)
        self.actions.append(StartNode(node_id, attempt, value, timeout, iteration))

    def settle(self, queue: list[str]) -> None:
        """Finish the flow when nothing runs, waits for a retry, or waits for a slot."""
        if self.running or queue or self.batches.lives:
            return
        if any(self.nodes[n].phase == "Retrying" for n in self.retrying):
            return
        if any(self.nodes[n].phase == "Sleeping" for n in self.sleeping):
            return
        if any(self.nodes[n].phase == "Awaiting" for n in self.awaiting):
            self.phase = "Awaiting"  # until someone resumes a wait node (spec.resume)
            return
        active = [n for n in self.graph.order if self.nodes[n].phase in ACTIVE]
        if active and self.graph.loop_body:
            # With loops, a join can wait for a node that will never run again (a loop body
            # after its loop broke, or a node waiting on a loop that never started): as in
            # flowcraft, those nodes simply do not run.
            for node_id in active:
                self.set(
                    node_id,
                    phase="Skipped",
                    reason=REASON_NOT_REACHED,
                    message="never became ready: a predecessor in a loop did not run (again)",
                )
            active = []
        if active:
            # Defensive: every join resolves once its predecessors do, so this is a bug.
            append_error(self.errors, f"engine stalled with unresolved nodes: {', '.join(active)}")
            self.stop("Failed", REASON_FLOW_FAILED, "engine stalled")
            return
        self.finished_at = self.now
        if self.errors:
            self.phase = "Failed"
            summary = f"{error_count(self.errors)} failure(s): " + "; ".join(self.errors)
            self.message = bound_message(summary)
        else:
            self.phase = "Succeeded"
            self.message = f"all {len(self.nodes)} nodes done"

    def wake_at(self) -> datetime | None:
        times = [
            ns.retry_at
            for n in self.retrying
            if (ns := self.nodes[n]).phase == "Retrying"
            and ns.retry_at is not None
            and ns.retry_at > self.now
        ]
        times.extend(self.batches.wake_times())
        times.extend(
            ns.wake_at
            for n in self.sleeping
            if (ns := self.nodes[n]).phase == "Sleeping" and ns.wake_at is not None
        )
        deadline = self.deadline()
        if deadline is not None:
            times.append(deadline)
        return min(times) if times else None
