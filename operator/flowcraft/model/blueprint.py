"""Reusable blueprints: what a `subflow` node runs, by id.

Why a resource of its own: flowcraft's SubflowNode looks a blueprint up by id in the runtime's
registry (`new FlowRuntime({blueprints})`). Locally that registry is the files given with
`flowcraft run --blueprints`; on a cluster it is the namespace's `Blueprint` objects (CRD
generated from `BlueprintSpec`, `kubectl get blueprints`). A Blueprint is a Flow's graph
without a run: nodes, edges and, optionally, functions of its own; what it lacks (functions,
runner image, failFast, expression language) comes from the parent flow that runs it, as a
flowcraft subflow shares its parent's function registry.

A blueprint's id is `spec.id` when set (any string flowcraft allows, e.g. `math_subflow`),
else `metadata.name`. Files given to `--blueprints` may be a flowcraft blueprint JSON/YAML
(`{id, nodes, edges}`), a `kind: Blueprint` manifest or a `kind: Flow` manifest (its
blueprint-id annotation or name is the id).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final, Literal, NamedTuple

import yaml
from pydantic import ConfigDict, Field, ValidationError

from flowcraft.model.blueprint_json import (
    BLUEPRINT_ID_ANNOTATION,
    blueprint_to_manifest,
    is_blueprint,
)
from flowcraft.model.errors import FlowValidationError, Problem, problems_from_pydantic
from flowcraft.model.flow import (
    API_VERSION,
    EdgeSpec,
    Flow,
    FlowSpec,
    FunctionSpec,
    NodeSpec,
    ObjectMeta,
    _Model,
    builtin_kind,
)
from flowcraft.model.kubectl_yaml import read_yaml
from flowcraft.model.validation import check_spec

BLUEPRINT_KIND: Final = "Blueprint"
_SUFFIXES = (".json", ".yaml", ".yml")


class BlueprintSpec(_Model):
    id: str | None = Field(
        default=None,
        description="The id subflow nodes name in params.blueprintId (default: metadata.name).",
    )
    nodes: list[NodeSpec]
    edges: list[EdgeSpec] = Field(default_factory=list)
    functions: dict[str, FunctionSpec] = Field(
        default_factory=dict,
        description="Functions of this blueprint, merged over the parent flow's functions.",
    )
    fail_fast: bool | None = Field(default=None, description="Default: the parent flow's.")
    expression_language: Literal["flowcraft", "cel"] | None = Field(
        default=None, description="Default: the parent flow's."
    )


class Blueprint(_Model):
    model_config = ConfigDict(extra="ignore")

    api_version: Literal["flowcraft.io/v1alpha1"] = API_VERSION
    kind: Literal["Blueprint"] = "Blueprint"
    metadata: ObjectMeta
    spec: BlueprintSpec

    @property
    def blueprint_id(self) -> str:
        return self.spec.id if self.spec.id is not None else self.metadata.name


def child_spec(
    parent: FlowSpec, blueprint: BlueprintSpec, context: Mapping[str, Any] | None
) -> FlowSpec:
    """The FlowSpec a subflow node runs: the blueprint's graph with the parent's functions
    (the blueprint's own win), runner image, failFast and expression language unless the
    blueprint sets them, and `context` as its initial context."""
    return FlowSpec(
        nodes=list(blueprint.nodes),
        edges=list(blueprint.edges),
        functions={**parent.functions, **blueprint.functions},
        image=parent.image,
        fail_fast=parent.fail_fast if blueprint.fail_fast is None else blueprint.fail_fast,
        expression_language=blueprint.expression_language or parent.expression_language,
        context=dict(context) if context else None,
    )


class LoadedBlueprints(NamedTuple):
    """Blueprints by id, the file each came from, and what the loader skipped or dropped."""

    blueprints: dict[str, Blueprint]
    sources: dict[str, str]
    warnings: list[Problem]


def load_blueprints(paths: Sequence[Path]) -> LoadedBlueprints:
    """Every blueprint in `paths` (files, or directories whose *.json/*.yaml/*.yml files are
    read), keyed by id. A named file that is not a blueprint is an error; in a directory it
    is skipped with a warning. Two files with the same id are an error naming both."""
    blueprints: dict[str, Blueprint] = {}
    sources: dict[str, str] = {}
    warnings: list[Problem] = []
    problems: list[Problem] = []
    for path in paths:
        if path.is_dir():
            files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix in _SUFFIXES)
            if not files:
                problems.append(
                    Problem("", f"--blueprints directory {str(path)!r} has no .json/.yaml files")
                )
            strict = False
        elif path.is_file():
            files, strict = [path], True
        else:
            problems.append(Problem("", f"--blueprints {str(path)!r} does not exist"))
            continue
        for file in files:
            try:
                found = _load_file(file, warnings)
            except FlowValidationError as exc:
                problems.extend(exc.problems)
                continue
            if found is None:
                message = "not a blueprint (flowcraft {id, nodes, edges}, kind Blueprint or Flow)"
                if strict:
                    problems.append(Problem("", message, source=str(file)))
                else:
                    warnings.append(Problem("", f"skipped: {message}", source=str(file)))
                continue
            key = found.blueprint_id
            if key in blueprints:
                problems.append(
                    Problem(
                        "id",
                        f"blueprint id {key!r} is defined twice: in {sources[key]} and here",
                        source=str(file),
                    )
                )
                continue
            blueprints[key], sources[key] = found, str(file)
    if problems:
        raise FlowValidationError(problems)
    return LoadedBlueprints(blueprints, sources, warnings)


def _load_file(path: Path, warnings: list[Problem]) -> Blueprint | None:
    label = str(path)
    try:
        data, traps = read_yaml(
            path.read_text(encoding="utf-8"), reader="flowcraft (YAML 1.1)", source=label
        )
    except (OSError, UnicodeDecodeError) as exc:
        raise FlowValidationError(
            [Problem("", f"cannot read blueprint file {label!r}: {exc}")]
        ) from exc
    except yaml.YAMLError as exc:
        raise FlowValidationError(
            [Problem("", f"not valid YAML/JSON: {exc}", source=label)]
        ) from exc
    if not isinstance(data, dict):
        return None
    warnings.extend(traps)
    try:
        if data.get("kind") == BLUEPRINT_KIND:
            return Blueprint.model_validate(data)
        if data.get("kind") == "Flow":
            flow = Flow.model_validate(data)
            annotations = flow.metadata.annotations or {}
            spec = flow.spec
            return Blueprint(
                metadata=flow.metadata,
                spec=BlueprintSpec(
                    id=annotations.get(BLUEPRINT_ID_ANNOTATION, flow.metadata.name),
                    nodes=spec.nodes,
                    edges=spec.edges,
                    functions=spec.functions,
                    fail_fast=spec.fail_fast,
                    expression_language=spec.expression_language,
                ),
            )
        if is_blueprint(data):
            dropped: list[Problem] = []
            manifest = blueprint_to_manifest(data, {}, warnings=dropped)
            warnings.extend(Problem(p.path, p.message, source=label) for p in dropped)
            return Blueprint(
                metadata=ObjectMeta.model_validate(manifest["metadata"]),
                spec=BlueprintSpec.model_validate(
                    {
                        "id": data["id"],
                        "nodes": manifest["spec"]["nodes"],
                        "edges": manifest["spec"]["edges"],
                    }
                ),
            )
    except ValidationError as exc:
        raise FlowValidationError(
            [Problem(p.path, p.message, source=label) for p in problems_from_pydantic(exc)]
        ) from exc
    except FlowValidationError as exc:
        raise FlowValidationError(
            [Problem(p.path, p.message, source=label) for p in exc.problems]
        ) from exc
    return None


def subflow_nodes(spec: FlowSpec) -> list[tuple[int, NodeSpec, str | None]]:
    """(index, node, params.blueprintId) of every subflow node of `spec`."""
    out = []
    for index, node in enumerate(spec.nodes):
        if spec.builtin(node) == "subflow":
            bid = node.params.get("blueprintId")
            out.append((index, node, bid if isinstance(bid, str) else None))
    return out


def check_blueprints(
    spec: FlowSpec, blueprints: Mapping[str, Blueprint], sources: Mapping[str, str] | None = None
) -> list[Problem]:
    """Every subflow reference `spec` can reach that names no blueprint, and every problem of
    a reachable blueprint as its parent would run it (functions merged), with its file."""
    sources = sources or {}
    problems: list[Problem] = []
    seen: set[str] = set()
    pending: list[tuple[FlowSpec, str, str | None]] = [(spec, "spec", None)]
    known = ", ".join(sorted(blueprints)) or "none"
    while pending:
        current, prefix, source = pending.pop(0)
        for index, node, bid in subflow_nodes(current):
            if bid is None:
                continue  # check_spec reports the missing blueprintId
            found = blueprints.get(bid)
            if found is None:
                problems.append(
                    Problem(
                        f"{prefix}.nodes[{index}].params.blueprintId",
                        f"subflow node {node.id!r} runs blueprint {bid!r}, which no "
                        f"--blueprints file defines (known: {known})",
                        source=source,
                    )
                )
                continue
            if bid in seen:
                continue
            seen.add(bid)
            child = child_spec(current, found.spec, None)
            where = sources.get(bid)
            problems.extend(
                Problem(p.path, p.message, source=where)
                for p in check_spec(child, prefix=f"blueprint {bid}")
            )
            pending.append((child, f"blueprint {bid}", where))
    return problems


# A stand-in for a function the blueprint leaves to its parent flow: checking a blueprint on its
# own, a `uses` it does not define is assumed to come from whichever flow runs it.
_PARENTS_FUNCTION: Final = FunctionSpec(image="flowcraft.io/function-of-the-parent-flow")


def check_blueprint(spec: BlueprintSpec, prefix: str = "spec") -> list[Problem]:
    """Every problem of a blueprint taken alone (``kubectl apply`` of a Blueprint, ``flowcraft
    validate`` of one): ids, edges, cycles, fallbacks and expressions, as a flow's. What only
    a parent can tell is left to the run: functions the blueprint does not define (the
    parent's), and, when it sets no ``expressionLanguage``, expressions (the parent's
    language decides how they read: only a field that fails in both is reported)."""
    assumed = {
        node.uses: _PARENTS_FUNCTION
        for node in spec.nodes
        if node.uses not in spec.functions and builtin_kind(node.uses, spec.functions) is None
    }
    languages: tuple[Literal["flowcraft", "cel"], ...] = (
        (spec.expression_language,) if spec.expression_language else ("flowcraft", "cel")
    )
    found: list[list[Problem]] = []
    for language in languages:
        flow_spec = FlowSpec(
            nodes=list(spec.nodes),
            edges=list(spec.edges),
            functions={**assumed, **spec.functions},
            fail_fast=True if spec.fail_fast is None else spec.fail_fast,
            expression_language=language,
        )
        found.append(check_spec(flow_spec, prefix=prefix))
    # A field that fails in every language is wrong whichever parent runs the blueprint
    # (reported in the first language's words: flowcraft's, the default).
    first, *others = found
    return [p for p in first if all(any(q.path == p.path for q in other) for other in others)]


def parse_blueprint(data: Mapping[str, Any], *, source: str | None = None) -> Blueprint:
    """Validate a ``kind: Blueprint`` manifest (shape, then :func:`check_blueprint`); raise
    FlowValidationError with every problem and its path."""
    try:
        blueprint = Blueprint.model_validate(dict(data))
    except ValidationError as exc:
        raise FlowValidationError(
            problems_from_pydantic(exc), source=source, what="blueprint"
        ) from exc
    problems = check_blueprint(blueprint.spec)
    if problems:
        raise FlowValidationError(problems, source=source, what="blueprint")
    return blueprint
