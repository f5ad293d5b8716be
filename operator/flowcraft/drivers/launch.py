"""One node attempt as every driver launches it: the launch contract (pure: no I/O, no clock).

Why a module of its own: a node attempt runs as a pod on the cluster, as a ``docker run``
locally (container functions) or as a local ``python -m flowcraft.runtime`` process
(script/python functions). When each of those prepared its files and environment by its own
rules they drifted apart (a function's ``env`` was ignored locally, a container ran locally as
root with a writable root filesystem), so "works locally" no longer meant "works on the
cluster". Here one function, :func:`node_launch`, decides everything an attempt gets; the
drivers only *render* the result:

- ``drivers.kubernetes.jobs`` into a Job (annotations and ConfigMaps projected into one
  read-only volume, the container's env, command, securityContext, resources, deadline);
- ``drivers.local_launch`` into a run directory plus ``docker run`` arguments (the same paths
  inside the container, the same user, read-only root, capabilities, env and limits) or a
  subprocess (the same files and env, at host paths).

What a node may *see* is not decided here: the engine's ``Engine.view`` decides it and the
driver passes it in (``view``); this module only turns it into file names. Wire names
(environment variables, file names, the result key encoding) are ``flowcraft.contract``'s.

Known, deliberate differences between the renderings (each is tested):
- a local script/python function runs as a host process: paths are host paths, the host's
  environment is underneath the launch's, and user, read-only root, capabilities and resource
  limits cannot be applied (there is no sandbox to apply them to);
- container networking: a pod gets its cluster's pod network (restricted by whatever
  NetworkPolicies the cluster has); a local container gets none (``--network none``): no field
  of a function asks for network, and a local run must not reach further than a cluster may
  let it, so a flow that works locally still works where egress is denied;
- the result file: on the cluster it is the container's termination message, of which the
  kubelet keeps 4 KiB (``FLOWCRAFT_OUT_INLINE``): the runtime sends a larger result through
  the pod's log instead; locally the file has no size of its own. The result limit (1 MiB,
  ``FLOWCRAFT_OUT_LIMIT``) is the same everywhere.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from flowcraft.contract import (
    DEFAULT_OUT_LIMIT,
    ENV_ATTEMPT,
    ENV_IN,
    ENV_NODE,
    ENV_OUT,
    ENV_OUT_INLINE,
    ENV_OUT_LIMIT,
    FUNCTION_FILE,
    INPUT_FILE,
    OUTPUTS_DIR,
    PARAMS_FILE,
    TERMINATION_MESSAGE_LIMIT,
    VIEW_FILE,
    WRITES_DIR,
    ViewItem,
    file_stem,
)
from flowcraft.engine.batch import worker_id
from flowcraft.model import FunctionSpec, NodeSpec
from flowcraft.model.flow import FunctionKind

# Where a node's inputs are inside its container, and where it writes its result (the
# container's termination message file on the cluster; a bind-mounted file locally).
IN_DIR = "/flowcraft/in"
OUT_FILE = "/dev/termination-log"
TMP_DIR = "/tmp"  # the one writable directory of a container (emptyDir / tmpfs)
NODE_UID = 65532  # the runner image's non-root user ("nonroot" by convention)
RUNTIME_COMMAND = ("python3", "-m", "flowcraft.runtime")
CLUSTER_OUT_LIMIT = DEFAULT_OUT_LIMIT  # a result's stored size: what one ConfigMap holds
# What $FLOWCRAFT_OUT keeps on the cluster (the kubelet's termination-message limit): a larger
# result travels as a framed block in the pod's log (``flowcraft.contract.frame_result``).
CLUSTER_OUT_INLINE = TERMINATION_MESSAGE_LIMIT

# What a container with a read-only root needs: a writable HOME, no .pyc writes.
SANDBOX_ENV: tuple[tuple[str, str], ...] = (("HOME", TMP_DIR), ("PYTHONDONTWRITEBYTECODE", "1"))

# The inputs of an attempt travel in its pod template's annotations; the API server caps all
# annotations of an object at 256 KiB: leave room for the rest. Checked for every driver, so
# an attempt that starts locally also fits on the cluster.
MAX_PAYLOAD_BYTES = 200 * 1024
# An input at least this large that is a stored output is read from where that output is
# stored (its ConfigMap on the cluster) rather than copied into the pod template: a 700 KiB
# result must reach the next node, and annotations hold 256 KiB in all.
INPUT_BY_REFERENCE_BYTES = 16 * 1024


class LaunchError(ValueError):
    """A node attempt cannot be launched; the attempt fails with this message."""


class PayloadTooLarge(LaunchError):
    """A node's function, params and input do not fit in its pod template."""


@dataclass(frozen=True)
class Sandbox:
    """The security settings of a container attempt (pod and local ``docker run`` alike)."""

    user: int = NODE_UID
    group: int = NODE_UID
    read_only_root: bool = True
    drop_capabilities: tuple[str, ...] = ("ALL",)
    privilege_escalation: bool = False
    writable: tuple[str, ...] = (TMP_DIR,)


@dataclass(frozen=True)
class StoredFile:
    """An input file whose content is a stored result: part ``part`` of result ``key``, at
    ``path`` (relative to the input directory)."""

    path: str
    key: str
    part: Literal["output", "writes"]


@dataclass(frozen=True)
class Launch:
    """Everything one node attempt gets, independent of where it runs."""

    node: str  # the flow's node id (a batch item: its scatter's)
    node_id: str  # the id the function sees ($FLOWCRAFT_NODE; a batch item: its worker's id)
    attempt: int
    iteration: int
    item: int | None
    uses: str
    kind: FunctionKind
    image: str  # what a container renderer runs (the function's image or the runner image)
    files: tuple[tuple[str, str], ...]  # (name in the input dir, JSON text), written as given
    stored: tuple[StoredFile, ...]  # stored results the attempt may read, in view order
    initial_context: bool  # whether INITIAL_CONTEXT_FILE (the flow's initial context) is given
    env: tuple[tuple[str, str], ...]  # container env: contract, sandbox, then the function's
    command: tuple[str, ...] | None  # None: the image's own entrypoint
    args: tuple[str, ...] | None
    sandbox: Sandbox
    resources: Mapping[str, Mapping[str, str]]  # {"requests"?: {...}, "limits"?: {...}}
    timeout_seconds: float | None
    out_limit: int | None

    @property
    def runs_runtime(self) -> bool:
        """Whether the node runtime runs the attempt (script/python), not the user's image."""
        return self.kind != "container"

    def file_map(self) -> dict[str, str]:
        return dict(self.files)

    def env_map(self) -> dict[str, str]:
        return dict(self.env)

    def host_env(self, in_dir: str, out_file: str) -> dict[str, str]:
        """The launch's environment for a host process: the contract's paths are host paths
        and the sandbox's variables are left out (the host's own environment is underneath)."""
        sandbox = {name for name, _ in SANDBOX_ENV}
        env = {k: v for k, v in self.env if k not in sandbox}
        env[ENV_IN] = in_dir
        env[ENV_OUT] = out_file
        return env

    @property
    def payload_bytes(self) -> int:
        return sum(len(text.encode()) for _, text in self.files)


def dumps(value: Any) -> str:
    """The JSON text of an input file (compact, UTF-8, no NaN: what the runtime reads)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def function_document(fn: FunctionSpec, uses: str) -> dict[str, str]:
    """The runtime's ``function.json`` (an image function's names its image, for messages)."""
    if fn.script is not None:
        return {"script": fn.script, "name": uses}
    if fn.python is not None:
        return {"python": fn.python, "name": uses}
    return {"image": fn.image or "", "name": uses}


def stored_files(view: Sequence[ViewItem]) -> tuple[StoredFile, ...]:
    """The files a view's stored results become: ``outputs/<stem>.json`` and, for a result
    that wrote to the context, ``writes/<stem>.json`` (inline and undefined entries travel in
    ``view.json`` itself)."""
    out: list[StoredFile] = []
    for entry in view:
        if entry.key is None:
            continue
        stem = file_stem(entry.key)
        out.append(StoredFile(f"{OUTPUTS_DIR}/{stem}.json", entry.key, "output"))
        if entry.wrote:
            out.append(StoredFile(f"{WRITES_DIR}/{stem}.json", entry.key, "writes"))
    return tuple(out)


def environment(
    node_id: str,
    attempt: int,
    fn: FunctionSpec,
    out_limit: int | None,
    inline_limit: int | None = None,
) -> tuple[tuple[str, str], ...]:
    """The container environment: the contract's variables, the sandbox's, then the
    function's own ``env`` (sorted; it cannot override the names set before it)."""
    env = [
        (ENV_NODE, node_id),
        (ENV_ATTEMPT, str(attempt)),
        (ENV_IN, IN_DIR),
        (ENV_OUT, OUT_FILE),
    ]
    if out_limit is not None:
        env.append((ENV_OUT_LIMIT, str(out_limit)))
    if inline_limit is not None:
        env.append((ENV_OUT_INLINE, str(inline_limit)))
    env.extend(SANDBOX_ENV)
    reserved = {name for name, _ in env} | {ENV_OUT_LIMIT, ENV_OUT_INLINE}
    env.extend((k, v) for k, v in sorted((fn.env or {}).items()) if k not in reserved)
    return tuple(env)


def node_launch(
    node: NodeSpec,
    fn: FunctionSpec,
    *,
    attempt: int,
    input_value: Any,
    view: Sequence[ViewItem],
    initial_context: bool,
    runner_image: str,
    timeout_seconds: float | None,
    out_limit: int | None,
    iteration: int = 0,
    item: int | None = None,
    uses: str | None = None,
    inline_limit: int | None = None,
    input_key: str | None = None,
) -> Launch:
    """What attempt ``attempt`` of ``node`` (or of batch item ``item`` of the scatter
    ``node``, then ``uses`` names the worker function ``fn``) gets.

    ``view`` is what the engine decided the attempt may see; ``initial_context`` whether the
    flow has an initial context (``spec.context``). A batch item runs without params (as
    flowcraft's dynamic worker nodes) under its worker's id. ``inline_limit`` is what the
    result file keeps (the cluster's termination message); ``input_key`` names the stored
    result whose output is the input (see :func:`input_source`): ``input.json`` is then that
    stored output, not a copy. Raises :class:`PayloadTooLarge` when function, params and
    input cannot travel in a pod template.
    """
    worker = uses if item is not None and uses else None
    node_id = (
        node.id if worker is None or item is None else worker_id(worker, node.id, iteration, item)
    )
    what = f"node {node.id!r}" if item is None else f"item {item} of node {node.id!r}"
    files = (
        (FUNCTION_FILE, dumps(function_document(fn, worker or node.uses))),
        (PARAMS_FILE, dumps({} if item is not None or uses is not None else node.params)),
        *(() if input_key is not None else ((INPUT_FILE, dumps(input_value)),)),
        (VIEW_FILE, dumps([entry.to_json() for entry in view])),
    )
    stored = stored_files(view)
    if input_key is not None:
        stored += (StoredFile(INPUT_FILE, input_key, "output"),)
    launch = Launch(
        node=node.id,
        node_id=node_id,
        attempt=attempt,
        iteration=iteration,
        item=item,
        uses=worker or node.uses,
        kind=fn.kind,
        image=fn.effective_image(runner_image),
        files=files,
        stored=stored,
        initial_context=initial_context,
        env=environment(node_id, attempt, fn, out_limit, inline_limit),
        command=_command(fn),
        args=tuple(fn.args) if fn.kind == "container" and fn.args is not None else None,
        sandbox=Sandbox(),
        resources=_resources(fn),
        timeout_seconds=timeout_seconds,
        out_limit=out_limit,
    )
    if launch.payload_bytes > MAX_PAYLOAD_BYTES:
        raise PayloadTooLarge(
            f"{what}: function, params and input take {launch.payload_bytes} bytes, over the "
            f"{MAX_PAYLOAD_BYTES}-byte limit for pod annotations"
        )
    return launch


def input_source(
    input_value: Any, view: Sequence[ViewItem], outputs: Mapping[str, Any]
) -> str | None:
    """The result key of the view whose stored output is ``input_value`` (the same JSON), when
    the input is large enough to be worth reading from there (most recent first: a node's
    input is usually its router's output); None otherwise."""
    candidates: list[str] = [
        i.key for i in reversed(view) if i.key is not None and not i.inline and i.key in outputs
    ]
    if not candidates or input_value is None or isinstance(input_value, (bool, int, float)):
        return None
    text: str | None = None
    for key in candidates:
        value = outputs[key]
        same = value is input_value or (type(value) is type(input_value) and value == input_value)
        if same:
            text = text if text is not None else dumps(input_value)
            if len(text.encode()) < INPUT_BY_REFERENCE_BYTES:
                return None
            if value is input_value or dumps(value) == text:
                return key
    return None


def _command(fn: FunctionSpec) -> tuple[str, ...] | None:
    if fn.kind != "container":
        return RUNTIME_COMMAND
    # The user's image as given; without a command its own entrypoint runs.
    return tuple(fn.command) if fn.command is not None else None


def _resources(fn: FunctionSpec) -> dict[str, dict[str, str]]:
    if fn.resources is None:
        return {}
    dumped: dict[str, dict[str, str]] = fn.resources.model_dump(
        mode="json", by_alias=True, exclude_none=True
    )
    return dumped


_QUANTITY = re.compile(r"^([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$")
_SUFFIX = {
    None: 1.0,
    "m": 1e-3,
    "k": 1e3,
    "M": 1e6,
    "G": 1e9,
    "T": 1e12,
    "P": 1e15,
    "E": 1e18,
    "Ki": 2.0**10,
    "Mi": 2.0**20,
    "Gi": 2.0**30,
    "Ti": 2.0**40,
    "Pi": 2.0**50,
    "Ei": 2.0**60,
}


def quantity(text: str) -> float:
    """A Kubernetes resource quantity ("500m", "1.5", "256Mi", "1e3") as a number; raises
    LaunchError for anything else."""
    match = _QUANTITY.match(text.strip())
    if match is None:
        raise LaunchError(f"not a resource quantity: {text!r}")
    try:
        return float(match.group(1)) * _SUFFIX[match.group(2)]
    except ValueError:
        raise LaunchError(f"not a resource quantity: {text!r}") from None
