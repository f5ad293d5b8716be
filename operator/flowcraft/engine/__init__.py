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
flowcraft 2.10.1's runtime is the reference; where a difference is kept on purpose the README
lists it. `outputs` and `writes` are keyed by `contract.result_key(node, iteration)`.

Eager starts. A node starts in the very step its join is satisfied, not wave by wave; roots
(no incoming edges, not a fallback) start at `start` (a flow that is all cycles enters through
its loop controllers).

Joins. `all` (default): every incoming edge is resolved (taken or dead) and at least one is
taken. `any`: starts on the first taken arrival and runs once; later arrivals are ignored
(routing still records them; flowcraft would run the node again). A node whose incoming edges
are all dead is Skipped (reason NotRouted), and skipping propagates (its outgoing edges are
dead), so joins in a DAG never hang. Loop controllers are always `any` joins that run again on
every new arrival. With loops, a node whose join can no longer be satisfied (a loop body after
its loop broke, a node waiting on a loop that never ran) ends Skipped (NotReached) once nothing
else can run, and the flow completes, as flowcraft's does.

Routing (decided once per success, recorded as `takenEdges`). A loop controller first takes
its conditional edges that pass. If the result names an `action`, the edges with that action
are candidates; if it names none, or none of its action edges passes its condition, the edges
without an action are candidates. An edge's `condition` filters (flowcraft: JavaScript
truthiness; CEL: must be a bool). If nothing is taken, flowcraft's rule applies: every
outgoing edge whose target has no conditional incoming edge is a trigger (recorded as
-(index+1)): the target may start (its join permitting) but gets no input from it.
Expressions (`spec.expressionLanguage`: flowcraft, default, or cel) see flowcraft's scopes:
a condition {every context key, "result": {"output", "action"}, "context": context}, a
transform {"input": the source's output, "context": context}, with the context as it stands
after the source's success. In the flowcraft language a runtime error (missing variable,
property of undefined) yields undefined, as flowcraft's evaluators do; a CEL error, a non-bool
CEL condition or an exceeded step budget fails the node (reason RoutingError, naming the edge
and the expression; no retry, its fallback still applies). Transforms are evaluated when the
source routes and recomputed identically from the snapshot.

Context (flowcraft's shared, writable context; `Engine.context` gives the final one). The
initial context (`spec.context`), then per success in completion order: the node's writes
(set/delete, travelling with its result; a failed attempt's writes are discarded), its output
as `_outputs.<id>` and `<id>`, then `_inputs.<target>` for each edge it took (transform
result, else its output). A node recovered by its fallback reads as null. Earlier loop
iterations stay in the fold (the flow's history). `Engine.view` lists what a node's runtime
folds for its own context: everything that completed before it first started.

Inputs (a deterministic function of snapshot + stored results; the same after a restart).
* without `inputs`, or when a taken incoming edge had a transform: `_inputs.<id>`, i.e. the
  value of the last taken incoming edge (in completion order) before the node first started;
  a root (or a fallback) reads `_inputs.<id>` from the initial context (else null);
* with `inputs` (and no transform edge): selected from the context as it was when the node
  first started: a string key, or a mapping name -> key; a key starting with `_` is read as
  is, otherwise `_outputs.<key>` if present, else `<key>`; missing keys give null;
* a transform's `input` is the source's output, except when the target's `inputs` is a
  string naming a completed node's output (or `_`-key) other than the source: then that value
  (flowcraft's rule, including after an earlier edge made it `_inputs.<id>`);
* every attempt of a node gets the same input.

Built-ins the engine runs itself (no pod). sleep: phase Sleeping, `wakeAt` in the status
(`params.duration` ms or 5s/1m/2h/1d); it succeeds at wake-up with its input as output, so a
restart neither forgets nor repeats it. wait: phase Awaiting, the flow Awaiting once nothing
else can move; it succeeds when `spec.resume[<id>]` holds resume data (`{"output", "action"}`,
any other value is the output). loop-controller: evaluates `params.condition` over the
context (context keys at top level, plus `context`): truthy -> action continue (output
undefined), else break (output null). Each new arrival re-runs it: its body (everything
reachable from the `continue` target without crossing a controller) is reset to Pending for
the next iteration, its successes moving to the history; attempts of a later iteration are
StartNode(iteration=k). More than `params.maxIterations` (default 100) iterations fail it
(reason MaxIterations), which also ends flowcraft's loops that never break.

Batches (`engine.batch`). A batch-scatter's input must be an array (null: empty; anything
else fails it: "Input for batch-scatter node '<id>' must be an array."). It stays Running while
its items run: StartNode(node=scatter, item=i, uses=params.workerUsesKey, input=item i), in
rounds of `params.chunkSize` (default: all; round k+1 starts once every item of round k
succeeded), in index order, each item taking a `parallelism` slot (the scatter takes none and
is not in `running()`; see `running_items()`). Items get the scatter's `timeout`,
`maxRetries` and `retryDelay` backoff (BatchStatus.retryAt, in `wake_at`); events carry
`item`. An item's last failure fails the scatter (message "item <i> failed after <k>
attempts: <error>"), cancels its running items (CancelNode(item=j); they and retrying items
become "C"), then the scatter's fallback or failFast apply. When every item succeeded, the
scatter succeeds with output {gatherNodeId, hasMore: false}; the batch-gather is run by the
engine: output = the item outputs in item order (drivers store them under
`contract.item_key(scatter, iteration, item)`), writing `params.outputKey` = that list; if the
scatter did not succeed (its fallback recovered it) the list is empty. The status holds
`NodeStatus.batch` (one character per item; attempts and retryAt only for retried items),
so 10,000 items cost ~11 KB and an item event costs O(1) plus one copy of that string (the
engine indexes running and retrying items beside its last snapshot). The final context adds
flowcraft's keys, with the batch id uuid5(URL, "flowcraft-batch:<scatter>:<iteration>"):
`_batch.<scatter>_<id>_item_<i>`, `<scatter>_currentIndex`, `<gather>_hasMore`,
`<gather>_allWorkerIds` before the scatter's output, each worker's output (`<uses>_<id>_<i>`,
and its writes) after it, in item order. What nodes see (inputs, conditions, views) leaves
these per-item keys and the items' writes out: the scatter and the gather appear inline, the
gather with its write. In a loop body a batch re-runs per iteration (items keyed by it).

Subflows. A `subflow` node is, to the engine, a function node: StartNode out, NodeSucceeded /
NodeFailed in; retries, timeout, fallback and cancel apply. The driver runs the blueprint named
by `params.blueprintId` as a child flow (a nested runner locally, a child Flow owned by the
parent on a cluster) and maps data as flowcraft's SubflowNode does (`engine.subflow`): the
child's initial context from `params.inputs` (child key <- the parent's key, else
`_outputs.<key>`), or without it `_inputs.<start>` = the node's input for every start node;
with `params.outputs` the node writes `parentKey = child['_outputs.'+subKey] ?? child[subKey]`
and outputs the child's whole final context, without it the single terminal node's output or
{terminal: output}. A child that does not succeed fails the node. Subflows nest at most 10 deep.

Retries and timeouts. `maxRetries` counts attempts. After attempt k < maxRetries fails, the
node is Retrying with `retryAt = now + retryDelay * 2**(k-1)` ms and `wake_at` points there;
an advance at/after retryAt issues attempt k+1. `timeout` becomes
`StartNode.timeout_seconds`; drivers enforce it and report NodeFailed(timed_out=True), which
counts as a failed attempt (reason Timeout).

Fallback. After the last attempt fails, the node's `fallback` starts (as a root: no input
from the failed node, as in flowcraft) and inherits the failed node's outgoing edges: when it
succeeds, routing runs over its own edges plus the inherited ones, the failed node is marked
reason Recovered and its context keys read null, and the flow can still succeed. A fallback
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

Flow phase. Running from `start`; Awaiting while only wait nodes hold it (not terminal:
resume data moves it on); Succeeded when nothing is left to run and no failure was
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
