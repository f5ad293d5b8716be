# The Helm chart (issue 5): CRD copy + drift check, lint. `make deploy`/`undeploy` (helm) live
# in hack/operator.mk and use the variables below. Included by the root Makefile.
HELM ?= $(if $(wildcard .cluster/bin/helm),$(CURDIR)/.cluster/bin/helm,helm)
CHART_DIR := charts/flowcraft
HELM_RELEASE ?= flowcraft
HELM_NAMESPACE ?= flowcraft-system
HELM_ARGS ?=

.PHONY: chart-crds chart-verify chart-lint

chart-crds: ## Copy crds/*.yaml into the chart (charts/flowcraft/crds/)
	mkdir -p $(CHART_DIR)/crds
	cp crds/*.yaml $(CHART_DIR)/crds/

chart-verify: ## Fail when the chart's CRDs differ from crds/ (run `make chart-crds`)
	@diff -r -q crds $(CHART_DIR)/crds >/dev/null || { \
	  echo "charts/flowcraft/crds/ differs from crds/: run make chart-crds" >&2; \
	  diff -r crds $(CHART_DIR)/crds >&2; exit 1; }

chart-lint: ## helm lint the chart (cluster-wide and namespaced RBAC)
	$(HELM) lint --strict $(CHART_DIR)
	$(HELM) lint --strict $(CHART_DIR) --set rbac.scope=namespaced --set dashboard.enabled=true
