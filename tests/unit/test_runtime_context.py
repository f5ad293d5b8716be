"""The writable context as a node function sees it: initial keys, upstream writes, its own."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest

from flowcraft.contract import file_stem, parse_result
from flowcraft.runtime import EXIT_FUNCTION_FAILED, EXIT_OK, main

pytestmark = pytest.mark.unit


class Node:
    def __init__(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.in_dir = tmp_path / "in"
        self.in_dir.mkdir()
        self.out = tmp_path / "out.json"
        self.monkeypatch = monkeypatch
        monkeypatch.setenv("FLOWCRAFT_NODE", "me")
        monkeypatch.setenv("FLOWCRAFT_IN", str(self.in_dir))
        monkeypatch.setenv("FLOWCRAFT_OUT", str(self.out))
        monkeypatch.delenv("FLOWCRAFT_OUT_LIMIT", raising=False)

    def write(self, name: str, value: Any) -> None:
        path = self.in_dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(value))

    def upstream(self, node: str, output: Any, writes: list[dict[str, Any]] | None = None) -> None:
        self.write(f"outputs/{file_stem(node)}.json", output)
        if writes is not None:
            self.write(f"writes/{file_stem(node)}.json", writes)

    def run(self, source: str) -> tuple[int, dict[str, Any]]:
        self.write("function.json", {"script": textwrap.dedent(source)})
        code = main()
        return code, json.loads(self.out.read_text())


@pytest.fixture
def node(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Node:
    return Node(tmp_path, monkeypatch)


def test_context_folds_initial_keys_and_upstream_writes_in_view_order(node: Node) -> None:
    node.write("context.json", {"orderId": 7, "shared": "initial"})
    node.upstream("fetchUser", {"name": "ada"}, [{"op": "set", "key": "shared", "value": "A"}])
    node.upstream("b c_é", 2, [{"op": "set", "key": "shared", "value": "B"}])
    node.upstream("late", 3)  # not in the view: finished after this node started
    node.write(
        "view.json",
        [
            {"id": "fetchUser", "writes": True},
            {"id": "b c_é", "writes": True},
            {"id": "recovered", "value": None},  # recovered by its fallback: null, inline
        ],
    )
    node.write("input.json", "in")
    code, result = node.run(
        """
        def run(ctx):
            return {
                "order": ctx.get("orderId"),
                "shared": ctx.get("shared"),
                "user": ctx.get("_outputs.fetchUser"),
                "bare": ctx.get("fetchUser"),
                "recovered": ctx.has("recovered"),
                "recoveredValue": ctx.get("recovered", "default"),
                "late": ctx.has("late"),
                "mine": ctx.get("_inputs.me"),
            }
        """
    )
    assert code == EXIT_OK
    assert result["output"] == {
        "order": 7,
        "shared": "B",  # completion order: the later writer wins
        "user": {"name": "ada"},
        "bare": {"name": "ada"},
        "recovered": True,  # in the view without an output: flowcraft's null
        "recoveredValue": None,
        "late": False,
        "mine": "in",
    }


def test_set_has_delete_travel_back_as_writes_one_per_key(node: Node) -> None:
    node.write("context.json", {"gone": 1})
    node.write("view.json", [])
    code, result = node.run(
        """
        def run(ctx):
            ctx.set("a", 1)
            ctx.set("b", {"x": [1]})
            ctx.set("a", 2)
            assert ctx.get("a") == 2 and ctx.has("b")
            assert ctx.delete("gone") is True
            assert not ctx.has("gone")
            assert ctx.delete("never") is False
            return ctx.context.to_dict()
        """
    )
    assert code == EXIT_OK
    assert result["output"] == {"a": 2, "b": {"x": [1]}}
    assert result["writes"] == [
        {"op": "set", "key": "b", "value": {"x": [1]}},
        {"op": "set", "key": "a", "value": 2},
        {"op": "delete", "key": "gone"},
        {"op": "delete", "key": "never"},
    ]
    assert parse_result(node.out.read_text()).writes == tuple(result["writes"])


def test_async_functions_await_ctx_context_like_flowcraft(node: Node) -> None:
    node.write("context.json", {"count": 1})
    node.write("view.json", [])
    code, result = node.run(
        """
        async def run(ctx):
            count = await ctx.context.get("count")
            await ctx.context.set("count", count + 1)
            assert await ctx.context.has("count")
            return {"output": await ctx.context.get("count"), "action": "done"}
        """
    )
    assert code == EXIT_OK
    assert result == {
        "output": 2,
        "action": "done",
        "writes": [{"op": "set", "key": "count", "value": 2}],
    }


def test_sync_functions_use_ctx_context_directly(node: Node) -> None:
    node.write("view.json", [])
    code, result = node.run(
        """
        def run(ctx):
            ctx.context.set("k", "v")
            return ctx.context.get("k")
        """
    )
    assert (code, result["output"]) == (EXIT_OK, "v")


def test_a_failing_function_reports_no_writes(node: Node) -> None:
    node.write("view.json", [])
    code, result = node.run(
        """
        def run(ctx):
            ctx.set("half", "done")
            raise RuntimeError("boom")
        """
    )
    assert code == EXIT_FUNCTION_FAILED
    assert "writes" not in result
    assert result["error"] == "RuntimeError: boom"


def test_writes_count_against_the_result_limit(node: Node, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLOWCRAFT_OUT_LIMIT", "200")
    node.write("view.json", [])
    code, result = node.run(
        """
        def run(ctx):
            ctx.set("big", "x" * 500)
            return "small"
        """
    )
    assert code == EXIT_FUNCTION_FAILED
    assert "OutputTooLarge" in result["error"]
    assert "output and context writes" in result["error"]
    assert "200 bytes" in result["error"]


def test_a_written_value_that_is_not_json_fails_the_node(node: Node) -> None:
    node.write("view.json", [])
    code, result = node.run(
        """
        def run(ctx):
            ctx.set("when", object())
            return 1
        """
    )
    assert code == EXIT_FUNCTION_FAILED
    assert "OutputNotJSON" in result["error"]


@pytest.mark.parametrize(
    ("node_id", "stem"),
    [
        ("task-1", "task-1"),
        ("double-items_scatter", "double-items_scatter"),
        ("fetchUser", "fetchUser"),
        ("a b", "a%20b"),
        ("naïve", "na%C3%AFve"),
        (".hidden", "%2Ehidden"),
        ("%", "%25"),
    ],
)
def test_file_stems_are_safe_and_distinct(node_id: str, stem: str) -> None:
    assert file_stem(node_id) == stem


def test_long_ids_get_a_bounded_hashed_stem() -> None:
    a, b = file_stem("é" * 200), file_stem("é" * 199 + "e")
    assert max(len(a), len(b)) <= 200
    assert a != b


def test_malformed_writes_are_not_taken_as_an_envelope() -> None:
    text = json.dumps({"output": 1, "action": None, "writes": [{"op": "explode"}]})
    assert parse_result(text).output == {"output": 1, "action": None, "writes": [{"op": "explode"}]}
