# syntax=docker/dockerfile:1
#
# The operator image the Helm chart (charts/tarantool-operator) runs:
#
#   docker build -t tarantool/tarantool-operator:0.1.0 .
#
# NOTE: images cannot be built on this project's development machines (no
# container runtime there); the chart is tested with kwok pods, which never
# pull the image. Build it where Docker/BuildKit runs (the cache mounts below
# need BuildKit).

# ---- builder: the operator with its built-in strategies compiled to wasm and
# embedded (host/strategy/build.rs runs a nested cargo for wasm32-wasip2).
FROM rust:1.95-bookworm AS builder
RUN rustup target add wasm32-wasip2
WORKDIR /src
# The whole workspace: cargo resolves every member (strategies, examples,
# tests) even when it builds only the operator.
COPY . .
# --locked: the image is built from exactly the committed Cargo.lock. The
# target dir is a cache mount, so the binary is copied out in the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p tarantool-operator \
 && install -D -m 0755 target/release/tarantool-operator /out/tarantool-operator

# ---- runtime: glibc and libgcc only (wasmtime and the Rust std need them), no
# shell, no package manager; the nonroot variant runs as 65532.
FROM gcr.io/distroless/cc-debian12:nonroot
LABEL org.opencontainers.image.title="tarantool-operator" \
      org.opencontainers.image.description="Kubernetes operator for Tarantool Cartridge with wasm update strategies" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=builder /out/tarantool-operator /usr/local/bin/tarantool-operator
# Numeric, so that runAsNonRoot can verify it without resolving a name.
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/tarantool-operator"]
# The chart passes `run` and its flags explicitly; this is the bare default.
CMD ["run"]
