# flowcraft-operator — `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: help venv run lint fmt typecheck unit test test-fast test-cluster test-chaos check

help: ## List the documented targets
	@grep -hE '^[a-zA-Z0-9_.-]+:.*## ' $(MAKEFILE_LIST) | sort -u | \
	  awk 'BEGIN {FS = ":.*## "}; {printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

venv: $(STAMP) ## Create .venv and install the package with its dev tools

run: $(STAMP) ## Run examples/parallel.yaml with the local runner (no cluster needed)
	$(BIN)/flowcraft run examples/parallel.yaml

lint: $(STAMP) ## ruff lint and format check
	$(BIN)/ruff check operator tests bench
	$(BIN)/ruff format --check operator tests bench

fmt: $(STAMP) ## Apply ruff fixes and formatting
	$(BIN)/ruff check --fix operator tests bench
	$(BIN)/ruff format operator tests bench

typecheck: $(STAMP) ## mypy --strict on the package
	$(BIN)/mypy

unit: $(STAMP) ## Unit tests (pure code: model, engine, runtime, builders, local runner)
	$(BIN)/pytest -m unit -q

check: lint typecheck verify chart-verify ## Static checks (lint, format, types, generated files)

test-fast: check unit ## Static checks + unit tests (no cluster needed)

test-cluster: $(STAMP) ## Integration + e2e tests on KUBECONFIG, else the offline harness (started if needed)
	hack/test-cluster.sh

test-chaos: $(STAMP) ## Small chaos run on kwok (~2 min; started and stopped if not up): 10 flows with operator kills and pod deletions, then 2 elected operators with leader kills; fails unless 0 duplicate Jobs, 0 unfinished flows, 0 outputs differing (build/chaos/; CHAOS_APISERVER_RESTARTS=1 adds an apiserver crash)
	VENV=$(VENV) hack/test-chaos.sh

test: test-fast test-cluster test-chaos ## The full test command CI runs: checks, unit, the cluster tiers, then the small chaos run

-include hack/*.mk
-include bench/*.mk
