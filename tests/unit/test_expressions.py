"""The CEL wrapper: compile errors name the expression; evaluation errors are one type."""

from __future__ import annotations

import pytest

from flowcraft.model import ExpressionError, compile_expression

pytestmark = pytest.mark.unit


def test_compile_and_evaluate_over_the_edge_scope() -> None:
    expr = compile_expression('result.output.n > 1 && context["_outputs.a"] == input')
    scope = {"result": {"output": {"n": 2}}, "context": {"_outputs.a": 3}, "input": 3}
    assert expr.evaluate(scope) is True
    assert expr.variables == frozenset({"result", "context", "input"})
    assert expr.uses("context")
    assert not compile_expression("result.output").uses("context")


def test_transform_builds_json_values() -> None:
    expr = compile_expression('{"items": [1, 2.5, "x", null], "n": size(input)}')
    assert expr.evaluate({"input": [1, 2]}) == {"items": [1, 2.5, "x", None], "n": 2}


@pytest.mark.parametrize("source", ["result.x +", "a..b", '"open', "(", "   "])
def test_syntax_errors_name_the_expression(source: str) -> None:
    with pytest.raises(ExpressionError) as info:
        compile_expression(source)
    assert repr(source) in str(info.value)
    assert info.value.source == source


def test_syntax_error_has_a_position() -> None:
    with pytest.raises(ExpressionError, match=r"syntax error at 1:11"):
        compile_expression("result.x +")


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
    expr = compile_expression(source)
    with pytest.raises(ExpressionError) as info:
        expr.evaluate(scope)
    assert fragment in str(info.value)
    assert repr(source) in str(info.value)


def test_no_python_escape_hatch() -> None:
    # CEL has no attribute access into Python objects or builtins.
    expr = compile_expression("input.__class__")
    with pytest.raises(ExpressionError):
        expr.evaluate({"input": {}})
