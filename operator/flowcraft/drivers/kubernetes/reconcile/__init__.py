"""One serialized reconcile per Flow: observe → engine → act → record.

Why this shape (the join trap, the one trap to design out): if every Job event decided on its own,
two branches of a join finishing together could each see "one predecessor still running".
Here events only *trigger*; decisions come from a single worker per Flow that takes a fresh
view of everything (the Flow from the API, Jobs and pods from the watch cache, outputs from
ConfigMaps) and runs the engine once over all of it. Triggers that arrive while it works are
coalesced into exactly one more pass, so a burst of 1000 Job completions costs a few passes,
not 1000.

Idempotency and restarts: the Flow's status plus its Jobs are the whole state. Every write is
safe to repeat: Job and ConfigMap names are deterministic per (Flow UID, node, attempt), and the
status is replaced with optimistic concurrency (a Conflict reruns the pass on a fresh read).
After a restart, the first pass finds every Job the status says is running (one that is gone
was deleted: its attempt fails, see ``lost``).

Ownership: an existing object is adopted only when this Flow object controls it (its
controller ownerReference has the Flow's UID). AlreadyExists on an object controlled by anyone
else (a deleted Flow of the same name, a squatter) is a conflict: the attempt fails with a
message naming the object and a Warning Event, so a retry (a new name) or the user can act;
the other object is never read, patched or deleted.

Order inside a pass: outputs are stored (ConfigMaps) before the engine runs, so neither a
status nor a pod ever points at a missing one. Then the Jobs the step asks for are created
and the status is written at the same time: the pass, which the Flow's next event waits for,
costs the longer of the two round trips, not their sum. Neither order matters for restarts,
since the status plus the Jobs are the whole state: a Job whose node the last written status
does not show running yet (the operator died before the write landed, or the write met a
Conflict) is adopted when the engine starts that node again (deterministic name); a node the
status shows running without a Job gets it from the first pass's re-ensure (unless something
shows the Job existed and was deleted: ``lost.left_no_trace``). So a success is
not recorded before its dependents' Jobs exist, and needs not be: it is observed again from
its Job and pod, and its output ConfigMap already exists. A create the API server refuses
(403: a quota) fails its attempt at once (``Cluster.refused``); a pass that fails otherwise
keeps the items it started to look at next pass (``worker.keeping_started``). Timers (retry
backoff, flow deadline) are ``loop.call_at`` handles that trigger a pass at the engine's
``wake_at``; none of this polls.

The package, in the order of a pass:

- ``worker``: :class:`Reconciler`, the per-Flow workers and the skeleton of a pass (read the
  Flow, prepare the engine, observe, advance, act, write the status and Events).
- ``observe``: engine events from the Jobs and pods of running attempts and batch items.
- ``outputs``: outputs of succeeded attempts, held for the engine and stored in ConfigMaps.
- ``act``: the engine's step carried out: Jobs created, deleted, re-ensured, suspended.
- ``items`` and ``rounds``: batch items, as a Job each or a round per Indexed Job.
- ``lost``: node timeouts timed by the operator, and objects that vanish under a running
  Flow (a deleted output ConfigMap is restored; a deleted Job or a completed Job without its
  pod fails the attempt).
- ``manifests``: the Job manifests (pure); ``cluster``: the collaborators (client, cache,
  settings) and the ownership-checked writes every step shares; ``state``: the per-Flow
  bookkeeping and the per-pass context all of them take explicitly.
"""

from flowcraft.drivers.kubernetes.reconcile.worker import (
    BATCH_INDEXED,
    BATCH_JOB_PER_ITEM,
    BATCH_MODES,
    Reconciler,
)

__all__ = ["BATCH_INDEXED", "BATCH_JOB_PER_ITEM", "BATCH_MODES", "Reconciler"]
