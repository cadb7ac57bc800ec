//! Subcommands of the binary. `anyhow` lives here, at the edge.

pub mod crds;
pub mod plan;
pub mod progress;
pub mod run;
pub mod strategy;
pub mod timeline;
pub mod user_agent;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use tarantool_operator::strategy::registry::FileSource;
use tarantool_operator::strategy::{
    ComponentLocation, ComponentSource, Registry, SandboxLimits, StrategyEngine, WasmStrategy,
    builtin,
};

/// A registry over a fresh engine.
fn registry(cache_dir: Option<PathBuf>) -> anyhow::Result<Registry> {
    let engine = StrategyEngine::new(SandboxLimits::default(), cache_dir)
        .context("cannot start the wasm engine")?;
    Ok(Registry::new(Arc::new(engine)))
}

/// A built-in by name, or a component from a file.
fn load(registry: &Registry, name_or_file: &str) -> anyhow::Result<Arc<WasmStrategy>> {
    if builtin::find(name_or_file).is_some() {
        return Ok(registry.builtin(name_or_file)?);
    }
    let path = Path::new(name_or_file);
    if !path.exists() {
        anyhow::bail!(
            "{name_or_file:?} is neither a built-in strategy ({}) nor a file",
            Registry::builtin_names().collect::<Vec<_>>().join(", ")
        );
    }
    let bytes = FileSource.fetch(&ComponentLocation::File(path.to_path_buf()))?;
    registry
        .engine()
        .load(&bytes, None)
        .with_context(|| format!("cannot load {}", path.display()))
}
