//! Shared by the Cartridge client's integration tests (each test binary
//! uses a part).

#![allow(dead_code)]

pub mod double;

use std::path::{Path, PathBuf};

/// The workspace root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .find(|dir| dir.join("Cargo.lock").is_file())
        .expect("the crate is inside the workspace")
        .to_path_buf()
}
