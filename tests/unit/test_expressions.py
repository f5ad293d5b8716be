"""compile_expression: one entry point for flowcraft (default) and CEL expressions.

CEL: compile errors name the expression; evaluation errors are one type. The flowcraft
language itself is tested in test_jsexpr.py.
"""

from __future__ import annotations

from typing import Any

import pytest

from flowcraft.model import UNDEFINED, Expression, ExpressionError, compile_expression
from flowcraft.model import UNDEFINED as MODEL_UNDEFINED
from flowcraft.model.expressions import UNDEFINED as EXPRESSIONS_UNDEFINED

pytestmark = pytest.mark.unit


def test_compile_and_evaluate_over_the_edge_scope() -> None:
    expr = compile_expression('result.output.n > 1 && context["_outputs.a"] == input', "cel")
    scope = {"result": {"output": {"n": 2}}, "context": {"_outputs.a": 3}, "input": 3}
    assert expr.evaluate(scope) is True
    assert expr.variables == frozenset({"result", "context", "input"})
    assert expr.uses("context")
    assert expr.language == "cel"
    assert expr.needs_context
    assert not compile_expression("result.output", "cel").uses("context")
    assert not compile_expression("result.output", "cel").needs_context


def test_transform_builds_json_values() -> None:
    expr = compile_expression('{"items": [1, 2.5, "x", null], "n": size(input)}', "cel")
    assert expr.evaluate({"input": [1, 2]}) == {"items": [1, 2.5, "x", None], "n": 2}


@pytest.mark.parametrize("source", ["result.x +", "a..b", '"open', "(", "   "])
def test_syntax_errors_name_the_expression(source: str) -> None:
    with pytest.raises(ExpressionError) as info:
        compile_expression(source, "cel")
    assert repr(source) in str(info.value)
    assert info.value.source == source


def test_syntax_error_has_a_position() -> None:
    with pytest.raises(ExpressionError, match=r"syntax error at 1:11"):
        compile_expression("result.x +", "cel")


@pytest.mark.parametrize(
    ("source", "scope", "fragment"),
    [
        ("result.output.missing", {"result": {"output": {}}}, "no such key: missing"),
        ("nothing_here", {}, "Undefined variable"),
        ("1 / input", {"input": 0}, "division by zero"),
        ('"a" + input', {"input": 1}, "string + int"),
        ("input[5]", {"input": [1]}, "evaluation failed"),
    ],
)
def test_evaluation_errors_become_expression_errors(
    source: str, scope: dict[str, object], fragment: str
) -> None:
    expr = compile_expression(source, "cel")
    with pytest.raises(ExpressionError) as info:
        expr.evaluate(scope)
    assert fragment in str(info.value)
    assert repr(source) in str(info.value)


def test_no_python_escape_hatch() -> None:
    # CEL has no attribute access into Python objects or builtins.
    expr = compile_expression("input.__class__", "cel")
    with pytest.raises(ExpressionError):
        expr.evaluate({"input": {}})


def test_cel_receives_only_the_names_it_reads() -> None:
    # The flowcraft-style condition scope spreads context keys at top level; cel would reject
    # a name like "_outputs.a", so only referenced names are passed.
    scope: dict[str, Any] = {"_outputs.a": 1, "odd key": 2, "result": {"output": 3}, "context": {}}
    assert compile_expression("result.output == 3", "cel").evaluate(scope) is True


def test_flowcraft_is_the_default_language() -> None:
    expr = compile_expression("result.output.n > 1 && context['_outputs.a'] === input")
    assert expr.language == "flowcraft"
    assert not isinstance(expr, Expression)
    scope = {"result": {"output": {"n": 2}}, "context": {"_outputs.a": 3}, "input": 3}
    assert expr.evaluate(scope) is True
    assert expr.needs_context
    assert expr.uses("context")
    assert expr.uses("input")
    # A runtime error is flowcraft's undefined, not an exception.
    assert compile_expression("result.output.x.y").evaluate({"result": {"output": {}}}) is UNDEFINED


def test_flowcraft_syntax_error_names_expression_and_position() -> None:
    with pytest.raises(ExpressionError) as info:
        compile_expression("(1 + 2))")
    assert info.value.reason == "syntax error at 1:8: unexpected token ')'"
    assert info.value.source == "(1 + 2))"
    assert "'(1 + 2))'" in str(info.value)


@pytest.mark.parametrize("language", ["flowcraft", "cel"])
def test_empty_expression_is_an_error(language: str) -> None:
    with pytest.raises(ExpressionError, match="empty expression"):
        compile_expression("  ", language)


def test_unknown_language() -> None:
    with pytest.raises(ExpressionError, match="unknown expression language 'js'"):
        compile_expression("1", "js")


def test_undefined_is_one_sentinel() -> None:
    assert MODEL_UNDEFINED is EXPRESSIONS_UNDEFINED is UNDEFINED
