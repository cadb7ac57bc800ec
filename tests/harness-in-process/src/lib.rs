//! Harness tests that run the operator's controllers in the test process
//! (on the in-memory Cartridge), or read the operator's internals: its
//! constants, the strategy build's artifacts. They are the only harness
//! tests that link the operator crate, and with it wasmtime; everything
//! else that runs against the control plane lives in `tests/harness` and
//! starts the operator's binary. Shared helpers come from
//! `tests/harness/tests/support`; `tests/in_process` starts the
//! controllers.
