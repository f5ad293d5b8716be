"""Built-in nodes the engine runs itself, without a pod: sleep, wait, loop controllers.

Why a module of its own: these nodes are timers and decisions held in the snapshot, not work a
driver does. sleep is a durable timer (`wakeAt` in the status, so a restart neither forgets nor
repeats it), wait holds the flow until `spec.resume` names the node, and a loop controller
evaluates its condition and, on each new arrival, re-arms its body for the next iteration
(bounded by maxIterations). The batch-gather is finished here too; batch-scatter items are
`batch`'s.
"""

from __future__ import annotations

from datetime import timedelta

from flowcraft.contract import Write
from flowcraft.engine.state import RunState
from flowcraft.engine.types import REASON_LOOP_LIMIT, REASON_ROUTING, NodeSucceeded
from flowcraft.engine.values import resume_data, truthy
from flowcraft.model import Completion, ExpressionError, NodeStatus


class BuiltinNodes(RunState):
    """Running sleep, wait, loop-controller and batch-gather nodes, and re-arming loops."""

    def run_builtin(self, node_id: str, kind: str | None) -> None:
        """sleep: a durable timer (wake_at in the status); wait: Awaiting until spec.resume
        names the node; loop-controller: its condition decides continue or break."""
        ns = self.nodes[node_id]
        if kind == "sleep":
            delay = timedelta(milliseconds=self.graph.sleep_ms(node_id))
            self.set(node_id, phase="Sleeping", wake_at=self.now + delay)
            self.sleeping.append(node_id)
            return
        if kind == "wait":
            self.set(node_id, phase="Awaiting")
            self.awaiting.append(node_id)
            self.resume_waiters()
            return
        if kind == "batch-gather":
            self.finish_builtin(node_id, None, tuple(self.writes_of(node_id)))
            return
        condition = self.graph.loop_condition[node_id]
        context = self.context_at(ns.input_seq or 0)
        try:
            value = condition.evaluate({**context, "context": context})
        except ExpressionError as exc:
            self.fail_builtin(node_id, REASON_ROUTING, f"loop condition: {exc}")
            return
        action = "continue" if truthy(value) else "break"
        limit = self.graph.loop_limit[node_id]
        if action == "continue" and (ns.iteration or 0) >= limit:
            self.fail_builtin(
                node_id,
                REASON_LOOP_LIMIT,
                f"loop {node_id!r} exceeded maxIterations ({limit}); raise params.maxIterations "
                "or check its condition",
            )
            return
        self.finish_builtin(node_id, action)

    def finish_builtin(
        self, node_id: str, action: str | None, writes: tuple[Write, ...] = ()
    ) -> None:
        ns = self.nodes[node_id]
        event = NodeSucceeded(
            node_id,
            ns.attempts,
            self.now,
            action=action,
            writes=writes,
            iteration=ns.iteration or 0,
        )
        self.succeed(event)

    def fail_builtin(self, node_id: str, reason: str, message: str) -> None:
        self.set(node_id, phase="Failed", finished_at=self.now, reason=reason, message=message)
        self.final_failure(node_id, message)

    def wake_sleepers(self) -> None:
        for node_id in self.sleeping:
            ns = self.nodes[node_id]
            if ns.phase == "Sleeping" and ns.wake_at is not None and ns.wake_at <= self.now:
                self.set(node_id, wake_at=None)
                self.finish_builtin(node_id, None)

    def resume_waiters(self) -> None:
        """Awaiting wait nodes whose resume data is in the spec succeed with it."""
        for node_id in self.awaiting:
            if self.nodes[node_id].phase != "Awaiting":
                continue
            _, action, present = resume_data(self.spec.resume, node_id)
            if present:
                self.finish_builtin(node_id, action)

    def rearm(self, controller: str) -> None:
        """Start a loop's next iteration: its body's results so far move to the history
        (they stay in the context), the body nodes become Pending again, and the controller
        evaluates its condition anew. Nodes still running finish their own iteration.
        The controller's iteration count is bounded by maxIterations, whatever re-runs it."""
        limit = self.graph.loop_limit[controller]
        if (self.nodes[controller].iteration or 0) + 1 > limit:
            if self.nodes[controller].phase == "Succeeded":
                self.set(controller, phase="Pending")  # so it can be marked Failed below
            self.fail_builtin(
                controller,
                REASON_LOOP_LIMIT,
                f"loop {controller!r} exceeded maxIterations ({limit}); raise "
                "params.maxIterations or check its condition",
            )
            return
        members = self.graph.loop_body[controller] | {controller}
        for node_id in sorted(members, key=lambda m: self.nodes[m].seq or 0):
            ns = self.nodes[node_id]
            if ns.phase in ("Running", "Retrying", "Sleeping", "Awaiting"):
                continue
            if ns.phase == "Pending" and node_id != controller:
                continue  # never reached in this iteration: nothing to reset
            if ns.phase == "Succeeded" and ns.seq is not None:
                self.history.append(
                    Completion(
                        node=node_id,
                        iteration=ns.iteration or 0,
                        attempt=ns.attempts,
                        seq=ns.seq,
                        output_ref=ns.output_ref,
                        action=ns.action,
                        taken_edges=ns.taken_edges,
                        writes=ns.writes,
                        items=ns.batch.total if ns.batch is not None else None,
                    )
                )
            self.nodes[node_id] = NodeStatus(iteration=(ns.iteration or 0) + 1)
        self.forget_views()
        self.ready.add(controller)
