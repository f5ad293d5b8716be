"""The same DAGs on flowcraft and on Argo Workflows, on the same cluster, in one run.

Why: our other figures are compared with numbers others published on other hardware. This
runs both systems side by side on the harness cluster (real pods): each shape of
bench/argo_flows.py ``--reps`` times, alternating the two systems run by run (the order flips
every repetition, so neither always follows the other), one flow at a time. Argo runs once per
``--settings`` entry: its defaults (``default``: DEFAULT_REQUEUE_TIME 10 s) and with
DEFAULT_REQUEUE_TIME lowered (e.g. ``1s``, the minimum its source comments call safe).

Both controllers run the same way: as host processes started here, stopped here by pid, on
the harness kubeconfig; ours watches a namespace of its own (``--runner-image``), Argo's
watches ``argo-bench`` (``--namespaced``; CRDs, RBAC and ConfigMap by ``hack/argo.sh
install``). After each run its Flow/Workflow is deleted and the bench waits until its pods are
gone, so every run starts on an empty node. The figures (bench/argo_stats.py): wall time,
÷ critical path, median gap from a step's pod terminating to its successor's pod being
created.

Usage: ``python bench/argo_bench.py [--reps 5] [--shapes seed,chain10,fan50]
[--settings default,1s] [--runner-image flowcraft-runner:0.1.0] [--out bench/results/argo.json]``
(``make bench-argo`` builds, installs and uninstalls Argo around it).
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
WF_PATH = f"/apis/argoproj.io/v1alpha1/namespaces/{ARGO_NS}/workflows"
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

    def __init__(self, kubeconfig: Path, requeue: str | None, log_path: Path) -> None:
        self.kubeconfig, self.requeue, self.log_path = kubeconfig, requeue, log_path
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
        env["KUBECONFIG"] = str(self.kubeconfig)
        env["ARGO_NAMESPACE"] = ARGO_NS
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


class Bench:
    def __init__(self, api: Api, args: argparse.Namespace) -> None:
        self.api, self.args = api, args
        self.ours_ns = ""
        self.records = {OURS: argo_stats.Records(), "argo": argo_stats.Records()}
        self.runs: list[argo_stats.RunFigures] = []
        self.cpu: dict[str, float] = {}
        self.rss: dict[str, float] = {}
        self.operator: Operator | None = None
        self.counter = 0

    # -- one run ---------------------------------------------------------------------------

    def run_one(
        self, system: str, proc: Operator | ArgoController, shape: argo_flows.Shape, rep: int
    ) -> None:
        argo = system != OURS
        setting = system.rsplit(" ", maxsplit=1)[-1].rstrip(")").replace(".", "")
        tag = f"a{setting}" if argo else OURS
        self.counter += 1  # names are never reused within a bench (records are keyed by them)
        name = f"{shape.name}-{tag}-{self.counter}"
        if argo:
            obj = argo_flows.argo_workflow(shape, name, self.args.runner_image)
            path, records = WF_PATH, self.records["argo"]
        else:
            obj = argo_flows.flowcraft_flow(shape, name)
            path = f"/apis/flowcraft.io/v1alpha1/namespaces/{self.ours_ns}/flows"
            records = self.records[OURS]
        created = time.time()
        self.api.request("POST", path, obj)
        deadline = time.monotonic() + RUN_TIMEOUT
        while name not in records.phases:
            if not proc.alive():
                raise BenchError(f"{system}: its controller exited; see {WORK}")
            if time.monotonic() > deadline:
                raise BenchError(f"{system}: {name} not finished after {RUN_TIMEOUT:.0f}s")
            time.sleep(0.1)
        time.sleep(1.0)  # the last pod events
        fig = argo_stats.run_figures(
            system=system,
            shape=shape.name,
            rep=rep,
            created=created,
            name=name,
            preds=shape.predecessors(),
            critical_s=shape.critical_path(),
            records=records,
        )
        self.runs.append(fig)
        self.save()  # after every run: an interrupted bench keeps what it measured
        print(
            f"  {name:<22} {system:<18} {fig.phase:<9} wall {fig.wall_s:7.2f} s  "
            f"gap median {argo_stats.ms(argo_stats.median(fig.gaps_s))} ms "
            f"(pod phase: {argo_stats.ms(argo_stats.median(fig.pod_gaps_s))} ms)  pods {fig.pods}",
            flush=True,
        )
        self.api.request("DELETE", f"{path}/{name}")
        self.wait_pods_gone(self.ours_ns if not argo else ARGO_NS, name)

    def wait_pods_gone(self, namespace: str, name: str, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            items, _ = self.api.list_items(f"/api/v1/namespaces/{namespace}/pods")
            if not any((argo_stats.pod_step(p) or ("",))[0] == name for p in items):
                return
            time.sleep(1)
        print(f"  (pods of {name} still there after {timeout:.0f}s)", file=sys.stderr)

    # -- the whole comparison ----------------------------------------------------------------

    def argo_warmup(self, ctl: ArgoController, label: str) -> None:
        name = f"warmup-{label}"
        shape = argo_flows.Shape("warmup", (("w", 0.0),), ())
        self.api.request(
            "POST", WF_PATH, argo_flows.argo_workflow(shape, name, self.args.runner_image)
        )
        deadline = time.monotonic() + 300
        while name not in self.records["argo"].phases:
            if not ctl.alive() or time.monotonic() > deadline:
                raise BenchError(f"Argo warm-up workflow did not finish; see {ctl.log_path}")
            time.sleep(0.2)
        phase = self.records["argo"].phases[name][0]
        if phase != "Succeeded":
            raise BenchError(f"Argo warm-up workflow {phase}; see {ctl.log_path} and its pods")
        self.api.request("DELETE", f"{WF_PATH}/{name}")
        self.wait_pods_gone(ARGO_NS, name)

    def run_shapes(
        self,
        shapes: list[argo_flows.Shape],
        system: str | None,
        ctl: ArgoController | None,
        *,
        with_ours: bool,
        operator: Operator | None = None,
    ) -> None:
        """Every shape ``--reps`` times; the two systems alternate, the order flipping each rep."""
        operator = operator or self.operator
        for shape in shapes:
            print(
                f"{shape.name}: "
                + " vs ".join([*([system] if system else []), *([OURS] if with_ours else [])])
            )
            for rep in range(self.args.reps):
                order: list[tuple[str, Any]] = []
                if system is not None:
                    order.append((system, ctl))
                if with_ours:
                    order.append((OURS, operator))
                if rep % 2 == 0:
                    order.reverse()
                for sysname, proc in order:
                    self.run_one(sysname, proc, shape, rep)

    def run(self) -> None:
        api, args = self.api, self.args
        install_crd(api.kubeconfig)
        self.ours_ns = api.create_namespace("bench-argo-ours")
        operator = self.operator = Operator(
            api.kubeconfig,
            [self.ours_ns],
            WORK / "operator.log",
            ["--runner-image", args.runner_image],
        )
        shapes = [argo_flows.SHAPES[s]() for s in args.shapes.split(",")]
        watches = [
            Watches(
                api,
                self.ours_ns,
                self.records[OURS],
                {
                    f"/api/v1/namespaces/{self.ours_ns}/pods": self.records[OURS].pod,
                    f"/apis/flowcraft.io/v1alpha1/namespaces/{self.ours_ns}/flows": self.records[
                        OURS
                    ].flow,
                },
            ),
            Watches(
                api,
                ARGO_NS,
                self.records["argo"],
                {
                    f"/api/v1/namespaces/{ARGO_NS}/pods": self.records["argo"].pod,
                    WF_PATH: self.records["argo"].flow,
                },
            ),
        ]
        try:
            for w in watches:
                w.start()
            operator.start()
            operator.wait_ready(api, self.ours_ns, timeout=180)
            ours_cpu0 = operator.cpu_seconds()
            for index, setting in enumerate(args.settings.split(",")):
                if setting == "none":  # ours alone: a check of the bench itself
                    self.run_shapes(shapes, None, None, with_ours=True)
                    continue
                requeue = None if setting == "default" else setting
                system = f"argo (requeue {requeue or '10s'})"
                ctl = ArgoController(api.kubeconfig, requeue, WORK / f"controller-{setting}.log")
                ctl.start()
                try:
                    self.argo_warmup(ctl, setting.replace(".", ""))
                    argo_cpu0 = proc_cpu_seconds(ctl.pid)
                    with_ours = index == 0 or args.ours_every_setting
                    self.run_shapes(shapes, system, ctl, with_ours=with_ours, operator=operator)
                    self.cpu[system] = round(proc_cpu_seconds(ctl.pid) - argo_cpu0, 1)
                    self.rss[system] = round(proc_status_kib(ctl.pid, "VmHWM") / 1024, 1)
                finally:
                    ctl.stop()
            self.cpu[OURS] = round(operator.cpu_seconds() - ours_cpu0, 1)
            self.rss[OURS] = round(operator.peak_rss_mib(), 1)
        finally:
            for w in watches:
                w.stop()
            operator.stop()
            api.delete_namespace(self.ours_ns, wait=300)

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
    parser.add_argument("--ours-every-setting", action="store_true")
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
