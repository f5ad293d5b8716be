.PHONY: bench-local

bench-local: $(STAMP) ## Local runner: `flowcraft run examples/parallel.yaml` wall time / 2.0 s critical path (median of 5)
	$(BIN)/python bench/local_bench.py --runs 5
