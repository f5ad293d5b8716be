"""The same DAGs on flowcraft and on Argo Workflows, on the same cluster, in one run.

Why: our other figures are compared with numbers others published on other hardware. This
runs the systems side by side on the harness cluster (real pods), one flow at a time: ours,
Argo with its defaults (DEFAULT_REQUEUE_TIME 10 s) and Argo with DEFAULT_REQUEUE_TIME lowered
(``--settings default,1s``; 1 s is the lowest its source comments call safe). Each shape of
bench/argo_flows.py runs ``--reps`` times per system; every repetition rotates the order of
the systems, so none always runs right after another on a node that another just loaded.

All controllers run the same way and at the same time (idle when it is not their turn): host
processes started here and stopped here by pid, on the harness kubeconfig. Ours watches a
fresh namespace of its own (``--runner-image``); each Argo setting has its own controller
(``--namespaced``) and namespace (``argo-bench``, ``argo-bench-1s``: CRDs, executor RBAC and
ConfigMap by ``hack/argo.sh install``). After each run its Flow/Workflow is deleted and the
bench waits until its pods are gone. Results are written after every run (an interrupted
bench keeps what it measured). The figures are bench/argo_stats.py's: wall time, ÷ critical
path, median gap from a step's pod terminating to its successor's pod being created.

Usage: ``python bench/argo_bench.py [--reps 5] [--shapes seed,chain10,fan50]
[--settings default,1s] [--runner-image flowcraft-runner:0.1.0] [--out bench/results/argo.json]``;
``--show FILE...`` prints the table of result files. ``make bench-argo`` builds, installs and
uninstalls Argo around it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import argo_flows
import argo_stats
from kube_harness import (
    REAL_KUBECONFIG,
    ROOT,
    Api,
    BenchError,
    Operator,
    Watches,
    install_crd,
    proc_cpu_seconds,
    proc_status_kib,
)

WORK = ROOT / "build" / "bench" / "argo"
ARGO_NS = os.environ.get("ARGO_NAMESPACE", "argo-bench")
OURS = "ours"
RUN_TIMEOUT = 900.0


def argo_version() -> dict[str, str]:
    env = dict(line.split("=", 1) for line in _versions() if "=" in line)
    return {"version": env["ARGO_VERSION"], "executor_image": env["ARGOEXEC_IMAGE"]}


def _versions() -> list[str]:
    text = (ROOT / "hack" / "versions.env").read_text()
    return [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]


class ArgoController:
    """Argo's workflow-controller as a host process (command line from hack/argo.sh)."""

    def __init__(
        self, kubeconfig: Path, requeue: str | None, log_path: Path, namespace: str = ARGO_NS
    ) -> None:
        self.kubeconfig, self.requeue, self.log_path = kubeconfig, requeue, log_path
        self.namespace = namespace
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
        env["KUBECONFIG"] = str(self.kubeconfig)
        env["ARGO_NAMESPACE"] = self.namespace
        args = subprocess.run(
            [str(ROOT / "hack" / "argo.sh"), "cmdline"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.splitlines()
        if not Path(args[0]).exists():
            raise BenchError("workflow-controller not built: run hack/argo.sh build")
        env["LEADER_ELECTION_DISABLE"] = "true"
        env.pop("DEFAULT_REQUEUE_TIME", None)
        if self.requeue:
            env["DEFAULT_REQUEUE_TIME"] = self.requeue
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                args, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )

    @property
    def pid(self) -> int:
        if self.proc is None:
            raise BenchError("argo controller not started")
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        if self.proc is None or not self.alive():
            return
        os.kill(self.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:  # v4.0.5 keeps running on SIGTERM
            os.kill(self.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)


@dataclass
class System:
    """One side of the comparison: ours, or Argo with one setting, in its own namespace."""

    name: str  # "ours", "argo (requeue 10s)", ...
    tag: str  # in object names: "ours", "a10s", "a1s"
    namespace: str
    proc: Operator | ArgoController
    records: argo_stats.Records = field(default_factory=argo_stats.Records)

    @property
    def argo(self) -> bool:
        return isinstance(self.proc, ArgoController)

    @property
    def collection(self) -> str:
        if self.argo:
            return f"/apis/argoproj.io/v1alpha1/namespaces/{self.namespace}/workflows"
        return f"/apis/flowcraft.io/v1alpha1/namespaces/{self.namespace}/flows"

    def watches(self, api: Api) -> Watches:
        pods = f"/api/v1/namespaces/{self.namespace}/pods"
        streams = {pods: self.records.pod, self.collection: self.records.flow}
        return Watches(api, self.namespace, self.records, streams)


def argo_namespace(setting: str) -> str:
    """Argo's defaults in ``argo-bench``; another setting in ``argo-bench-<setting>``."""
    return ARGO_NS if setting == "default" else f"{ARGO_NS}-{setting.replace('.', '')}"


class Bench:
    def __init__(self, api: Api, args: argparse.Namespace) -> None:
        self.api, self.args = api, args
        self.systems: list[System] = []
        self.runs: list[argo_stats.RunFigures] = []
        self.cpu: dict[str, float] = {}
        self.rss: dict[str, float] = {}
        self.counter = 0

    # -- one run ---------------------------------------------------------------------------

    def run_one(self, system: System, shape: argo_flows.Shape, rep: int) -> None:
        self.counter += 1  # names are never reused within a bench (records are keyed by them)
        name = f"{shape.name}-{system.tag}-{self.counter}"
        if system.argo:
            obj = argo_flows.argo_workflow(shape, name, self.args.runner_image)
        else:
            obj = argo_flows.flowcraft_flow(shape, name)
        created = time.time()
        self.api.request("POST", system.collection, obj)
        deadline = time.monotonic() + RUN_TIMEOUT
        while name not in system.records.phases:
            if not system.proc.alive():
                raise BenchError(f"{system.name}: its controller exited; see {WORK}")
            if time.monotonic() > deadline:
                raise BenchError(f"{system.name}: {name} not finished after {RUN_TIMEOUT:.0f}s")
            time.sleep(0.1)
        time.sleep(1.0)  # the last pod events
        fig = argo_stats.run_figures(
            system=system.name,
            shape=shape.name,
            rep=rep,
            created=created,
            name=name,
            preds=shape.predecessors(),
            critical_s=shape.critical_path(),
            records=system.records,
        )
        self.runs.append(fig)
        self.save()  # after every run: an interrupted bench keeps what it measured
        print(
            f"  {name:<22} {system.name:<18} {fig.phase:<9} wall {fig.wall_s:7.2f} s  "
            f"gap median {argo_stats.ms(argo_stats.median(fig.gaps_s))} ms "
            f"(pod phase: {argo_stats.ms(argo_stats.median(fig.pod_gaps_s))} ms)  pods {fig.pods}",
            flush=True,
        )
        self.api.request("DELETE", f"{system.collection}/{name}")
        self.wait_pods_gone(system.namespace, name)

    def wait_pods_gone(self, namespace: str, name: str, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            items, _ = self.api.list_items(f"/api/v1/namespaces/{namespace}/pods")
            if not any((argo_stats.pod_step(p) or ("",))[0] == name for p in items):
                return
            time.sleep(1)
        print(f"  (pods of {name} still there after {timeout:.0f}s)", file=sys.stderr)

    # -- the whole comparison ----------------------------------------------------------------

    def argo_warmup(self, system: System) -> None:
        name = f"warmup-{system.tag}"
        shape = argo_flows.Shape("warmup", (("w", 0.0),), ())
        wf = argo_flows.argo_workflow(shape, name, self.args.runner_image)
        self.api.request("POST", system.collection, wf)
        deadline = time.monotonic() + 300
        while name not in system.records.phases:
            if not system.proc.alive() or time.monotonic() > deadline:
                raise BenchError(f"Argo warm-up workflow did not finish; see {WORK}")
            time.sleep(0.2)
        phase = system.records.phases[name][0]
        if phase != "Succeeded":
            raise BenchError(f"Argo warm-up workflow {phase}; see {WORK} and its pods")
        self.api.request("DELETE", f"{system.collection}/{name}")
        self.wait_pods_gone(system.namespace, name)

    def argo_system(self, setting: str) -> System:
        requeue = None if setting == "default" else setting
        namespace = argo_namespace(setting)
        env = {**os.environ, "ARGO_NAMESPACE": namespace, "KUBECONFIG": str(self.api.kubeconfig)}
        subprocess.run([str(ROOT / "hack" / "argo.sh"), "install"], env=env, check=True)
        ctl = ArgoController(
            self.api.kubeconfig, requeue, WORK / f"controller-{setting}.log", namespace
        )
        tag = "a" + (requeue or "10s").replace(".", "")
        return System(f"argo (requeue {requeue or '10s'})", tag, namespace, ctl)

    def run(self) -> None:
        api, args = self.api, self.args
        install_crd(api.kubeconfig)
        ours_ns = api.create_namespace("bench-argo-ours")
        operator = Operator(
            api.kubeconfig, [ours_ns], WORK / "operator.log", ["--runner-image", args.runner_image]
        )
        self.systems = [System(OURS, OURS, ours_ns, operator)]
        self.systems += [self.argo_system(s) for s in args.settings.split(",") if s != "none"]
        shapes = [argo_flows.SHAPES[s]() for s in args.shapes.split(",")]
        watches = [system.watches(api) for system in self.systems]
        cpu0: dict[str, float] = {}
        try:
            for w in watches:
                w.start()
            for system in self.systems:
                system.proc.start()
            operator.wait_ready(api, ours_ns, timeout=300)
            for system in self.systems[1:]:
                self.argo_warmup(system)
            cpu0 = {s.name: proc_cpu_seconds(s.proc.pid) for s in self.systems}
            for shape in shapes:
                print(f"{shape.name}: " + " vs ".join(s.name for s in self.systems), flush=True)
                for rep in range(args.reps):
                    # Each repetition rotates the order: no system always follows another.
                    k = rep % len(self.systems)
                    for system in self.systems[k:] + self.systems[:k]:
                        self.run_one(system, shape, rep)
        finally:
            for system in self.systems:
                if system.proc.alive() and system.name in cpu0:
                    self.cpu[system.name] = round(
                        proc_cpu_seconds(system.proc.pid) - cpu0[system.name], 1
                    )
                    self.rss[system.name] = round(
                        proc_status_kib(system.proc.pid, "VmHWM") / 1024, 1
                    )
            for w in watches:
                w.stop()
            for system in self.systems:
                system.proc.stop()
            api.delete_namespace(ours_ns, wait=300)

    def save(self) -> None:
        self.args.out.parent.mkdir(parents=True, exist_ok=True)
        self.args.out.write_text(json.dumps(self.results(), indent=2) + "\n")

    def results(self) -> dict[str, Any]:
        shapes = {s: argo_flows.SHAPES[s]() for s in self.args.shapes.split(",")}
        critical = {s: shape.critical_path() for s, shape in shapes.items()}
        agg = argo_stats.aggregate(self.runs)
        return {
            "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
            "loadavg_end": list(os.getloadavg()),
            "argo": {
                **argo_version(),
                "settings": self.args.settings.split(","),
                "controller": "host process, --namespaced, LEADER_ELECTION_DISABLE=true, "
                "--executor-image-pull-policy Never, no artifact repository, metrics off",
            },
            "runner_image": self.args.runner_image,
            "reps": self.args.reps,
            "critical_path_s": critical,
            "controller_cpu_s": self.cpu,
            "controller_peak_rss_mib": self.rss,
            "aggregate": agg,
            "table": argo_stats.table(agg, critical),
            "runs": [r.as_dict() for r in self.runs],
        }


def show(files: list[Path]) -> str:
    """The table of one or more result files, their runs pooled (e.g. two invocations)."""
    runs, critical = [], {}
    for path in files:
        doc = json.loads(path.read_text())
        critical.update(doc["critical_path_s"])
        runs += [argo_stats.RunFigures.from_dict(r) for r in doc["runs"]]
    return argo_stats.table(argo_stats.aggregate(runs), critical)


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--shapes", default="seed,chain10,fan50")
    parser.add_argument("--settings", default="default,1s")
    parser.add_argument("--runner-image", default="flowcraft-runner:0.1.0")
    parser.add_argument("--kubeconfig", type=Path, default=REAL_KUBECONFIG)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "argo.json")
    parser.add_argument(
        "--show",
        type=Path,
        nargs="+",
        help="print the table of earlier result files (their runs pooled) and exit",
    )
    args = parser.parse_args(argv)
    if args.show:
        print(show(args.show))
        return 0
    # SIGTERM/SIGINT (even when started in the background) unwind through the finally
    # blocks: the controllers stop by pid and the namespace is deleted.
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    bench = Bench(Api(args.kubeconfig), args)
    try:
        bench.run()
    finally:
        if bench.runs:
            bench.save()
            print(bench.results()["table"])
            print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
