//! On-disk cache of compiled strategies, keyed by the component's sha256 and
//! the engine's compatibility hash (wasmtime version, target, settings).
//!
//! A compiled artifact is native code that wasmtime maps and runs without
//! re-validating, so the cache only trusts files it wrote itself: each entry
//! carries a sha256 of its artifact, and anything that fails to verify or to
//! deserialize is a miss (removed, then recompiled).

use std::fs;
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

/// A sha256 digest, shown as lowercase hex.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest(pub [u8; 32]);

impl Digest {
    /// The sha256 of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Self(Sha256::digest(bytes).into())
    }

    /// Lowercase hex.
    pub fn hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl std::fmt::Display for Digest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.hex())
    }
}

/// Feeds `Hash` output into sha256 so the engine hash is stable across runs.
struct Sha256Hasher(Sha256);

impl Hasher for Sha256Hasher {
    fn finish(&self) -> u64 {
        // Unused: the full digest is taken from the inner state.
        0
    }
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

/// Where compiled components live between runs.
#[derive(Debug, Clone)]
pub(crate) struct CompileCache {
    dir: PathBuf,
    engine_hash: String,
}

/// How a component was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CacheOutcome {
    /// Loaded from the cache.
    Hit,
    /// Compiled now (and stored if possible).
    Miss,
}

impl CompileCache {
    /// A cache in `dir` for components compiled by `engine`.
    pub(crate) fn new(dir: impl Into<PathBuf>, engine: &Engine) -> Self {
        let mut hasher = Sha256Hasher(Sha256::new());
        engine.precompile_compatibility_hash().hash(&mut hasher);
        let engine_hash = hex::encode(&hasher.0.finalize()[..8]);
        Self {
            dir: dir.into(),
            engine_hash,
        }
    }

    fn artifact(&self, digest: &Digest) -> PathBuf {
        self.dir
            .join(format!("{}-{}.cwasm", digest.hex(), self.engine_hash))
    }

    /// Loads a compiled component, or compiles `bytes` and stores the result.
    pub(crate) fn load_or_compile(
        &self,
        engine: &Engine,
        digest: &Digest,
        bytes: &[u8],
    ) -> wasmtime::Result<(Component, CacheOutcome)> {
        let path = self.artifact(digest);
        if let Some(component) = self.load(engine, &path) {
            return Ok((component, CacheOutcome::Hit));
        }
        let component = Component::new(engine, bytes)?;
        if let Err(e) = self.store(&path, &component) {
            tracing::warn!(path = %path.display(), error = %e, "cannot write strategy compile cache");
        }
        Ok((component, CacheOutcome::Miss))
    }

    fn load(&self, engine: &Engine, path: &Path) -> Option<Component> {
        let artifact = fs::read(path).ok()?;
        let expected = fs::read_to_string(checksum_path(path)).ok()?;
        if Digest::of(&artifact).hex() != expected.trim() {
            tracing::warn!(path = %path.display(), "compiled strategy failed its checksum; recompiling");
            self.evict(path);
            return None;
        }
        // SAFETY: the artifact was written by `store` from `Component::serialize`
        // of this engine configuration (the file name carries its compatibility
        // hash) and its checksum matches, so it is wasmtime's own output.
        match unsafe { Component::deserialize(engine, &artifact) } {
            Ok(component) => Some(component),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "cannot load compiled strategy; recompiling");
                self.evict(path);
                None
            }
        }
    }

    fn store(&self, path: &Path, component: &Component) -> std::io::Result<()> {
        let artifact = component.serialize().map_err(std::io::Error::other)?;
        fs::create_dir_all(&self.dir)?;
        write_atomically(&checksum_path(path), Digest::of(&artifact).hex().as_bytes())?;
        write_atomically(path, &artifact)
    }

    fn evict(&self, path: &Path) {
        let _ = fs::remove_file(path);
        let _ = fs::remove_file(checksum_path(path));
    }
}

fn checksum_path(path: &Path) -> PathBuf {
    path.with_extension("cwasm.sha256")
}

/// Writes to a temporary file in the same directory and renames it, so a
/// reader never sees half a file.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let mut file = fs::File::create(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    fs::rename(&tmp, path)
}
