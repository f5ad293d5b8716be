# The compatibility suite's data (tests/compat): regenerated from flowcraft 2.10.1 itself.
.PHONY: compat-generate

compat-generate: $(STAMP) ## Rebuild tests/compat cases with flowcraft 2.10.1 (needs node + npm), then their functions.yaml
	cd tests/compat/generator && npm ci --no-audit --no-fund && node generate.mjs
	$(BIN)/python tests/compat/write_functions.py
