# Offline Kubernetes harness (hack/). Versions: hack/versions.env. Cache: $(FLOWCRAFT_CACHE).
FLOWCRAFT_CACHE ?= /var/cache/flowcraft
export FLOWCRAFT_CACHE
CLUSTER_KUBECONFIG := $(CURDIR)/.cluster/kubeconfig
KIND_CLUSTER ?= flowcraft
KIND_NODE_IMAGE ?=

.PHONY: cluster-bins cluster-images cluster cluster-kwok cluster-down cluster-status \
        e2e-kind image-load dockerd-start dockerd-stop

cluster-bins: ## Build (or find cached) k8s, etcd, kwok, helm, crictl, coredns binaries from the Go module proxy
	hack/build-bins.sh

cluster-images: ## Build the offline images (debootstrap base, pause, smoke) into the cache
	hack/images.sh

cluster: ## Start the single-node harness cluster (host processes); KUBECONFIG=.cluster/kubeconfig
	hack/cluster.sh up real

cluster-kwok: ## Start a kwok cluster (fake nodes, no containers; .cluster/kwok.kubeconfig) for scale tests
	hack/cluster.sh up kwok

cluster-down: ## Stop the harness clusters, real and kwok (their pids only); remove mounts, network, state
	hack/cluster.sh down

cluster-status: ## Show both harness clusters (real, kwok): processes and nodes
	hack/cluster.sh status real; hack/cluster.sh status kwok

image-load: ## Load IMAGES="name:tag ..." into the harness containerd or the kind cluster
	hack/image-load.sh $(IMAGES)

dockerd-start: ## Start the private dockerd for offline builds (point docker at it: hack/dockerd.sh env)
	hack/dockerd.sh start

dockerd-stop: ## Stop the private dockerd (by its pidfile)
	hack/dockerd.sh stop

e2e-kind: $(STAMP) ## (needs internet) kind cluster, load images, run integration+e2e, delete it
	hack/e2e-kind.sh

cluster-kwok-down: ## Stop only the kwok cluster
	hack/cluster.sh down kwok
