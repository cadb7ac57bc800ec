//! Resolves the strategy a Role names: a built-in by name, or a custom
//! component fetched from a [`ComponentSource`] (a ConfigMap in the operator,
//! a file in the CLI).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::builtin;
use super::engine::{LoadError, StrategyEngine, WasmStrategy};
use crate::api::Reason;
pub use crate::api::update_strategy::{ComponentLocation, StrategySelector};

/// Why a component could not be fetched.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot fetch the strategy from {location}: {reason}")]
pub struct SourceError {
    /// What was asked for.
    pub location: ComponentLocation,
    /// What went wrong.
    pub reason: String,
}

/// Fetches component bytes. The operator implements it over ConfigMaps.
pub trait ComponentSource {
    /// The bytes at `location`.
    fn fetch(&self, location: &ComponentLocation) -> Result<Vec<u8>, SourceError>;
}

/// Reads components from local files.
#[derive(Debug, Clone, Copy, Default)]
pub struct FileSource;

impl ComponentSource for FileSource {
    fn fetch(&self, location: &ComponentLocation) -> Result<Vec<u8>, SourceError> {
        match location {
            ComponentLocation::File(path) => std::fs::read(path).map_err(|e| SourceError {
                location: location.clone(),
                reason: e.to_string(),
            }),
            other => Err(SourceError {
                location: other.clone(),
                reason: "only files can be read here".into(),
            }),
        }
    }
}

/// Why a strategy could not be resolved.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// No built-in has this name and no component location was given.
    #[error(
        "unknown strategy {name:?}; built-in strategies are {known}, or set configMapRef for a custom one"
    )]
    Unknown {
        /// The requested name.
        name: String,
        /// The built-in names, comma separated.
        known: String,
    },
    /// Fetching the component failed.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// The component failed to load.
    #[error("strategy {name:?}: {source}")]
    Load {
        /// The requested name.
        name: String,
        /// Why.
        source: LoadError,
    },
    /// The component calls itself something else than the Role asked for.
    #[error("the component at {location} describes itself as {found:?}, not {requested:?}")]
    NameMismatch {
        /// Where it came from.
        location: ComponentLocation,
        /// The requested name.
        requested: String,
        /// The name in its `describe()`.
        found: String,
    },
}

impl RegistryError {
    /// The label of metrics, and the reason of conditions and Events.
    pub fn reason(&self) -> Reason {
        match self {
            Self::Unknown { .. } => Reason::UnknownStrategy,
            Self::Source(_) => Reason::StrategySourceUnavailable,
            Self::Load { source, .. } => source.reason(),
            Self::NameMismatch { .. } => Reason::StrategyNameMismatch,
        }
    }
}

/// Resolves strategy selectors to loaded components.
pub struct Registry {
    engine: Arc<StrategyEngine>,
    /// Built-ins already loaded: a lookup by name, without hashing the
    /// embedded bytes again on every reconcile.
    builtins: Mutex<HashMap<&'static str, Arc<WasmStrategy>>>,
}

impl Registry {
    /// A registry loading through `engine`.
    pub fn new(engine: Arc<StrategyEngine>) -> Self {
        Self {
            engine,
            builtins: Mutex::default(),
        }
    }

    /// The engine components are loaded with.
    pub fn engine(&self) -> &Arc<StrategyEngine> {
        &self.engine
    }

    /// Names of the built-in strategies.
    pub fn builtin_names() -> impl Iterator<Item = &'static str> {
        builtin::BUILTINS.iter().map(|b| b.name)
    }

    /// A built-in by name.
    pub fn builtin(&self, name: &str) -> Result<Arc<WasmStrategy>, RegistryError> {
        let found = builtin::find(name).ok_or_else(|| RegistryError::Unknown {
            name: name.to_string(),
            known: Self::builtin_names().collect::<Vec<_>>().join(", "),
        })?;
        let mut builtins = self.builtins.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(loaded) = builtins.get(found.name) {
            return Ok(loaded.clone());
        }
        let loaded = self
            .engine
            .load(found.wasm, None)
            .map_err(|source| RegistryError::Load {
                name: name.to_string(),
                source,
            })?;
        builtins.insert(found.name, loaded.clone());
        Ok(loaded)
    }

    /// Resolves what a Role selects, fetching custom components from `source`.
    pub fn resolve(
        &self,
        selector: &StrategySelector,
        source: &dyn ComponentSource,
    ) -> Result<Arc<WasmStrategy>, RegistryError> {
        let Some(location) = &selector.location else {
            return self.builtin(&selector.name);
        };
        let bytes = source.fetch(location)?;
        let strategy = self
            .engine
            .load(&bytes, selector.sha256.as_deref())
            .map_err(|source| RegistryError::Load {
                name: selector.name.clone(),
                source,
            })?;
        if strategy.info().name != selector.name {
            return Err(RegistryError::NameMismatch {
                location: location.clone(),
                requested: selector.name.clone(),
                found: strategy.info().name.clone(),
            });
        }
        Ok(strategy)
    }
}
