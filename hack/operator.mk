# The operator: generated CRD, images, RBAC/deploy, running it (issue 4).
# Included by the root Makefile (-include hack/*.mk); $(BIN) is the venv's bin directory.
OPERATOR_VERSION ?= 0.1.0
RUNNER_IMAGE ?= flowcraft-runner:$(OPERATOR_VERSION)
OPERATOR_IMAGE ?= flowcraft-operator:$(OPERATOR_VERSION)
OPERATOR_BASE_IMAGE ?= $(shell . hack/versions.env && echo $$BASE_IMAGE)
OPERATOR_KUBECONFIG ?= $(if $(KUBECONFIG),$(KUBECONFIG),$(CURDIR)/.cluster/kubeconfig)
OPERATOR_ARGS ?= --all-namespaces --metrics-port 8080
IMAGE_CONTEXT := build/images

.PHONY: generate verify images image-runner image-operator operator-run crd-install deploy undeploy deploy-manifest

generate: $(STAMP) ## Regenerate crds/flow.yaml and crds/blueprint.yaml from the pydantic models (never hand-edit them)
	$(BIN)/python -m flowcraft.drivers.kubernetes.crd crds/flow.yaml
	$(BIN)/python -m flowcraft.drivers.kubernetes.crd --kind blueprint crds/blueprint.yaml

verify: $(STAMP) ## Fail when generated files (crds/*.yaml) drift from their generator
	$(BIN)/python -m flowcraft.drivers.kubernetes.crd --check crds/flow.yaml
	$(BIN)/python -m flowcraft.drivers.kubernetes.crd --check --kind blueprint crds/blueprint.yaml

image-runner: ## Build the node runtime image offline (--network none) FROM the harness base image
	rm -rf $(IMAGE_CONTEXT)/runner && mkdir -p $(IMAGE_CONTEXT)/runner
	cp images/runner/Dockerfile $(IMAGE_CONTEXT)/runner/
	cp -r operator/flowcraft $(IMAGE_CONTEXT)/runner/flowcraft
	find $(IMAGE_CONTEXT)/runner -name __pycache__ -prune -exec rm -rf {} +
	hack/dockerd.sh start 2>/dev/null
	eval "$$(hack/dockerd.sh env)" && docker build --network none -q \
	  --build-arg BASE_IMAGE=$(OPERATOR_BASE_IMAGE) -t $(RUNNER_IMAGE) $(IMAGE_CONTEXT)/runner

image-operator: $(STAMP) ## Build the operator image offline from wheels prepared on the host
	rm -rf $(IMAGE_CONTEXT)/operator && mkdir -p $(IMAGE_CONTEXT)/operator/wheels
	cp images/operator/Dockerfile $(IMAGE_CONTEXT)/operator/
	$(BIN)/pip wheel -q --wheel-dir $(IMAGE_CONTEXT)/operator/wheels . pip
	hack/dockerd.sh start 2>/dev/null
	eval "$$(hack/dockerd.sh env)" && docker build --network none -q \
	  --build-arg BASE_IMAGE=$(OPERATOR_BASE_IMAGE) -t $(OPERATOR_IMAGE) $(IMAGE_CONTEXT)/operator

images: image-runner image-operator ## Build runner + operator images offline and load them into the cluster
	hack/image-load.sh $(RUNNER_IMAGE) $(OPERATOR_IMAGE)

crd-install: ## Apply crds/*.yaml (Flow, Blueprint) to the cluster (OPERATOR_KUBECONFIG, default .cluster/kubeconfig)
	kubectl --kubeconfig $(OPERATOR_KUBECONFIG) apply --server-side -f crds/flow.yaml -f crds/blueprint.yaml

operator-run: $(STAMP) crd-install ## Run the operator on this machine against the cluster (metrics on :8080)
	$(BIN)/python -m flowcraft.drivers.kubernetes --kubeconfig $(OPERATOR_KUBECONFIG) $(OPERATOR_ARGS)

deploy: images crd-install ## Build + load the images, apply the CRD, helm upgrade --install the chart (idempotent; HELM_RELEASE, HELM_NAMESPACE, HELM_ARGS)
	$(HELM) --kubeconfig $(OPERATOR_KUBECONFIG) upgrade --install $(HELM_RELEASE) $(CHART_DIR) \
	  --namespace $(HELM_NAMESPACE) --create-namespace --wait --timeout 3m \
	  --set image.repository=$(firstword $(subst :, ,$(OPERATOR_IMAGE))) \
	  --set image.tag=$(lastword $(subst :, ,$(OPERATOR_IMAGE))) $(HELM_ARGS)

undeploy: ## helm uninstall the operator (Flows and the CRD stay, by Helm convention)
	$(HELM) --kubeconfig $(OPERATOR_KUBECONFIG) uninstall $(HELM_RELEASE) --namespace $(HELM_NAMESPACE) \
	  --ignore-not-found --wait

deploy-manifest: crd-install ## Without helm: apply RBAC + the Deployment from deploy/operator.yaml
	kubectl --kubeconfig $(OPERATOR_KUBECONFIG) apply -f deploy/operator.yaml
