"""Local node processes: one attempt's process (or docker container), killable as a group,
the check that a docker daemon answers, and how a process that wrote no result ended.

Why a module of its own: the local runner (``local``) decides when to start and stop
attempts; how a process is spawned, waited for and killed (a docker client's container
included) is the same for every attempt and independent of the flow.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
from collections.abc import Mapping
from pathlib import Path

DOCKER_CHECK_SECONDS = 15.0
LOG_TAIL_LINES = 5  # of an attempt's log, quoted when it ended without a result


class Proc:
    """One node process in its own session, so it (and its children) can be killed as a group."""

    def __init__(
        self, process: asyncio.subprocess.Process, docker: str | None, container: str | None
    ) -> None:
        self._process = process
        self._docker = docker
        self._container = container

    @classmethod
    async def spawn(
        cls,
        argv: list[str],
        cwd: Path,
        env: Mapping[str, str] | None,
        log_path: Path,
        docker: str | None,
    ) -> Proc:
        with log_path.open("wb") as log:
            process = await asyncio.create_subprocess_exec(
                *argv,
                cwd=cwd,
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,
            )
        container = argv[argv.index("--name") + 1] if docker is not None else None
        return cls(process, docker, container)

    async def wait(self) -> int:
        return await self._process.wait()

    def kill_soon(self) -> None:
        asyncio.get_running_loop().create_task(self.kill())

    async def kill(self) -> None:
        if self._process.returncode is not None:
            return
        if self._docker is not None and self._container is not None:
            # Killing the docker client would leave the container running.
            killer = await asyncio.create_subprocess_exec(
                self._docker,
                "kill",
                self._container,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
            )
            await killer.wait()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self._process.pid, signal.SIGKILL)
        await self._process.wait()


async def check_docker(docker: str) -> str | None:
    if shutil.which(docker) is None:
        return f"{docker!r} is not installed (not found on PATH)"
    try:
        proc = await asyncio.create_subprocess_exec(
            docker,
            "info",
            "--format",
            "{{.ServerVersion}}",
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
    except OSError as exc:
        return f"cannot run {docker!r}: {exc}"
    try:
        out, err = await asyncio.wait_for(proc.communicate(), DOCKER_CHECK_SECONDS)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        return f"'{docker} info' did not answer within {DOCKER_CHECK_SECONDS:g} s"
    if proc.returncode != 0:
        detail = (err or out).decode(errors="replace").strip().splitlines()
        return f"'{docker} info' failed: {detail[-1] if detail else f'exit {proc.returncode}'}"
    return None


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def exit_message(code: int, log_path: Path) -> str:
    """Why an attempt failed when it wrote no error result: exit status and the log's tail."""
    what = f"killed by {_signal_name(-code)}" if code < 0 else f"exited with code {code}"
    message = f"node process {what} without a result"
    with contextlib.suppress(OSError):
        tail = log_path.read_text(errors="replace").strip().splitlines()[-LOG_TAIL_LINES:]
        if tail:
            message += ": " + " | ".join(tail)
    return message
