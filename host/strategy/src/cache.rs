//! On-disk cache of compiled strategies, keyed by the component's sha256 and
//! the engine's compatibility hash (wasmtime version, target, settings).
//!
//! A compiled artifact is native code that wasmtime maps and runs without
//! re-validating, so the cache only trusts files it wrote itself: each entry
//! carries a sha256 of its artifact, and anything that fails to verify or to
//! deserialize is a miss (removed, then recompiled).
//!
//! The directory has a byte budget (the chart gives `/tmp` 256 MiB): after
//! each store, the least recently used artifacts (by modification time,
//! which a hit refreshes) are removed until the rest fits.

use std::fs;
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

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
    max_bytes: u64,
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
    /// A cache in `dir` for components compiled by `engine`, holding at
    /// most `max_bytes` of artifacts.
    pub(crate) fn new(dir: impl Into<PathBuf>, engine: &Engine, max_bytes: u64) -> Self {
        let mut hasher = Sha256Hasher(Sha256::new());
        engine.precompile_compatibility_hash().hash(&mut hasher);
        let engine_hash = hex::encode(&hasher.0.finalize()[..8]);
        Self {
            dir: dir.into(),
            engine_hash,
            max_bytes,
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
            // Recently used: the last to be trimmed.
            let _ = fs::File::options()
                .append(true)
                .open(&path)
                .and_then(|f| f.set_modified(SystemTime::now()));
            return Ok((component, CacheOutcome::Hit));
        }
        let component = Component::new(engine, bytes)?;
        if let Err(e) = self.store(&path, &component) {
            tracing::warn!(path = %path.display(), error = %e, "cannot write strategy compile cache");
        }
        if let Err(e) = self.trim() {
            tracing::warn!(dir = %self.dir.display(), error = %e, "cannot trim strategy compile cache");
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

    /// Removes the least recently used artifacts beyond the byte budget.
    pub(crate) fn trim(&self) -> std::io::Result<()> {
        let mut artifacts = Vec::new();
        for entry in fs::read_dir(&self.dir)? {
            let entry = entry?;
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "cwasm") {
                let meta = entry.metadata()?;
                let used = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
                artifacts.push((used, meta.len(), path));
            }
        }
        let mut total: u64 = artifacts.iter().map(|(_, len, _)| len).sum();
        artifacts.sort();
        for (_, len, path) in artifacts {
            if total <= self.max_bytes {
                break;
            }
            tracing::debug!(path = %path.display(), "strategy compile cache over its budget; removing");
            self.evict(&path);
            total = total.saturating_sub(len);
        }
        Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    fn cache(dir: &Path, max_bytes: u64) -> CompileCache {
        CompileCache {
            dir: dir.to_path_buf(),
            engine_hash: "e".into(),
            max_bytes,
        }
    }

    #[test]
    fn trim_removes_the_least_recently_used_beyond_the_budget() {
        let dir = tempfile::tempdir().expect("tempdir");
        let old = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000);
        // (name, size, seconds after `old` it was last used)
        let files = [("a", 400, 3), ("b", 400, 1), ("c", 400, 2)];
        for (name, size, used) in files {
            let path = dir.path().join(format!("{name}.cwasm"));
            fs::write(&path, vec![0u8; size]).expect("write");
            fs::write(checksum_path(&path), "x").expect("write");
            let when = old + std::time::Duration::from_secs(used);
            fs::File::options()
                .append(true)
                .open(&path)
                .and_then(|f| f.set_modified(when))
                .expect("set mtime");
        }
        cache(dir.path(), 900).trim().expect("trim");
        let mut left: Vec<String> = fs::read_dir(dir.path())
            .expect("read")
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .collect();
        left.sort();
        // b was the least recently used: it goes, with its checksum.
        assert_eq!(
            left,
            ["a.cwasm", "a.cwasm.sha256", "c.cwasm", "c.cwasm.sha256"]
        );
    }
}
