"""Adversarial expressions finish fast with a clear error (or a value), never stall.

Expressions run synchronously on the operator's only event loop, so one tenant's expression
must not be able to take seconds or gigabytes. Each case here ran for seconds, or built
gigabytes, before the budgets existed; the wall-time bound is loose on purpose (a loaded
2-core machine), the point is "milliseconds, not minutes".
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from flowcraft.model import UNDEFINED, ExpressionError, compile_expression
from flowcraft.model.jsexpr import DEFAULT_MAX_UNITS

pytestmark = pytest.mark.unit

FAST = 2.0  # seconds; each case below takes milliseconds on an idle machine


def timed(source: str, scope: dict[str, Any], language: str = "flowcraft") -> tuple[Any, float]:
    expression = compile_expression(source, language)
    started = time.perf_counter()
    try:
        value: Any = expression.evaluate(scope)
    except ExpressionError as exc:
        value = exc
    return value, time.perf_counter() - started


def balanced_sum(terms: list[str]) -> str:
    """`a + b + ...` as a balanced tree (a chain would hit the parser's depth limit)."""
    if len(terms) == 1:
        return terms[0]
    middle = len(terms) // 2
    return f"({balanced_sum(terms[:middle])} + {balanced_sum(terms[middle:])})"


# -- flowcraft expressions (JavaScript subset) ----------------------------------------------


def test_repeat_and_map_are_not_builtins_so_they_are_undefined_at_once() -> None:
    big = list(range(100_000))
    for source in ["'x'.repeat(1e9)", "input.map(x => x * 2)", "input.map(String)"]:
        try:
            value, spent = timed(source, {"input": big})
        except ExpressionError:
            continue  # arrow functions are not in the subset: rejected at compile time
        assert value is UNDEFINED, source
        assert spent < FAST, source


def test_nested_joins_of_a_literal_array_hit_the_memory_budget() -> None:
    # 3 nested joins of a 1,500-element literal would build ~3.4e9 characters in ~4,500 steps.
    array = "[" + ",".join(["0"] * 1500) + "]"
    source = f"{array}.join({array}.join({array}.join('xx')))"
    assert len(source) < 10_000
    value, spent = timed(source, {})
    assert isinstance(value, ExpressionError)
    assert "memory budget" in value.reason
    assert spent < FAST


def test_joins_of_a_large_context_array_hit_the_memory_budget() -> None:
    items = ["abcdefgh"] * 100_000
    value, spent = timed("items.join(items.join(','))", {"items": items})
    assert isinstance(value, ExpressionError)
    assert "memory budget" in value.reason
    assert spent < FAST


def test_repeated_concatenation_of_a_large_value_hits_the_memory_budget() -> None:
    # Each `+` copies everything before it: quadratic without a budget (~4 GB copied here).
    source = " + ".join(["s"] * 90)
    value, spent = timed(source, {"s": "y" * 1_000_000})
    assert isinstance(value, ExpressionError)
    assert "memory budget" in value.reason
    assert spent < FAST


def test_coercing_an_array_of_large_strings_is_charged() -> None:
    source = "[" + ",".join(["s"] * 900) + "] == 1"
    value, spent = timed(source, {"s": "z" * 100_000})
    assert isinstance(value, ExpressionError)
    assert spent < FAST


def test_scans_of_a_large_non_ascii_value_are_fast() -> None:
    # `s.length` on a non-ASCII string checked every character in Python (~50 ms each).
    text = "é" * 1_000_000
    source = balanced_sum(["s.length"] * 600)
    value, spent = timed(source, {"s": text})
    assert value == 600 * 1_000_000 or isinstance(value, ExpressionError)
    assert spent < FAST


def test_ordinary_expressions_on_large_values_stay_within_the_budget() -> None:
    items = list(range(10_000))
    assert compile_expression("items.length > 0 && items.includes(9999)").evaluate({"items": items})
    text = "q" * (DEFAULT_MAX_UNITS // 2 - 10)
    assert compile_expression("s + ''").evaluate({"s": text}) == text
    assert compile_expression("input.indexOf('x') === -1").evaluate({"input": text})


# -- CEL -------------------------------------------------------------------------------------
# The cel library has no cost limit, and its map()/filter() copy the accumulator on every
# iteration: a map over 10,000 numbers took 10.5 s, over 200 strings of 100 KB 3.7 s.


@pytest.mark.parametrize(
    ("source", "scope"),
    [
        ("input.map(x, x * 2)", {"input": list(range(10_000))}),
        ("input.map(x, input.map(y, x + y)).size()", {"input": list(range(1_000))}),
        ("input.all(x, input.all(y, input.all(z, x + y + z >= 0)))", {"input": list(range(300))}),
        ("input.map(x, s).size()", {"input": list(range(200)), "s": "y" * 100_000}),
        ("input.filter(x, x in input).size() > 0", {"input": list(range(5_000))}),
        (
            "context.items.exists(i, context.items == context.other)",
            {"context": {"items": list(range(3_000)), "other": list(range(3_000))}},
        ),
        ("(input + input + input + input).map(x, x).size()", {"input": list(range(800))}),
        (" + ".join(["s"] * 200) + " != ''", {"s": "y" * 100_000}),
    ],
)
def test_cel_expressions_over_the_budget_fail_fast_naming_it(
    source: str, scope: dict[str, Any]
) -> None:
    value, spent = timed(source, scope, "cel")
    assert isinstance(value, ExpressionError), value
    assert "exceeds the CEL budget" in value.reason
    assert spent < FAST


@pytest.mark.parametrize(
    ("source", "scope", "expected"),
    [
        ("input.exists(x, x == 9999)", {"input": list(range(10_000))}, True),
        ("input.all(x, x >= 0) && size(input) == 10000", {"input": list(range(10_000))}, True),
        ("input.map(x, x * 2)[3]", {"input": list(range(500))}, 6),
        (
            "result.output.items.filter(i, i.ok).size()",
            {"result": {"output": {"items": [{"ok": i % 2 == 0} for i in range(300)]}}},
            150,
        ),
        ("result.output + '!'", {"result": {"output": "y" * 100_000}}, "y" * 100_000 + "!"),
        ("'a' in input", {"input": {"a": 1}}, True),
    ],
)
def test_cel_expressions_within_the_budget_run(
    source: str, scope: dict[str, Any], expected: Any
) -> None:
    value, spent = timed(source, scope, "cel")
    assert value == expected
    assert spent < FAST


def test_cel_source_length_is_bounded() -> None:
    with pytest.raises(ExpressionError, match="expression too long"):
        compile_expression("1 + " * 3000 + "1", "cel")


def test_cel_cost_ignores_operators_inside_strings() -> None:
    from flowcraft.model import celcost  # noqa: PLC0415

    shape = celcost.analyse("input.exists(x, x == 'a + b in c.map(y, y)')")
    assert len(shape.comprehensions) == 1
    assert shape.plus == 0
    assert shape.comprehensions[0].copies == 0
