"""What a Flow may run on a shared cluster: allowed images, node pod resources, parallelism.

Why this module: whoever may create a Flow in a namespace may, through the operator, run any
image with any resources there. On a cluster shared by several teams the operator's
administrator needs a say, without a webhook: the operator checks every Flow against its
`Policy` before it runs a single pod, and a Flow that breaks it fails at once with a message
naming the node, the function and the image or resource. Everything is off by default (the
empty Policy allows everything and changes nothing).

  - `allowed_images`: patterns (`fnmatch`: `*` matches anything, `/` included); a node's image
    must match one. The operator's own runner image (`--runner-image`, or the default) is
    always allowed; a Flow's `spec.image` is checked like any other image.
  - `default_requests` / `default_limits`: filled into every node pod's resources for each
    resource the function does not set (a request above a default limit keeps the request as
    its limit, so a pod is never invalid because of a default).
  - `max_resources`: per resource name, the most a node pod may request or be limited to.
  - `max_parallelism`: a Flow's `spec.parallelism` is at most this (unset: this).

Pure functions of a FlowSpec: `check` lists the violations, `apply` returns the spec with the
defaults and caps in place (the spec the engine and the pod builders then use: defaults are
applied at this one place). Parsing the operator flags lives here too, so the flags, the chart
and the tests share one syntax.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from fnmatch import fnmatchcase
from typing import Final

from flowcraft.model import FlowSpec
from flowcraft.model.flow import FunctionSpec, Resources

__all__ = [
    "Policy",
    "PolicyError",
    "apply",
    "check",
    "parse_images",
    "parse_quantity",
    "parse_resources",
]

_QUANTITY: Final = re.compile(
    r"^([+-]?(?:\d+\.?\d*|\.\d+))(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][+-]?\d+)?$"
)
_BINARY: Final = {"Ki": 1, "Mi": 2, "Gi": 3, "Ti": 4, "Pi": 5, "Ei": 6}
_DECIMAL: Final = {"n": -9, "u": -6, "m": -3, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}


class PolicyError(ValueError):
    """A flag or chart value the policy cannot use (bad quantity, default above maximum)."""


def parse_quantity(text: str) -> Decimal:
    """A Kubernetes resource quantity (`500m`, `2`, `1.5Gi`, `1e3`) as a number."""
    found = _QUANTITY.match(text.strip())
    if found is None:
        raise PolicyError(f"invalid quantity {text!r} (expected e.g. 500m, 2, 512Mi, 1Gi)")
    try:
        number = Decimal(found.group(1))
    except InvalidOperation:  # pragma: no cover - the pattern admits only numbers
        raise PolicyError(f"invalid quantity {text!r}") from None
    suffix = found.group(2) or ""
    if suffix in _BINARY:
        return number * (Decimal(1024) ** _BINARY[suffix])
    if suffix in _DECIMAL:
        return number.scaleb(_DECIMAL[suffix])
    if suffix:
        return number.scaleb(int(suffix[1:]))
    return number


def parse_resources(text: str) -> dict[str, str]:
    """`cpu=2,memory=4Gi` (flags, chart values) as {resource: quantity}, quantities checked."""
    resources: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, quantity = part.partition("=")
        if not sep or not name.strip() or not quantity.strip():
            raise PolicyError(f"expected RESOURCE=QUANTITY, got {part!r}")
        parse_quantity(quantity)
        resources[name.strip()] = quantity.strip()
    return resources


def parse_images(text: str) -> tuple[str, ...]:
    """`registry.example.com/*,flowcraft-runner:*` as a tuple of patterns."""
    return tuple(p.strip() for p in text.split(",") if p.strip())


@dataclass(frozen=True)
class Policy:
    allowed_images: tuple[str, ...] = ()  # empty: every image
    default_requests: Mapping[str, str] = field(default_factory=dict)
    default_limits: Mapping[str, str] = field(default_factory=dict)
    max_resources: Mapping[str, str] = field(default_factory=dict)
    max_parallelism: int | None = None

    def __post_init__(self) -> None:
        if self.max_parallelism is not None and self.max_parallelism < 1:
            raise PolicyError(f"max parallelism must be at least 1, got {self.max_parallelism}")
        for kind, defaults in (("request", self.default_requests), ("limit", self.default_limits)):
            for name, quantity in defaults.items():
                top = self.max_resources.get(name)
                if top is not None and parse_quantity(quantity) > parse_quantity(top):
                    raise PolicyError(
                        f"default {kind} {name}={quantity} is above the maximum {name}={top}"
                    )

    @property
    def restricts(self) -> bool:
        """False for the default policy: nothing to check or apply."""
        return bool(
            self.allowed_images
            or self.default_requests
            or self.default_limits
            or self.max_resources
            or self.max_parallelism is not None
        )

    def allows_image(self, image: str) -> bool:
        return not self.allowed_images or any(fnmatchcase(image, p) for p in self.allowed_images)


def _pod_functions(spec: FlowSpec) -> Iterator[tuple[str, str, FunctionSpec]]:
    """(node id, function name, function) for every node that runs a pod: function nodes, and
    the worker of each batch-scatter (its items run as pods)."""
    for node in spec.nodes:
        kind = spec.builtin(node)
        uses = node.uses if kind is None else None
        if kind == "batch-scatter":
            uses = str(node.params.get("workerUsesKey", ""))
        if uses is None:
            continue
        fn = spec.functions.get(uses)
        if fn is not None:
            yield node.id, uses, fn


def check(spec: FlowSpec, policy: Policy) -> list[str]:
    """Every way `spec` breaks `policy`, one message each. Script/python functions of a Flow
    without spec.image run the operator's own runner image, which is always allowed."""
    if not policy.restricts:
        return []
    problems: list[str] = []
    for node_id, uses, fn in _pod_functions(spec):
        image = fn.image or spec.image
        if image is not None and not policy.allows_image(image):
            problems.append(
                f"node {node_id!r} (function {uses!r}) uses image {image!r}, which the "
                f"operator's image allowlist does not allow ({', '.join(policy.allowed_images)})"
            )
        resources = fn.resources or Resources()
        for kind, values in (("requests", resources.requests), ("limits", resources.limits)):
            for name, quantity in (values or {}).items():
                top = policy.max_resources.get(name)
                try:
                    over = top is not None and parse_quantity(quantity) > parse_quantity(top)
                except PolicyError as exc:
                    problems.append(f"node {node_id!r} (function {uses!r}) {kind}: {exc}")
                    continue
                if over:
                    problems.append(
                        f"node {node_id!r} (function {uses!r}) {kind} {name}={quantity}, more "
                        f"than the operator's maximum {name}={top}"
                    )
    return problems


def _with_defaults(resources: Resources | None, policy: Policy) -> Resources | None:
    if not policy.default_requests and not policy.default_limits:
        return resources
    own_requests = (resources.requests if resources else None) or {}
    own_limits = (resources.limits if resources else None) or {}
    requests = dict(policy.default_requests)
    requests.update(own_requests)
    for name, default in policy.default_requests.items():
        # A default request above the function's own limit would make the pod invalid:
        # Kubernetes takes the limit as the request then, and so do we.
        if (
            name not in own_requests
            and name in own_limits
            and parse_quantity(default) > parse_quantity(own_limits[name])
        ):
            requests[name] = own_limits[name]
    limits = dict(policy.default_limits)
    limits.update(own_limits)
    for name, default in policy.default_limits.items():
        own_limit = resources is not None and name in (resources.limits or {})
        request = requests.get(name)
        # A default limit below the pod's own request would make the pod invalid.
        if (
            not own_limit
            and request is not None
            and parse_quantity(request) > parse_quantity(default)
        ):
            limits[name] = request
    return Resources(requests=requests or None, limits=limits or None)


def apply(spec: FlowSpec, policy: Policy) -> FlowSpec:
    """`spec` with the policy's default resources filled in and its parallelism capped."""
    if not policy.restricts:
        return spec
    functions = {
        name: fn.model_copy(update={"resources": _with_defaults(fn.resources, policy)})
        for name, fn in spec.functions.items()
    }
    parallelism = spec.parallelism
    if policy.max_parallelism is not None:
        parallelism = min(parallelism or policy.max_parallelism, policy.max_parallelism)
    return spec.model_copy(update={"functions": functions, "parallelism": parallelism})
