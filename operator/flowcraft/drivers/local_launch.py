"""A node attempt on this machine: the local rendering of ``flowcraft.drivers.launch``.

Why a module beside ``local``: what an attempt gets is decided once for every driver
(``launch.node_launch``); this module only lays it out here, as the cluster's ``jobs`` lays
it out in a pod:

- the attempt's directory ``<attempt>`` is ``<run>/nodes/<node>/<attempt>`` (``attempt_dir``);
  its input directory ``<attempt>/in`` holds the launch's files, hard links to the stored
  results it may read (from ``<run>/outputs`` and ``<run>/writes``) and, when the flow
  has one, the initial context; ``<attempt>/out/result.json`` is its result file;
- a container function runs with ``docker run`` as a pod would: the input directory mounted
  read-only at ``launch.IN_DIR``, the result file at ``launch.OUT_FILE``, the launch's env,
  its user (65532), a read-only root with a tmpfs per writable path, no capabilities, no
  privilege escalation, its resource limits (``--memory``, ``--cpus``) and no network (see
  ``launch`` for why);
- a script/python function runs as ``python -m flowcraft.runtime`` on the host: the same
  files and the launch's env (function ``env`` included) at host paths, over the host's own
  environment (minus any ``FLOWCRAFT_*`` variable of the caller's).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path

from flowcraft.contract import INITIAL_CONTEXT_FILE, OUTPUTS_DIR, WRITES_DIR, file_stem
from flowcraft.drivers.launch import IN_DIR, OUT_FILE, Launch, LaunchError, StoredFile, quantity
from flowcraft.engine import StartNode

RESULT_FILE = "result.json"
_ENV_PREFIX = "FLOWCRAFT_"


def stored_source(run_dir: Path, stored: StoredFile) -> Path:
    """Where the run directory keeps the stored result part an input file links to."""
    folder = OUTPUTS_DIR if stored.part == "output" else WRITES_DIR
    return run_dir / folder / f"{file_stem(stored.key)}.json"


def attempt_dir(run_dir: Path, action: StartNode) -> Path:
    """Where an attempt's files and log live: ``<run>/nodes/<node>/<attempt>`` (``<iteration>.
    <attempt>`` in a later loop iteration; a batch item's under ``<iteration>.items/``)."""
    # Ids may hold any character but "/": the directory uses the id's file stem.
    name = str(action.attempt)
    if action.item is not None:
        items = run_dir / "nodes" / file_stem(action.node) / f"{action.iteration}.items"
        return items / f"{action.item}.{action.attempt}"
    if action.iteration:
        name = f"{action.iteration}.{action.attempt}"
    return run_dir / "nodes" / file_stem(action.node) / name


def prepare(launch: Launch, run_dir: Path, attempt_dir: Path) -> tuple[Path, Path]:
    """Write ``launch``'s input directory under ``attempt_dir``; return it and the result file."""
    in_dir = attempt_dir / "in"
    (in_dir / OUTPUTS_DIR).mkdir(parents=True, exist_ok=True)
    (in_dir / WRITES_DIR).mkdir(exist_ok=True)
    out_dir = attempt_dir / "out"
    out_dir.mkdir(exist_ok=True)
    for name, text in launch.files:
        (in_dir / name).write_text(text)
    if launch.initial_context:
        link(run_dir / INITIAL_CONTEXT_FILE, in_dir / INITIAL_CONTEXT_FILE)
    for stored in launch.stored:
        link(stored_source(run_dir, stored), in_dir / stored.path)
    out_file = out_dir / RESULT_FILE
    if not launch.runs_runtime:
        # Bind-mounted as the container's result file: it must exist, writable by its user.
        out_file.touch()
        out_file.chmod(0o666)
    return in_dir, out_file


def link(source: Path, target: Path) -> None:
    # Hard links: free, and unlike symlinks they also resolve inside a docker mount.
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


def host_env(
    launch: Launch,
    in_dir: Path,
    out_file: Path,
    base: Mapping[str, str],
    pythonpath: Sequence[str] = (),
) -> dict[str, str]:
    """The environment of a host process running ``launch``: ``base`` (the host's) without
    ``FLOWCRAFT_*``, then the launch's env at host paths; ``pythonpath`` goes first on
    PYTHONPATH (the flow's directory, for ``python:`` functions)."""
    env = {k: v for k, v in base.items() if not k.startswith(_ENV_PREFIX)}
    env.update(launch.host_env(str(in_dir), str(out_file)))
    paths = [*pythonpath, env.get("PYTHONPATH", "")]
    env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    return env


def docker_argv(launch: Launch, docker: str, name: str, in_dir: Path, out_file: Path) -> list[str]:
    """``docker run`` for a container attempt, with the pod's contract and sandbox
    (Kubernetes command/args semantics: ``command`` replaces the entrypoint, ``args`` the
    image's arguments)."""
    sandbox = launch.sandbox
    argv = [docker, "run", "--rm", "--name", name]
    argv += ["--user", f"{sandbox.user}:{sandbox.group}"]
    if sandbox.read_only_root:
        argv.append("--read-only")
    for path in sandbox.writable:
        argv += ["--tmpfs", path]
    for capability in sandbox.drop_capabilities:
        argv += ["--cap-drop", capability]
    if not sandbox.privilege_escalation:
        argv += ["--security-opt", "no-new-privileges"]
    argv += ["--network", "none"]
    argv += resource_flags(launch.resources)
    argv += ["-v", f"{in_dir}:{IN_DIR}:ro"]
    argv += ["-v", f"{out_file}:{OUT_FILE}"]
    for key, value in launch.env:
        argv += ["-e", f"{key}={value}"]
    command = list(launch.command or [])
    if command:
        argv += ["--entrypoint", command[0]]
    argv.append(launch.image)
    return argv + command[1:] + list(launch.args or [])


def resource_flags(resources: Mapping[str, Mapping[str, str]]) -> list[str]:
    """A function's resource limits as ``docker run`` flags (memory, cpu; requests only
    matter to a scheduler, and there is none here)."""
    limits = resources.get("limits") or {}
    flags: list[str] = []
    if "memory" in limits:
        flags += ["--memory", str(int(quantity(limits["memory"])))]
    if "cpu" in limits:
        cpus = quantity(limits["cpu"])
        if cpus <= 0:
            raise LaunchError(f"cpu limit must be positive, got {limits['cpu']!r}")
        flags += ["--cpus", f"{cpus:g}"]
    return flags


def container_name(flow: str, launch: Launch, pid: int) -> str:
    """A docker container name unique to this attempt of this process."""
    node = launch.node if launch.item is None else f"{launch.node}-{launch.item}"
    name = f"flowcraft-{flow}-{node}-{launch.attempt}-{pid}"
    return re.sub(r"[^a-zA-Z0-9_.-]", "-", name)[:200]


def write_json_atomic(path: Path, value: object) -> None:
    partial = path.with_suffix(".tmp")
    partial.write_text(json.dumps(value, ensure_ascii=False))
    partial.replace(path)
