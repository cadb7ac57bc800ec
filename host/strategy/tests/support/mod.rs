//! Shared by the integration tests of host/strategy and host/ (the CLI):
//! builds guest crates to wasm components the same way `build.rs` builds the
//! built-ins.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// The workspace root (this file is shared by the tests of host/ and
/// host/strategy/).
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .find(|dir| dir.join("Cargo.lock").is_file())
        .expect("the crate is inside the workspace")
        .to_path_buf()
}

/// Builds `package` with `features` for wasm32-wasip2 and returns the
/// component's bytes. Uses the guests' own target directory, so only the
/// package itself recompiles between feature sets.
pub fn build_guest(package: &str, features: &[&str]) -> Vec<u8> {
    let target_dir = workspace().join("target").join("wasm-guests");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace())
        .args([
            "build",
            "--quiet",
            "--locked",
            "--profile",
            "wasm-guest",
            "--target",
            "wasm32-wasip2",
            "-p",
            package,
        ])
        .arg("--target-dir")
        .arg(&target_dir);
    if !features.is_empty() {
        cmd.arg("--features").arg(features.join(","));
    }
    for var in ["CARGO_ENCODED_RUSTFLAGS", "RUSTFLAGS", "CARGO_TARGET_DIR"] {
        cmd.env_remove(var);
    }
    let status = cmd.status().expect("run cargo to build a guest");
    assert!(status.success(), "building {package} {features:?} failed");
    let artifact = target_dir
        .join("wasm32-wasip2")
        .join("wasm-guest")
        .join(format!("{}.wasm", package.replace('-', "_")));
    std::fs::read(&artifact).unwrap_or_else(|e| panic!("read {}: {e}", artifact.display()))
}

/// A small Role: `replicasets` x `replicas`, pod 0 master, nothing updated.
pub fn role(replicasets: u32, replicas: u32) -> strategy_sdk::RoleView {
    strategy_sdk::RoleView::sample(replicasets, replicas)
}
