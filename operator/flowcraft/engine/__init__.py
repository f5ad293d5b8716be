"""The flow engine: a pure, I/O-free state machine shared by the local runner and the operator.

Why pure: the same decisions must come out on a laptop and on a cluster, after any restart.
The engine reads no clock (time is passed in), does no I/O, and keeps its whole state in a
small JSON-serializable snapshot (`FlowStatus`, stored in the Flow's `.status`). Drivers feed
it events and execute the actions it returns:

    engine = Engine(spec)                    # compiles the graph and CEL programs once
    step = engine.start(now)                 # Running status + StartNode for the roots
    step = engine.advance(step.status, events, now, outputs)
    # step.actions: StartNode / CancelNode; step.wake_at: call advance() (no events) then

`outputs` maps node id -> that node's output (the driver stores outputs; the snapshot only
holds `outputRef`). The engine reads it lazily, only for values it needs (transforms,
conditions, inputs); a needed but absent output raises MissingOutputError.

Semantics
---------
Eager starts. A node starts in the very step its join is satisfied, not wave by wave; roots
(no incoming edges, not a fallback) start at `start`.

Joins. `all` (default): every incoming edge is resolved (taken or dead) and at least one is
taken. `any`: starts on the first taken arrival and runs once; later arrivals are ignored
(routing still records them). A node whose incoming edges are all dead is Skipped
(reason NotRouted), and skipping propagates (its outgoing edges are dead), so joins never hang.

Routing (decided once, when a node succeeds, and recorded as `takenEdges`). If the result
names an `action`, the edges with that action are candidates; if it names none, or none of
its action edges passes its condition, the edges without an action are candidates (as in
flowcraft). An edge's `condition` (CEL, must evaluate to a bool) filters; the rest are dead.
Expression scope: `result` = {"output", "action"} of the node, `input` = that node's input,
`context` = {"_outputs.<id>": output, "<id>": output} of nodes that had succeeded by then
(including this one). A failing or non-bool condition or transform fails the node (reason
RoutingError, the message names the edge and the expression; no retry, its fallback still
applies). Transforms are evaluated at routing time to catch errors early and recomputed,
identically, when the target starts.

Inputs (a deterministic function of snapshot + outputs; the same after a restart).
* node with `inputs`: selected from the context as it was when the node first started:
  a string key, or a mapping name -> key; a key starting with `_` is read as is, otherwise
  `_outputs.<key>` if present, else `<key>` (flowcraft's rules); missing keys give null.
* otherwise, per distinct predecessor whose edge was taken (before the node first started):
  the edge's `transform` result, else the predecessor's output. One such predecessor: that
  value; several: {predecessor id: value}; none (a root): null.
* a fallback node gets the input of the node it replaces.
* every attempt of a node gets the same input.

Retries and timeouts. `maxRetries` counts attempts. After attempt k < maxRetries fails, the
node is Retrying with `retryAt = now + retryDelay * 2**(k-1)` ms and `wake_at` points there;
an advance at/after retryAt issues attempt k+1. `timeout` becomes
`StartNode.timeout_seconds`; drivers enforce it and report NodeFailed(timed_out=True), which
counts as a failed attempt (reason Timeout).

Fallback. After the last attempt fails, the node's `fallback` starts (input: the failed
node's input) and inherits the failed node's outgoing edges: when it succeeds, routing runs
over its own edges plus the inherited ones, the failed node is marked reason Recovered and
its context keys show the fallback's output, and the flow can still succeed. A fallback
node has no incoming edges (validation), never starts as a root, and is Skipped
(FallbackNotNeeded) once its node succeeds or is skipped. Fallbacks may chain.

Failure. A final failure with no fallback (or whose fallback chain failed) adds an entry to
`errors`. failFast (default): the flow fails at once; running attempts get CancelNode and
become Cancelled, nodes not yet finished become Cancelled (reason FlowFailed). failFast
false: independent branches carry on; an `all` join downstream of the failure is Skipped
(UpstreamFailed, propagated), an `any` join treats the failed edge as dead; the flow ends
Failed once nothing runs.

Parallelism. At most `parallelism` nodes Running; ready nodes wait in `status.queue` and start
in spec order as slots free. `suspend: true` starts nothing new (running nodes finish).

Deadline. On an advance with now >= startedAt + activeDeadlineSeconds: running attempts are
cancelled, everything unfinished is Cancelled (DeadlineExceeded), the flow Fails with an
error naming the deadline. `wake_at` includes the deadline while the flow runs.

Cancellation. CancelFlow: CancelNode for running attempts, unfinished nodes Cancelled, flow
Cancelled. Later events are ignored.

Idempotence. Events for unknown nodes, for a node that is not Running, or for another attempt
are ignored; NodeStarted is informational (startedAt is set when StartNode is issued). A
terminal flow ignores every event. The status passed in is never mutated; treat every
snapshot as a value (do not edit one in place and hand it back: the engine reuses an index of
the last snapshot it returned, which is what keeps an event O(edges of the node)). A status
whose nodes do not match the spec (spec edited mid-run) is rejected with EngineError.

Flow phase. Running from `start`; Succeeded when nothing is left to run and no failure was
unrecovered; Failed/Cancelled as above; `finishedAt` is set once.
"""

from flowcraft.engine.core import Engine
from flowcraft.engine.types import (
    Action,
    CancelFlow,
    CancelNode,
    EngineError,
    Event,
    MissingOutputError,
    NodeFailed,
    NodeStarted,
    NodeSucceeded,
    StartNode,
    Step,
)

__all__ = [
    "Action",
    "CancelFlow",
    "CancelNode",
    "Engine",
    "EngineError",
    "Event",
    "MissingOutputError",
    "NodeFailed",
    "NodeStarted",
    "NodeSucceeded",
    "StartNode",
    "Step",
]
