"""Results larger than the termination message: framing, the log block, and what a cut or
corrupt block gives (a failure that says so, never a wrong output)."""

from __future__ import annotations

import asyncio
import base64
import json
import random
import string
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flowcraft.contract import (
    FRAME_CHUNK,
    FRAME_KEY,
    NO_RESULT,
    FrameError,
    FrameRef,
    encode_error,
    encode_success,
    encode_success_sized,
    frame_result,
    parse_result,
    read_frame,
)
from flowcraft.drivers.kubernetes import outcomes

pytestmark = pytest.mark.unit

NOW = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
LIMIT = 4096


def _noise(size: int, seed: int = 7) -> str:
    """Text that zlib cannot shrink much (random letters: about 5.95 bits of 8)."""
    rng = random.Random(seed)
    return "".join(rng.choices(string.ascii_letters + string.digits, k=size))


def _framed(output: Any) -> tuple[str, str, list[str]]:
    envelope = encode_success(output, "next")
    ref_text, lines = frame_result(envelope, LIMIT, "feedc0de")
    return envelope, ref_text, lines


def test_a_small_result_is_written_as_is() -> None:
    envelope = encode_success({"a": 1}, None)
    assert frame_result(envelope, LIMIT, "n") == (envelope, [])


def test_a_compressible_result_travels_inline_compressed() -> None:
    _envelope, ref_text, lines = _framed("abc" * 20_000)  # 60 KB of repetition
    assert lines == []
    assert len(ref_text) <= LIMIT
    assert json.loads(ref_text)[FRAME_KEY]["encoding"] == "zlib+base64"
    result = parse_result(ref_text)
    assert result.ok
    assert (result.output, result.action) == ("abc" * 20_000, "next")


def test_a_large_result_is_a_block_of_numbered_lines() -> None:
    envelope, ref_text, lines = _framed(_noise(700 * 1024))
    assert len(ref_text) <= LIMIT
    ref = parse_result(ref_text).frame
    assert ref is not None
    assert ref.lines == len(lines)
    assert ref.size == len(envelope.encode())
    assert all(len(line) < 16 * 1024 for line in lines)  # no container-runtime line split
    assert all(line.startswith(f"{FRAME_KEY} feedc0de ") for line in lines)
    assert not parse_result(ref_text).ok  # a reference is not an output


def test_the_block_is_found_among_other_log_lines_in_any_order() -> None:
    envelope, ref_text, lines = _framed(_noise(300 * 1024))
    ref = parse_result(ref_text).frame
    assert ref is not None
    shuffled = list(lines)
    random.Random(1).shuffle(shuffled)  # a thread printing while the block is written
    log = "user line\n" + "\nnoise\n".join(shuffled) + "\nlast words\n"
    assert read_frame(ref, log) == envelope


@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(), st.lists, max_leaves=8))
def test_frames_round_trip(value: Any) -> None:
    envelope = encode_success(value, None, [{"op": "set", "key": "k", "value": value}])
    ref_text, lines = frame_result(envelope, 64, "abcd")  # tiny limit: every path
    result = parse_result(ref_text)
    if result.frame is not None:
        result = parse_result(read_frame(result.frame, "\n".join(lines)))
    assert result.ok
    assert result.output == value


def test_a_missing_line_is_reported_not_guessed() -> None:
    _, ref_text, lines = _framed(_noise(100 * 1024))
    ref = parse_result(ref_text).frame
    assert ref is not None
    assert len(lines) > 2
    with pytest.raises(FrameError, match=rf"incomplete.*{len(lines) - 1} of {len(lines)} lines"):
        read_frame(ref, "\n".join(lines[:-1]))


def test_an_empty_log_is_reported() -> None:
    ref = FrameRef("n", 10, "0" * 64, 1)
    with pytest.raises(FrameError, match="0 of 1 lines"):
        read_frame(ref, "")


def _corrupt(line: str, at: int) -> str:
    head, _, chunk = line.rpartition(" ")
    swap = "A" if chunk[at] != "A" else "B"
    return f"{head} {chunk[:at]}{swap}{chunk[at + 1 :]}"


@pytest.mark.parametrize("at", [0, 100, FRAME_CHUNK // 2])
def test_a_corrupt_line_fails_never_a_wrong_output(at: int) -> None:
    _, ref_text, lines = _framed(_noise(50 * 1024))
    ref = parse_result(ref_text).frame
    assert ref is not None
    bad = [_corrupt(lines[0], at), *lines[1:]]
    with pytest.raises(FrameError, match=r"zlib|SHA-256|holds"):
        read_frame(ref, "\n".join(bad))


def test_a_line_that_is_not_base64_fails() -> None:
    _, ref_text, lines = _framed(_noise(50 * 1024))
    ref = parse_result(ref_text).frame
    assert ref is not None
    head, _, chunk = lines[0].rpartition(" ")
    with pytest.raises(FrameError, match="base64"):
        read_frame(ref, "\n".join([f"{head} {chunk[:-4]}!!!!", *lines[1:]]))


def test_a_reference_with_a_wrong_size_or_digest_fails() -> None:
    _, ref_text, lines = _framed(_noise(50 * 1024))
    ref = parse_result(ref_text).frame
    assert ref is not None
    with pytest.raises(FrameError, match="its reference says"):
        read_frame(ref._replace(size=ref.size - 1), "\n".join(lines))
    with pytest.raises(FrameError, match="its reference says"):
        read_frame(ref._replace(size=ref.size + 1), "\n".join(lines))
    with pytest.raises(FrameError, match="SHA-256"):
        read_frame(ref._replace(sha256="0" * 64), "\n".join(lines))


def test_a_corrupt_inline_frame_is_an_error() -> None:
    _, ref_text, _ = _framed("abc" * 20_000)
    doc = json.loads(ref_text)
    doc[FRAME_KEY]["data"] = base64.b64encode(b"not zlib").decode()
    result = parse_result(json.dumps(doc))
    assert result.error is not None
    assert result.error.startswith("CorruptResult: ")
    doc[FRAME_KEY] = {"encoding": "rot13"}
    assert (parse_result(json.dumps(doc)).error or "").startswith("CorruptResult: unknown")


def test_the_stored_size_is_output_plus_writes_json() -> None:
    writes = [{"op": "set", "key": "k", "value": "é" * 10}]
    envelope, size = encode_success_sized("x" * 100, "a", writes)
    assert json.loads(envelope) == {"output": "x" * 100, "action": "a", "writes": writes}
    compact = json.dumps(writes, ensure_ascii=False, separators=(",", ":"))
    assert size == 102 + len(compact.encode())


# --- outcomes: the operator's reading -----------------------------------------------------


def _pod(code: int, message: str) -> dict[str, Any]:
    term = {
        "exitCode": code,
        "reason": "Completed" if code == 0 else "Error",
        "message": message,
        "startedAt": "2026-01-01T11:59:58Z",
        "finishedAt": "2026-01-01T11:59:59Z",
    }
    return {
        "metadata": {"name": "pod-1"},
        "status": {"containerStatuses": [{"name": "node", "state": {"terminated": term}}]},
    }


def test_a_reference_in_the_termination_message_asks_for_the_log() -> None:
    envelope, ref_text, lines = _framed({"blob": _noise(700 * 1024)})
    seen = outcomes.observe(None, _pod(0, ref_text), NOW)
    assert isinstance(seen, outcomes.InLog)
    assert seen.pod == "pod-1"
    done = outcomes.from_log(seen, "hello\n" + "\n".join(lines))
    assert isinstance(done, outcomes.Succeeded)
    assert done.output == json.loads(envelope)["output"]
    assert done.action == "next"
    cut = outcomes.from_log(seen, "\n".join(lines[:3]))
    assert isinstance(cut, outcomes.Failed)
    assert cut.message.startswith("result unreadable: result block incomplete")


def test_the_log_is_read_whole_only_when_its_tail_lacks_the_block() -> None:
    _, ref_text, lines = _framed(_noise(200 * 1024))
    seen = outcomes.observe(None, _pod(0, ref_text), NOW)
    assert isinstance(seen, outcomes.InLog)
    full = "\n".join([*lines[:1], *("chatter" for _ in range(500)), *lines[1:]])
    asked: list[int | None] = []

    async def read_log(tail: int | None) -> str:
        asked.append(tail)
        return full if tail is None else "\n".join(full.splitlines()[-tail:])

    done = asyncio.run(outcomes.read_result(seen, read_log))
    assert isinstance(done, outcomes.Succeeded)
    assert asked == [len(lines) + 64, None]


def test_exit_zero_without_a_result_fails() -> None:
    seen = outcomes.observe(None, _pod(0, encode_error(NO_RESULT)), NOW)
    assert isinstance(seen, outcomes.Failed)
    assert "exited without a result" in seen.message


@pytest.mark.parametrize(("code", "name"), [(143, "SIGTERM"), (137, "SIGKILL"), (134, "SIGABRT")])
def test_a_signal_is_named(code: int, name: str) -> None:
    for message in (encode_error(NO_RESULT), ""):
        seen = outcomes.observe(None, _pod(code, message), NOW)
        assert isinstance(seen, outcomes.Failed)
        assert seen.message == f"killed by {name} (exit code {code}) without a result"


def test_an_error_result_of_a_signalled_process_keeps_its_message() -> None:
    seen = outcomes.observe(None, _pod(137, encode_error("MemoryError: big")), NOW)
    assert isinstance(seen, outcomes.Failed)
    assert "MemoryError: big" in seen.message
