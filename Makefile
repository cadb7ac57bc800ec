# tarantool-operator: the two commands are `make demo` and `make test`.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
CARGO ?= cargo

.PHONY: help setup setup-rust lint test test-unit bench

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

# ---------------------------------------------------------------- prerequisites
setup-rust: ## the wasm target for strategies (rustup)
	@rustup target list --installed | grep -qx wasm32-wasip2 || rustup target add wasm32-wasip2

setup: setup-rust ## install everything the tests need

# ---------------------------------------------------------------- checks
lint: setup-rust ## rustfmt and clippy, warnings are errors
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

test-unit: setup-rust ## unit, property and sandbox tests (no Kubernetes)
	$(CARGO) test --workspace

test: setup lint test-unit ## every test: what CI runs

bench: setup-rust ## criterion benchmarks (strategy engine: wasm vs native)
	$(CARGO) bench -p tarantool-operator --bench plan
