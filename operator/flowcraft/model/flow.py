"""The Flow resource as pydantic models: spec (what to run) and status (the engine snapshot).

Why one module: the same classes parse a `Flow` manifest, a converted flowcraft blueprint, and
a Kubernetes custom resource body, and a later step generates the CRD's OpenAPI schema from
them. Keys are camelCase on the wire (YAML/JSON/CR) and snake_case in Python. Shape checks live
here (types, ranges, one-of for functions); graph checks (ids, edges, cycles, expressions)
live in `validation` so they can report every problem at once with its path.

The status is small and JSON-serializable because it lives in the CR's `.status`: per node
only phase, attempts, timestamps, routing decisions and a *reference* to the output, never the
output itself; its free-form text is bounded by the rules in `bounds`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Any, Final, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    JsonValue,
    PlainSerializer,
    model_validator,
)
from pydantic.alias_generators import to_camel

API_VERSION: Final = "flowcraft.io/v1alpha1"
KIND: Final = "Flow"
DEFAULT_RUNNER_IMAGE = "flowcraft-runner:0.1.0"

# "pkg.module:function" (dotted attribute after the colon allowed: "pkg.mod:Class.method").
PYTHON_REF = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")

# Free-form values: the CRD generator maps them to x-kubernetes-preserve-unknown-fields.
_PRESERVE: dict[str, JsonValue] = {"x-kubernetes-preserve-unknown-fields": True}


def _as_utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("timestamp must carry a timezone (RFC 3339, e.g. 2024-01-02T03:04:05Z)")
    return value.astimezone(UTC)


def format_timestamp(value: datetime) -> str:
    """RFC 3339 in UTC with a `Z` suffix; fractional seconds only when present."""
    text = value.astimezone(UTC).isoformat()
    return text.removesuffix("+00:00") + "Z"


Timestamp = Annotated[
    datetime,
    AfterValidator(_as_utc),
    PlainSerializer(format_timestamp, return_type=str, when_used="json-unless-none"),
]


class _Model(BaseModel):
    """Spec models: camelCase on the wire, unknown keys rejected (typos must not pass)."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
    )

    def to_dict(self) -> dict[str, Any]:
        """The wire form: camelCase keys, JSON types, unset optionals left out."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


# Upper bounds on a node's retry settings and on durations. They exist so that no arithmetic
# on them can overflow (a backoff of retryDelay * 2**38 ms is past the year 9999 and used to
# crash the engine at attempt 39) and so a typo cannot keep a Flow retrying for years. The CRD
# carries them as `maximum`, so `kubectl apply` rejects a larger value with the field's name.
MAX_RETRIES: Final = 100
MAX_RETRY_DELAY_MS: Final = 3_600_000  # one hour: the largest first delay...
MAX_BACKOFF_MS: Final = 3_600_000  # ...and the largest delay between two attempts
MAX_TIMEOUT_MS: Final = 7 * 24 * 3_600_000  # a week per attempt
MAX_DEADLINE_SECONDS: Final = 366 * 24 * 3600  # a year per Flow


class NodeConfig(_Model):
    max_retries: int = Field(
        default=1, ge=1, le=MAX_RETRIES, description="Total attempts (1 = no retry)."
    )
    retry_delay: int = Field(
        default=0,
        ge=0,
        le=MAX_RETRY_DELAY_MS,
        description="Milliseconds before attempt 2; doubles for each later one, up to one "
        "hour between two attempts.",
    )
    timeout: int | None = Field(
        default=None, gt=0, le=MAX_TIMEOUT_MS, description="Per attempt, milliseconds."
    )
    fallback: str | None = Field(
        default=None, description="Id of the node that runs after the last failure."
    )
    join_strategy: Literal["all", "any"] = "all"

    def retry_delay_ms(self, failed_attempt: int) -> int:
        """Backoff after attempt `failed_attempt` (1-based): delay * 2**(attempt-1), at most
        MAX_BACKOFF_MS (whatever the attempt: the exponent is clamped before it is taken)."""
        if self.retry_delay <= 0:
            return 0
        exponent = min(max(failed_attempt - 1, 0), MAX_BACKOFF_MS.bit_length())
        delay: int = self.retry_delay << exponent
        return min(delay, MAX_BACKOFF_MS)


def _check_inputs(value: Any) -> Any:
    # One readable message instead of one error per member of the union.
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, dict) and all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        return value
    raise ValueError(
        "inputs must be a context key (string) or a mapping of names to context keys, "
        f"got {value!r}"
    )


# flowcraft's built-in node types: the `uses` keys its builder emits, and the class names its
# registry also answers to. A function of the same name in spec.functions wins (as in flowcraft,
# whose registry lets user functions override built-ins).
BUILTINS: Final = frozenset(
    {"batch-scatter", "batch-gather", "loop-controller", "subflow", "wait", "sleep", "webhook"}
)
BUILTIN_ALIASES: Final = {
    "BatchScatterNode": "batch-scatter",
    "BatchGatherNode": "batch-gather",
    "SubflowNode": "subflow",
    "WaitNode": "wait",
    "SleepNode": "sleep",
    "WebhookNode": "webhook",
}
BuiltinKind = Literal[
    "batch-scatter", "batch-gather", "loop-controller", "subflow", "wait", "sleep", "webhook"
]


class NodeSpec(_Model):
    id: str
    uses: str
    params: dict[str, Any] = Field(default_factory=dict, json_schema_extra=_PRESERVE)
    inputs: Annotated[str | dict[str, str] | None, BeforeValidator(_check_inputs)] = Field(
        default=None, json_schema_extra=_PRESERVE
    )
    config: NodeConfig = Field(default_factory=NodeConfig)


class EdgeSpec(_Model):
    source: str
    target: str
    action: str | None = None
    condition: str | None = Field(
        default=None, description="Expression (spec.expressionLanguage); taken when truthy."
    )
    transform: str | None = Field(
        default=None, description="Expression (spec.expressionLanguage); the target's input."
    )


class Resources(_Model):
    requests: dict[str, str] | None = None
    limits: dict[str, str] | None = None


FunctionKind = Literal["script", "python", "container"]


class FunctionSpec(_Model):
    """What a `uses` key runs: inline Python, a Python callable in an image, or any container."""

    script: str | None = Field(default=None, description="Python source defining run(ctx).")
    python: str | None = Field(default=None, description='A callable, "pkg.module:function".')
    image: str | None = None
    command: list[str] | None = None
    args: list[str] | None = None
    env: dict[str, str] | None = None
    resources: Resources | None = None

    @model_validator(mode="after")
    def _exactly_one_kind(self) -> FunctionSpec:
        if self.script is not None and self.python is not None:
            raise ValueError("set only one of script, python or image (found script and python)")
        if self.script is None and self.python is None and self.image is None:
            raise ValueError("set one of script (inline Python), python (pkg.mod:fn) or image")
        if self.python is not None and not PYTHON_REF.match(self.python):
            raise ValueError(
                f"python must look like 'package.module:function', got {self.python!r}"
            )
        if self.kind != "container" and (self.command is not None or self.args is not None):
            raise ValueError(
                f"command/args apply to container functions only (this one is {self.kind})"
            )
        return self

    @property
    def kind(self) -> FunctionKind:
        if self.script is not None:
            return "script"
        if self.python is not None:
            return "python"
        return "container"

    def effective_image(self, default: str) -> str:
        """The image a pod runs: its own, else the flow's runner image `default`."""
        return self.image if self.image is not None else default


# The spec fields a user may change on an existing Flow (snake_case names). Everything else is
# fixed at creation: the run's status refers into the spec (``taken_edges`` are indexes into
# ``edges``, node ids key the status, the initial context and functions were already handed to
# pods), so an edit of the graph under a running Flow would silently change or break it. These
# four are controls, not the graph: ``suspend`` pauses and resumes, ``parallelism`` and
# ``activeDeadlineSeconds`` are limits the engine re-reads on every pass, and ``resume`` is how
# wait nodes get their data (``flowcraft resume`` patches it). ``image``, ``failFast``,
# ``context`` and ``expressionLanguage`` stay fixed: each changes what a run computes. The CRD
# turns this into CEL transition rules (``drivers.kubernetes.crd``).
MUTABLE_SPEC_FIELDS: Final = frozenset(
    {"suspend", "parallelism", "active_deadline_seconds", "resume"}
)


class FlowSpec(_Model):
    nodes: list[NodeSpec]
    edges: list[EdgeSpec] = Field(default_factory=list)
    functions: dict[str, FunctionSpec] = Field(default_factory=dict)
    image: str | None = Field(default=None, description="Runner image for script/python nodes.")
    fail_fast: bool = True
    parallelism: int | None = Field(default=None, ge=1)
    active_deadline_seconds: int | None = Field(default=None, ge=1, le=MAX_DEADLINE_SECONDS)
    suspend: bool = False
    context: dict[str, Any] | None = Field(
        default=None,
        description="Initial context (flowcraft's runtime.run(blueprint, initialContext)): "
        "every node sees these keys and they appear in the final context.",
        json_schema_extra=_PRESERVE,
    )
    resume: dict[str, Any] | None = Field(
        default=None,
        description="Resume data for wait nodes, by node id: {output, action} (or a plain "
        "value, taken as the output), like flowcraft's runtime.resume(); may be set while the "
        "flow runs.",
        json_schema_extra=_PRESERVE,
    )
    expression_language: Literal["flowcraft", "cel"] = Field(
        default="flowcraft",
        description="Language of edge conditions and transforms: flowcraft (its property "
        "paths and JavaScript expression forms, interpreted safely) or cel.",
    )

    @property
    def runner_image(self) -> str:
        return self.image if self.image is not None else DEFAULT_RUNNER_IMAGE

    def node(self, node_id: str) -> NodeSpec:
        for node in self.nodes:
            if node.id == node_id:
                return node
        raise KeyError(node_id)

    def builtin(self, node: NodeSpec) -> BuiltinKind | None:
        """The built-in node type `node` runs, or None when a function runs it."""
        return builtin_kind(node.uses, self.functions)


def spec_field_alias(field: str) -> str:
    """The wire (camelCase) name of a FlowSpec field."""
    return FlowSpec.model_fields[field].alias or field


def mutable_fields_text() -> str:
    """The spec fields that may change on an existing Flow, as a user reads them."""
    names = [spec_field_alias(f) for f in FlowSpec.model_fields if f in MUTABLE_SPEC_FIELDS]
    return ", ".join(names[:-1]) + " and " + names[-1]


def immutable_spec_changes(old: FlowSpec, new: FlowSpec) -> list[str]:
    """Wire names of the fields outside ``MUTABLE_SPEC_FIELDS`` that differ (model order)."""
    return [
        spec_field_alias(field)
        for field in FlowSpec.model_fields
        if field not in MUTABLE_SPEC_FIELDS and getattr(old, field) != getattr(new, field)
    ]


def builtin_kind(uses: str, functions: Mapping[str, Any]) -> BuiltinKind | None:
    """The built-in type a `uses` key names (functions override built-ins), else None."""
    if uses in functions:
        return None
    kind = BUILTIN_ALIASES.get(uses, uses)
    return kind if kind in BUILTINS else None  # type: ignore[return-value]


class ObjectMeta(_Model):
    """The Kubernetes metadata we use; other server-set keys (uid, ...) are kept as-is."""

    model_config = ConfigDict(extra="allow")

    name: str
    namespace: str | None = None
    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None


FlowPhase = Literal["Pending", "Running", "Awaiting", "Succeeded", "Failed", "Cancelled"]
NodePhase = Literal[
    "Pending",
    "Running",
    "Retrying",
    "Sleeping",
    "Awaiting",
    "Succeeded",
    "Failed",
    "Skipped",
    "Cancelled",
]

TERMINAL_FLOW_PHASES: frozenset[str] = frozenset({"Succeeded", "Failed", "Cancelled"})
TERMINAL_NODE_PHASES: frozenset[str] = frozenset({"Succeeded", "Failed", "Skipped", "Cancelled"})


class _StatusModel(_Model):
    # Status is written by us but read back from a CR that other controllers (kopf's own
    # progress keys) may have annotated: tolerate unknown keys instead of failing a resume.
    model_config = ConfigDict(extra="ignore")


# One character per batch item in BatchStatus.items.
ITEM_PENDING = "."
ITEM_RUNNING = "R"
ITEM_SUCCEEDED = "S"
ITEM_FAILED = "F"
ITEM_RETRYING = "r"
ITEM_CANCELLED = "C"


class BatchStatus(_StatusModel):
    """A batch-scatter's items, compact on purpose: 10,000 items must fit in a Flow's status,
    so an item is one character, and only exceptions (retried items) get entries."""

    total: int = Field(default=0, ge=0, description="Items in the scatter's input array.")
    chunk: int = Field(
        default=1, ge=1, description="Round size (params.chunkSize, default: all items)."
    )
    items: str = Field(
        default="",
        description="One character per item: '.' pending, 'R' running, 'S' succeeded, "
        "'F' failed, 'r' retrying, 'C' cancelled.",
    )
    attempts: dict[str, int] = Field(
        default_factory=dict,
        description="Attempts started, by item index, only for items past their first.",
    )
    retry_at: dict[str, Timestamp] = Field(
        default_factory=dict, description="When each retrying item's next attempt starts."
    )

    @property
    def done(self) -> int:
        """Items that succeeded (what progress counts)."""
        return self.items.count(ITEM_SUCCEEDED)

    def attempt(self, item: int) -> int:
        """Attempts item `item` has started (its current attempt while it runs)."""
        return self.attempts.get(str(item), 1 if self.items[item] != ITEM_PENDING else 0)


class NodeStatus(_StatusModel):
    phase: NodePhase = "Pending"
    attempts: int = Field(default=0, ge=0, description="Attempts started so far.")
    started_at: Timestamp | None = None
    finished_at: Timestamp | None = None
    message: str | None = None
    reason: str | None = Field(
        default=None,
        description="Machine-readable cause: Error, Timeout, NotRouted, UpstreamFailed, "
        "Recovered, FlowFailed, FlowCancelled, DeadlineExceeded, FallbackNotNeeded.",
    )
    output_ref: str | None = None
    action: str | None = None
    retry_at: Timestamp | None = None
    wake_at: Timestamp | None = Field(default=None, description="When a sleep node wakes up.")
    iteration: int | None = Field(
        default=None,
        ge=1,
        description="Loop iteration this status describes (absent: the first run); earlier "
        "iterations are in the flow's history.",
    )
    # Engine bookkeeping, small on purpose:
    taken_edges: list[int] | None = Field(
        default=None,
        description="Indexes into spec.edges of the edges taken when this node succeeded "
        "(routing is decided once, at completion); a fallback node's list includes the "
        "edges it inherited. -(i+1) marks edge i as a trigger without data (flowcraft starts "
        "unconditional successors of a node that routed nowhere).",
    )
    seq: int | None = Field(
        default=None, description="Order of this node's success within the run (context view)."
    )
    writes: int | None = Field(
        default=None,
        description="Context keys this node wrote (set or deleted) when it succeeded; the "
        "writes themselves are stored with its output.",
    )
    input_seq: int | None = Field(
        default=None,
        description="Completions visible when the node first started: its input is recomputed "
        "from this view, so a restarted driver gets the same input.",
    )
    batch: BatchStatus | None = Field(
        default=None, description="A batch-scatter's items (absent for other nodes)."
    )


class Completion(_StatusModel):
    """A node's success in an earlier loop iteration: what the context fold still needs."""

    node: str
    iteration: int = 0
    attempt: int = 1
    seq: int
    output_ref: str | None = None
    action: str | None = None
    taken_edges: list[int] | None = None
    writes: int | None = None
    items: int | None = Field(
        default=None, description="A batch-scatter's item count in that iteration."
    )


class FlowStatus(_StatusModel):
    phase: FlowPhase = "Pending"
    started_at: Timestamp | None = None
    finished_at: Timestamp | None = None
    message: str | None = None
    nodes: dict[str, NodeStatus] = Field(default_factory=dict)
    errors: list[str] = Field(default_factory=list)
    # Engine bookkeeping: a success counter and the nodes waiting for a parallelism slot.
    seq: int = 0
    queue: list[str] = Field(default_factory=list)
    history: list[Completion] = Field(
        default_factory=list,
        description="Successes of loop-body nodes in earlier iterations, in order (bounded by "
        "the loops' maxIterations).",
    )


class Flow(_Model):
    model_config = ConfigDict(extra="ignore")

    api_version: Literal["flowcraft.io/v1alpha1"] = API_VERSION
    kind: Literal["Flow"] = KIND
    metadata: ObjectMeta
    spec: FlowSpec
    status: FlowStatus | None = None
