# Flowcraft vs Argo Workflows on the same cluster, same DAGs, one run (issue 13): bench/argo_bench.py.
# Argo is a benchmark anchor on the local harness only (hack/argo.sh; advisories in bench/README.md):
# built from the Go module proxy and cached under /var/cache/flowcraft, installed for the run and
# uninstalled after it, whatever the outcome. Not part of `make test` or CI.
.PHONY: bench-argo argo-up argo-down

ARGO_BENCH_ARGS ?=

argo-up: ## Argo Workflows on the harness for benchmarks: build (cached), argoexec image, CRDs + RBAC + ConfigMap
	hack/argo.sh build
	hack/argo.sh image
	hack/argo.sh install

argo-down: ## Remove Argo from the harness (its namespace and CRDs)
	hack/argo.sh uninstall

bench-argo: $(STAMP) bench-real-up argo-up ## Same DAGs on flowcraft and Argo (defaults, then DEFAULT_REQUEUE_TIME=1s), real pods, 5 runs each alternating; bench/results/argo.json
	$(BIN)/python bench/argo_bench.py --runner-image $(RUNNER_IMAGE) --out bench/results/argo.json $(ARGO_BENCH_ARGS); \
	  status=$$?; hack/argo.sh uninstall; exit $$status
