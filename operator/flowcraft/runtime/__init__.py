"""The node runtime: what runs inside one node attempt, on a laptop and in a pod alike.

Why it exists: the local runner and the Kubernetes operator must run a node's function the same
way, so "works locally" means "works on the cluster". Both drivers only prepare files and
environment variables, start ``python -m flowcraft.runtime`` (a subprocess locally, the runner
image's container on the cluster) and read one result file back. The runtime is stdlib-only so
it starts fast and fits in a tiny runner image: it never imports the model, the engine, pydantic,
yaml or CEL.

The contract (file-based, so Kubernetes can mount every input from ConfigMaps):

Environment
    ``FLOWCRAFT_NODE``       the node id (required)
    ``FLOWCRAFT_ATTEMPT``    the attempt number, 1-based (optional, default 1)
    ``FLOWCRAFT_IN``         the input directory (required, may be read-only)
    ``FLOWCRAFT_OUT``        the result file to write (required; on the cluster the container's
                             ``terminationMessagePath``, ``/dev/termination-log``)
    ``FLOWCRAFT_OUT_LIMIT``  optional size limit of a result in bytes, measured as it is
                             stored: the compact JSON of the output plus that of the context
                             writes. Both drivers set 1,048,576 = ``DEFAULT_OUT_LIMIT``, the
                             data limit of the ConfigMap a result is stored in.
    ``FLOWCRAFT_OUT_INLINE`` optional size of ``$FLOWCRAFT_OUT`` in bytes (the cluster sets
                             4096, what the kubelet keeps of a termination message). A result
                             that does not fit is compressed; if it still does not fit it is
                             printed to stdout as a framed block and ``$FLOWCRAFT_OUT`` holds
                             a reference to it (``flowcraft.contract.frame_result``), which
                             the operator reads from the finished pod's log.

Files in ``$FLOWCRAFT_IN``
    ``function.json``        ``{"script": "<python source defining run(ctx)>"}`` or
                             ``{"python": "pkg.module:function"}``; an optional ``"name"`` (the
                             ``uses`` key) only improves messages. Required.
    ``params.json``          the node's params, a JSON object (optional, default ``{}``)
    ``input.json``           the node's input, any JSON value (optional, default ``null``)
    ``outputs/<id>.json``    the output value (not the envelope) of each completed node the
                             function may read, as the flow's context shows it (a node
                             recovered by its fallback shows the fallback's output); a
                             missing file reads as "no output" (``ctx.get`` -> default)
    ``writes/<id>.json``     the context writes of those that wrote (``view.json`` names them)
    ``view.json``            the order in which the runtime folds them into the context
    ``context.json``         the flow's initial context, when it has one

What a node gets (the mount rule, both drivers; defined once by ``Engine.view``): the stored
results folded into the context it can read, and nothing else. That is every success that
completed before the node started (flowcraft's context is shared, so this is the node's
ancestors and whatever else had finished: the context keys in scope), minus any result none
of whose keys (``_outputs.<id>``, ``<id>``, its writes) is still visible because a later
result set or removed them all (an earlier loop iteration of the same node, typically): a
300-iteration loop mounts the last iteration's results, not 300. Its input is ``input.json``;
on the cluster an input of 16 KiB or more that is a stored output is mounted from that
output's ConfigMap instead of being copied into the pod template.

The function is called with one argument, a :class:`NodeContext` (``ctx.params``, ``ctx.input``,
``ctx.node_id``, ``ctx.attempt``, ``ctx.get(key, default=None)`` over the flowcraft-style context
keys ``_outputs.<id>``, ``<id>`` and ``_inputs.<own id>`` (other nodes' inputs are not
provided), and ``ctx.log(...)`` which writes a line to stderr). It may be sync or async (an
awaitable result is run with ``asyncio.run``).

Result rule: the return value is the node's output, except a dict whose keys are exactly
``{"output"}`` or ``{"output", "action"}``: that is an envelope naming the output and the action
(a string or None) used for routing.

``$FLOWCRAFT_OUT`` receives one JSON object, UTF-8:
    success  ``{"output": <value>, "action": <string|null>}``
    failure  ``{"error": "<Type>: <message>", "traceback": "<last traceback lines>"}``; the
             traceback is trimmed (oldest lines first) so the whole file fits the limit.
    The file holds ``{"error": "NoResult: ..."}`` from the start until the result replaces
    it, so a process that exits early (``os._exit(0)``, ``sys.exit``, killed by a signal)
    fails with "exited without a result" instead of succeeding with a null output.

Exit codes
    0  the function returned a JSON-serializable output within the limit (a 0 with the
       NoResult error above is still a failure)
    1  the function failed: it raised (while loading or running), returned an output that is
       not JSON-serializable, an action that is not a string, or an output over the limit
    2  the node could not be set up: a required environment variable or ``function.json`` is
       missing or malformed, a JSON file is unreadable, or the result file cannot be written
       (a driver or mount problem, not the user's function)

Images that do not contain the runtime (container functions) get the same environment and
files and may write either envelope to ``$FLOWCRAFT_OUT``; :func:`parse_result` reads what any
image wrote (nothing → a null output; other JSON → the output; other text → a string output).
"""

from flowcraft.contract import (
    DEFAULT_OUT_LIMIT,
    ENV_ATTEMPT,
    ENV_IN,
    ENV_NODE,
    ENV_OUT,
    ENV_OUT_LIMIT,
    EXIT_FUNCTION_FAILED,
    EXIT_OK,
    EXIT_SETUP_FAILED,
    FUNCTION_FILE,
    INPUT_FILE,
    OUTPUTS_DIR,
    PARAMS_FILE,
    NodeResult,
    parse_result,
)
from flowcraft.runtime.node import NodeContext, main

__all__ = [
    "DEFAULT_OUT_LIMIT",
    "ENV_ATTEMPT",
    "ENV_IN",
    "ENV_NODE",
    "ENV_OUT",
    "ENV_OUT_LIMIT",
    "EXIT_FUNCTION_FAILED",
    "EXIT_OK",
    "EXIT_SETUP_FAILED",
    "FUNCTION_FILE",
    "INPUT_FILE",
    "OUTPUTS_DIR",
    "PARAMS_FILE",
    "NodeContext",
    "NodeResult",
    "main",
    "parse_result",
]
