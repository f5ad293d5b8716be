# Cluster benchmarks (issue 6): bench/kube_bench.py; method and figures in bench/README.md.
# Included by the root Makefile (-include bench/*.mk) after hack/*.mk ($(RUNNER_IMAGE)).
.PHONY: bench-quick bench bench-kwok bench-pods bench-profile bench-real-up bench-batch bench-chaos

BENCH_PY := $(BIN)/python bench/kube_bench.py

# The real-pod scenario needs the single-node cluster and the runner image in its containerd.
bench-real-up:
	hack/cluster.sh up real
	$(MAKE) --no-print-directory image-runner
	hack/image-load.sh $(RUNNER_IMAGE)

bench-quick: $(STAMP) cluster-kwok bench-real-up ## Benchmarks, a few minutes: kwok latency + throughput + 1->1000->1, real-pod parallel example; writes bench/results/latest.json
	$(BENCH_PY) --preset quick --out bench/results/latest.json

bench: $(STAMP) cluster-kwok bench-real-up ## Full benchmarks (adds 200x10 throughput and 1000 active flows); writes bench/results/latest.json
	$(BENCH_PY) --preset full --out bench/results/latest.json

bench-kwok: $(STAMP) cluster-kwok ## kwok-only benchmarks (latency, throughput, fan-out); writes bench/results/kwok.json
	$(BENCH_PY) --only latency,throughput,fanout --out bench/results/kwok.json

bench-pods: $(STAMP) bench-real-up ## Real pods: examples/parallel.yaml wall time / 2.0 s with a per-step breakdown; bench/results/pods.json
	$(BENCH_PY) --only pods --out bench/results/pods.json

bench-profile: $(STAMP) cluster-kwok ## py-spy profile of the operator during the kwok throughput run (build/bench/*/profile.txt)
	$(BENCH_PY) --only throughput --profile --out bench/results/profile-run.json

bench-batch: $(STAMP) cluster-kwok bench-real-up ## Batch items (~1.5 h on a busy machine): kwok 1->1,000->1 (Job per item vs Indexed Job per round, 3 runs each), 1->10,000->1 (Indexed), real pods 50 items; bench/results/batch-*.json
	$(BENCH_PY) --only batch --batch-items 1000 --batch-repeats 3 --out bench/results/batch-1000.json
	$(BENCH_PY) --only batch --batch-items 10000 --batch-modes indexed --batch-repeats 1 --out bench/results/batch-10000.json
	$(BENCH_PY) --only batch-pods --batch-repeats 1 --out bench/results/batch-pods.json
	$(BIN)/python bench/batch_pass_bench.py

bench-chaos: $(STAMP) cluster-kwok ## Chaos on kwok: 20 x 21-node flows, 20 operator SIGKILLs, one kube-apiserver crash, pods deleted; duplicate Jobs, unfinished flows and outputs differing from a clean run must be 0 (bench/results/chaos.json; CHAOS_ARGS="--flows 100 --replicas 2 ...")
	$(BIN)/python bench/chaos.py $(CHAOS_ARGS)

.PHONY: bench-results
bench-results: $(STAMP) bench-real-up ## Result channel on real pods: overhead of the pod-log channel vs the termination message (1/100/900 KiB, median of 5) and operator RSS with 100 nodes x 500 KiB at once; bench/results/results-channel.json
	$(BIN)/python bench/results_bench.py --runner-image $(RUNNER_IMAGE) --out bench/results/results-channel.json
