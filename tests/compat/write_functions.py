"""Write tests/compat/cases/<case>/functions.yaml from ports.py and the case's blueprints.

    .venv/bin/python tests/compat/write_functions.py [--check]

flowcraft's builder names each function `fn_<hash>` (or a class name); the ports are keyed by
node id, so this reads blueprint.json and subflow-*.json to find each node's `uses` key. Built-in
node types get no entry. `--check` exits 1 when a functions.yaml would change (drift), or when
a node has no port.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ports import PORTS

HERE = Path(__file__).resolve().parent
CASES = HERE / "cases"
BUILTIN_USES = {
    "batch-scatter",
    "batch-gather",
    "loop-controller",
    "subflow",
    "wait",
    "sleep",
    "webhook",
    "SubflowNode",
    "WaitNode",
    "SleepNode",
    "WebhookNode",
    "BatchScatterNode",
    "BatchGatherNode",
}


class _Literal(str):
    pass


def _literal(dumper: yaml.SafeDumper, value: _Literal) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|")


yaml.SafeDumper.add_representer(_Literal, _literal)


def node_keys(case_dir: Path) -> dict[str, str]:
    """Port key (node id, `<subflow>/<node>`, `@worker:<batch id>`) -> `uses` key."""
    keys: dict[str, str] = {}
    blueprints: list[tuple[str, dict[str, Any]]] = [
        ("", json.loads((case_dir / "blueprint.json").read_text()))
    ]
    for path in sorted(case_dir.glob("subflow-*.json")):
        bp = json.loads(path.read_text())
        blueprints.append((f"{bp['id']}/", bp))
    for prefix, bp in blueprints:
        for node in bp["nodes"]:
            uses = node["uses"]
            if uses == "batch-scatter":
                keys[f"@worker:{node['id'].removesuffix('_scatter')}"] = node["params"][
                    "workerUsesKey"
                ]
            elif uses not in BUILTIN_USES:
                keys[f"{prefix}{node['id']}"] = uses
    return keys


def render(case: str, ports: dict[str, str]) -> str:
    keys = node_keys(CASES / case)
    missing = sorted(set(keys) - set(ports))
    extra = sorted(set(ports) - set(keys))
    if missing or extra:
        raise SystemExit(f"{case}: ports missing for {missing}, ports without a node {extra}")
    functions = {keys[k]: {"script": _Literal(ports[k])} for k in keys}
    lines = [
        f"# Python ports of {case}'s node functions (generated from tests/compat/ports.py by",
        "# tests/compat/write_functions.py; edit ports.py). uses key <- node:",
    ]
    lines += [f"#   {keys[k]} <- {k}" for k in keys]
    body = yaml.safe_dump(functions, sort_keys=False, width=100, allow_unicode=True)
    return "\n".join(lines) + "\n" + body


def main(argv: list[str]) -> int:
    check = "--check" in argv
    cases = sorted(p.name for p in CASES.iterdir() if (p / "blueprint.json").is_file())
    stale = []
    for case in cases:
        if case not in PORTS:
            raise SystemExit(f"{case}: no ports in ports.py")
        text = render(case, PORTS[case])
        path = CASES / case / "functions.yaml"
        if path.is_file() and path.read_text() == text:
            continue
        stale.append(case)
        if not check:
            path.write_text(text)
    if check and stale:
        print("functions.yaml out of date:", ", ".join(stale))
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
