//! Builds the built-in strategies (and the example custom strategy) for
//! `wasm32-wasip2` so that a plain `cargo build` embeds them in the strategy
//! host (and so in the operator).
//!
//! The guests are built by a nested cargo into their own target directory: the
//! outer cargo holds the lock on its own, and wasm artifacts are shared across
//! debug, release and clippy builds of the host.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

/// (package, file stem of its artifact)
const GUESTS: &[(&str, &str)] = &[
    ("on-delete", "on_delete"),
    ("cluster-partition-update", "cluster_partition_update"),
    ("switch-master-update", "switch_master_update"),
    ("custom-strategy", "custom_strategy"),
];

const TARGET: &str = "wasm32-wasip2";
/// The cargo profile for guests (workspace Cargo.toml): stripped, LTO.
const PROFILE: &str = "wasm-guest";

fn main() {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets this"));
    let workspace = manifest_dir
        .ancestors()
        .nth(2)
        .expect("host/strategy/ lives in the workspace")
        .to_path_buf();
    let out_dir = PathBuf::from(env::var("OUT_DIR").expect("cargo sets this"));
    let guest_target = env::var_os("TARANTOOL_OPERATOR_GUEST_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace.join("target").join("wasm-guests"));

    for dir in [
        "wit",
        "strategies",
        "examples/custom-strategy",
        "Cargo.lock",
    ] {
        println!("cargo:rerun-if-changed={}", workspace.join(dir).display());
    }
    println!("cargo:rerun-if-env-changed=TARANTOOL_OPERATOR_GUEST_TARGET_DIR");

    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(&workspace)
        .args([
            "build",
            "--profile",
            PROFILE,
            "--locked",
            "--target",
            TARGET,
        ])
        .arg("--target-dir")
        .arg(&guest_target);
    for (package, _) in GUESTS {
        cmd.args(["-p", package]);
    }
    // The outer build's flags and wrappers (clippy, coverage) are for the host.
    for var in [
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTFLAGS",
        "RUSTC_WORKSPACE_WRAPPER",
        "RUSTC_WRAPPER",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
    ] {
        cmd.env_remove(var);
    }
    let status = cmd
        .status()
        .unwrap_or_else(|e| panic!("cannot run cargo to build the wasm strategies: {e}"));
    if !status.success() {
        panic!(
            "building the wasm strategies failed ({status}, output above); if the target is missing, \
             run `rustup target add {TARGET}` (or `make setup`)"
        );
    }

    let artifacts = guest_target.join(TARGET).join(PROFILE);
    for (_, stem) in GUESTS {
        copy(
            &artifacts.join(format!("{stem}.wasm")),
            &out_dir.join(format!("{stem}.wasm")),
        );
    }
    // The example custom strategy is not embedded; tests and docs find it here.
    println!(
        "cargo:rustc-env=TARANTOOL_OPERATOR_EXAMPLE_WASM={}",
        out_dir.join("custom_strategy.wasm").display()
    );
}

fn copy(from: &Path, to: &Path) {
    std::fs::copy(from, to)
        .unwrap_or_else(|e| panic!("copy {} -> {}: {e}", from.display(), to.display()));
}
