//! Resolves the strategy a Role names: a built-in by name, or a custom
//! component fetched from a [`ComponentSource`] (a ConfigMap in the operator,
//! a file in the CLI).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::builtin;
use super::engine::{LoadError, StrategyEngine, WasmStrategy};
use super::validate::InvalidComponent;
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
    /// Custom strategies must be pinned by sha256 here, and this one is not.
    #[error(
        "strategy {name:?} from {location} is not pinned: this operator runs custom strategies \
         only with spec.updateStrategy.sha256 set (--require-strategy-sha256)"
    )]
    Unpinned {
        /// The requested name.
        name: String,
        /// Where it would come from.
        location: ComponentLocation,
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
            Self::Unpinned { .. } => Reason::StrategyNotPinned,
        }
    }
}

/// Resolves strategy selectors to loaded components.
pub struct Registry {
    engine: Arc<StrategyEngine>,
    /// Built-ins already loaded: a lookup by name, without hashing the
    /// embedded bytes again on every reconcile.
    builtins: Mutex<HashMap<&'static str, Arc<WasmStrategy>>>,
    /// Refuse custom components without a sha256 pin.
    require_pinned: bool,
}

impl Registry {
    /// A registry loading through `engine`.
    pub fn new(engine: Arc<StrategyEngine>) -> Self {
        Self {
            engine,
            builtins: Mutex::default(),
            require_pinned: false,
        }
    }

    /// Whether every custom strategy must be pinned by sha256 (the
    /// operator's `--require-strategy-sha256`): an unpinned one is refused
    /// before it is fetched.
    pub fn require_pinned(mut self, required: bool) -> Self {
        self.require_pinned = required;
        self
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
        self.check_pinned(selector)?;
        let bytes = source.fetch(location)?;
        let loaded = self.engine.load_named(
            &bytes,
            selector.sha256.as_deref(),
            Some(selector.name.as_str()),
        );
        let strategy = match loaded {
            Ok(strategy) => strategy,
            Err(LoadError::Invalid(InvalidComponent::NameMismatch { found, .. })) => {
                return Err(RegistryError::NameMismatch {
                    location: location.clone(),
                    requested: selector.name.clone(),
                    found,
                });
            }
            Err(source) => {
                return Err(RegistryError::Load {
                    name: selector.name.clone(),
                    source,
                });
            }
        };
        if strategy.info().name != selector.name {
            return Err(RegistryError::NameMismatch {
                location: location.clone(),
                requested: selector.name.clone(),
                found: strategy.info().name.clone(),
            });
        }
        Ok(strategy)
    }

    /// Refuses an unpinned custom strategy when pins are required; cheap,
    /// so callers may ask before fetching anything.
    pub fn check_pinned(&self, selector: &StrategySelector) -> Result<(), RegistryError> {
        match &selector.location {
            Some(location) if self.require_pinned && selector.sha256.is_none() => {
                Err(RegistryError::Unpinned {
                    name: selector.name.clone(),
                    location: location.clone(),
                })
            }
            _ => Ok(()),
        }
    }
}
