"""The Flow model: pydantic classes for spec and status, validation, loading, expressions.

Why a package of its own: everything else (engine, runtime, local runner, operator, CRD
generation) depends on this one definition of a Flow, and it depends on nothing of ours.
"""

from flowcraft.model.errors import FlowValidationError, Problem
from flowcraft.model.expressions import (
    UNDEFINED,
    CompiledExpression,
    Expression,
    ExpressionError,
    FlowcraftExpression,
    compile_expression,
)
from flowcraft.model.flow import (
    API_VERSION,
    DEFAULT_RUNNER_IMAGE,
    KIND,
    TERMINAL_FLOW_PHASES,
    TERMINAL_NODE_PHASES,
    EdgeSpec,
    Flow,
    FlowPhase,
    FlowSpec,
    FlowStatus,
    FunctionKind,
    FunctionSpec,
    NodeConfig,
    NodePhase,
    NodeSpec,
    NodeStatus,
    ObjectMeta,
    Resources,
    format_timestamp,
)
from flowcraft.model.loader import (
    blueprint_to_manifest,
    dump_flow,
    is_blueprint,
    load_flow,
    load_functions,
    parse_flow,
    sanitize_name,
)
from flowcraft.model.validation import check_spec, dns1123_label_problem, validate_flow

__all__ = [
    "API_VERSION",
    "DEFAULT_RUNNER_IMAGE",
    "KIND",
    "TERMINAL_FLOW_PHASES",
    "TERMINAL_NODE_PHASES",
    "UNDEFINED",
    "CompiledExpression",
    "EdgeSpec",
    "Expression",
    "ExpressionError",
    "Flow",
    "FlowPhase",
    "FlowSpec",
    "FlowStatus",
    "FlowValidationError",
    "FlowcraftExpression",
    "FunctionKind",
    "FunctionSpec",
    "NodeConfig",
    "NodePhase",
    "NodeSpec",
    "NodeStatus",
    "ObjectMeta",
    "Problem",
    "Resources",
    "blueprint_to_manifest",
    "check_spec",
    "compile_expression",
    "dns1123_label_problem",
    "dump_flow",
    "format_timestamp",
    "is_blueprint",
    "load_flow",
    "load_functions",
    "parse_flow",
    "sanitize_name",
    "validate_flow",
]
