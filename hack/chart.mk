# The Helm chart (issue 5): CRD copy + drift check, lint, install into the current cluster.
# Included by the root Makefile (-include hack/*.mk). Uses hack/operator.mk's image variables.
HELM ?= $(if $(wildcard .cluster/bin/helm),$(CURDIR)/.cluster/bin/helm,helm)
CHART_KUBECTL ?= $(if $(wildcard .cluster/bin/kubectl),$(CURDIR)/.cluster/bin/kubectl,kubectl)
CHART_DIR := charts/flowcraft
HELM_RELEASE ?= flowcraft
HELM_NAMESPACE ?= flowcraft-system
HELM_ARGS ?=
CHART_KUBECONFIG ?= $(if $(KUBECONFIG),$(KUBECONFIG),$(CURDIR)/.cluster/kubeconfig)

.PHONY: chart-crds chart-verify chart-lint helm-deploy helm-undeploy

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

helm-deploy: images ## Build + load the images, then helm upgrade --install (HELM_RELEASE, HELM_NAMESPACE, HELM_ARGS)
	$(HELM) --kubeconfig $(CHART_KUBECONFIG) upgrade --install $(HELM_RELEASE) $(CHART_DIR) \
	  --namespace $(HELM_NAMESPACE) --create-namespace --wait --timeout 3m \
	  --set image.repository=$(firstword $(subst :, ,$(OPERATOR_IMAGE))) \
	  --set image.tag=$(lastword $(subst :, ,$(OPERATOR_IMAGE))) $(HELM_ARGS)

helm-undeploy: ## helm uninstall the release (Flows and the CRD stay, by Helm convention)
	$(HELM) --kubeconfig $(CHART_KUBECONFIG) uninstall $(HELM_RELEASE) --namespace $(HELM_NAMESPACE) \
	  --ignore-not-found --wait
