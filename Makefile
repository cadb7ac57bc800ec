# tarantool-operator: the two commands are `make demo` and `make test`.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
CARGO ?= cargo

.PHONY: help demo demo-down setup setup-rust setup-tarantool lint lint-chart test test-unit test-tarantool bench bench-refusal bench-drain bench-storm bench-scale crds

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

# ---------------------------------------------------------------- the tour
# scripts/demo.sh runs the prerequisite targets itself (as timed steps).
KEEP ?= 0
demo: ## the one-command tour on the dev cluster: chart, operator, the article's cluster, a rolling update, its timeline (KEEP=1 leaves it running)
	KEEP=$(KEEP) MAKE="$(MAKE)" CARGO="$(CARGO)" bash scripts/demo.sh

demo-down: ## stop what `make demo KEEP=1` left running (operator, recorder, and the dev cluster if the demo started it)
	MAKE="$(MAKE)" bash scripts/demo.sh down

# ---------------------------------------------------------------- prerequisites
setup-rust: ## the wasm target for strategies (rustup)
	@rustup target list --installed | grep -qx wasm32-wasip2 || rustup target add wasm32-wasip2

setup-tarantool: ## Debian's tarantool 2.6 (tarantool, tarantoolctl) for the Cartridge double (tests/tarantool)
	@command -v tarantool >/dev/null && command -v tarantoolctl >/dev/null || \
	  { apt-get update -qq && apt-get install -y -qq tarantool; }

setup: setup-rust setup-control-plane setup-tarantool ## install everything the tests need

# ---------------------------------------------------------------- checks
lint: setup-rust lint-chart ## rustfmt, clippy (warnings are errors) and the Helm chart
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

# helm comes from the control plane's build (cached; a cold build is long, but
# `make test` needs it for test-control-plane anyway, so it is built once).
lint-chart: setup-control-plane control-plane ## helm lint --strict and helm template checks of charts/tarantool-operator
	bash tests/chart/lint.sh

test-unit: setup-rust setup-tarantool ## unit, property and sandbox tests (no Kubernetes; host/cartridge/tests/console.rs runs real Tarantool)
	$(CARGO) test --workspace

test-tarantool: setup-tarantool ## the Cartridge double's tests, in real Tarantool (tests/tarantool)
	bash tests/tarantool/run-tests.sh

test: setup lint test-unit test-tarantool test-control-plane test-control-plane-oldest ## every test: what CI runs

# The chart carries the same files: Helm installs a chart's crds/ first.
crds: ## regenerate crds/ and the chart's copy from the Rust types in host/api (a test fails when they are stale)
	$(CARGO) run -q -p tarantool-operator -- crds --write crds/
	$(CARGO) run -q -p tarantool-operator -- crds --write charts/tarantool-operator/crds/

bench: setup-rust ## criterion benchmarks (strategy engine: wasm vs native)
	$(CARGO) bench -p tarantool-operator-strategy --bench plan

bench-refusal: setup-rust ## hostile components: time to refuse each, peak RSS while checking; 100 broken loads vs a 100 ms renewal loop
	$(CARGO) bench -p tarantool-operator-strategy --bench refusal

bench-update: setup-rust cluster-up ## makespan of a 10x3 rolling update vs the lower bound and the StatefulSet RollingUpdate (dev cluster)
	# The bench profile (optimized, as the image ships the operator): side by side
	# with the dev profile it was 0.96-1.08x against 1.07-1.12x (docs/operations.md).
	$(CARGO) bench --workspace --bench makespan

bench-drain: setup-rust cluster-up ## a drain at real Cartridge's pace (12 buckets/s): Cartridge asks and Role writes per minute (dev cluster)
	$(CARGO) build -p tarantool-operator
	$(CARGO) bench --workspace --bench drain --profile dev

bench-storm: setup-rust cluster-up ## every Role failing at once: apiserver writes per minute with the backoff vs a fixed 6 s retry (dev cluster)
	$(CARGO) build -p tarantool-operator
	$(CARGO) bench --workspace --bench storm --profile dev

bench-scale: setup-rust cluster-up ## one operator, 100 -> 300 -> 1,000 pods (SCALE_TIERS=2,6,20 Clusters of 50): time to Ready, rollout vs lower bound, pass p50/p99, RSS, converged traffic, cold start (dev cluster)
	# The operator as shipped (the image's release build): its pass time and
	# memory are what this measures. The harness itself stays a dev build.
	$(CARGO) build --release -p tarantool-operator
	HARNESS_OPERATOR_BIN=$(CURDIR)/target/release/tarantool-operator $(CARGO) bench --workspace --bench scale --profile dev

# ---------------------------------------------------------------- local control plane (tests/control-plane, docs/dev-cluster.md)
.PHONY: setup-control-plane control-plane cluster-up cluster-down test-control-plane test-control-plane-oldest soak
# The same target dir as every other cargo command: the harness tests depend on
# the operator crate, so a separate dir would compile wasmtime and kube twice.
HARNESS_TARGET_DIR ?= $(CURDIR)/target
# The harness runs through `cargo test --workspace` with its test targets named:
# `-p test-harness` would unify features differently and compile wasmtime, kube
# and the operator binary a second time (minutes of CI and gigabytes of disk).
# The operator binary the harness starts comes from the same build.
HARNESS_TESTS := $(foreach t,$(basename $(notdir $(wildcard tests/harness/tests/*.rs tests/harness-in-process/tests/*.rs))),--test $(t))
# Stack of each test's thread: a harness test is one long async function, and
# in a debug build its future (the Role and Cluster objects it holds across
# awaits) outgrows the 2 MiB libtest gives a thread.
HARNESS_STACK ?= 16777216
HARNESS_BUILD = CARGO_TARGET_DIR=$(HARNESS_TARGET_DIR) $(CARGO) test --workspace --no-run

setup-control-plane: ## Debian packages the control-plane scripts use (Go must be on PATH)
	@command -v go >/dev/null || { echo "Go >= 1.26 is needed to build the control plane" >&2; exit 1; }
	@missing=""; for c in curl:curl flock:util-linux setsid:util-linux; do \
	  command -v $${c%%:*} >/dev/null || missing="$$missing $${c#*:}"; done; \
	if [ -n "$$missing" ]; then apt-get update -qq && apt-get install -y -qq $$missing; fi

control-plane: ## build (or take from the cache) etcd, kube-*, kubectl, kwok, helm into target/control-plane/bin
	bash tests/control-plane/build.sh

cluster-up: setup-tarantool control-plane ## start the local control plane; KUBECONFIG=target/control-plane/kubeconfig
	bash tests/control-plane/cluster-up.sh

soak: setup-control-plane setup-tarantool control-plane ## kill the operator during 20 rolling updates, and during 20 each of replicas down, volume migration and Role deletion, on the dev cluster (KILL_TRIALS=N to change)
	@started=0; \
	if ! bash tests/control-plane/status.sh >/dev/null 2>&1; then bash tests/control-plane/cluster-up.sh; started=1; fi; \
	trap 'if [ $$started = 1 ]; then bash tests/control-plane/cluster-down.sh; fi' EXIT; \
	$(HARNESS_BUILD); \
	KILL_TRIALS=$${KILL_TRIALS:-20} CARGO_TARGET_DIR=$(HARNESS_TARGET_DIR) $(CARGO) test --workspace --test kill -- --include-ignored --nocapture

cluster-down: ## stop the local control plane and remove its state
	bash tests/control-plane/cluster-down.sh

# The same tests on the oldest supported Kubernetes (KUBERNETES_OLDEST_VERSION
# in tests/control-plane/versions.env): a second control plane in its own
# folder, from its own cached binaries; `make test-control-plane` is the newest.
OLDEST_CP_TARGET := $(CURDIR)/target/control-plane-oldest
test-control-plane-oldest: ## test-control-plane on the oldest supported Kubernetes (its own control plane in target/control-plane-oldest)
	CP_TARGET=$(OLDEST_CP_TARGET) CP_KUBERNETES=oldest $(MAKE) test-control-plane

test-control-plane: setup-control-plane setup-tarantool control-plane ## tests against the local control plane (stops it if it started it)
	@started=0; \
	if ! bash tests/control-plane/status.sh >/dev/null 2>&1; then bash tests/control-plane/cluster-up.sh; started=1; fi; \
	trap 'if [ $$started = 1 ]; then bash tests/control-plane/cluster-down.sh; fi' EXIT; \
	(cd tests/control-plane && CGO_ENABLED=0 go test ./cmd/cphelper); \
	bash tests/tarantool/check-dev-cluster.sh; \
	$(HARNESS_BUILD); \
	RUST_MIN_STACK=$(HARNESS_STACK) CARGO_TARGET_DIR=$(HARNESS_TARGET_DIR) $(CARGO) test --workspace $(HARNESS_TESTS) -- --include-ignored
