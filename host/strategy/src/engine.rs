//! The wasm engine: validates, compiles (once per content digest, cached on
//! disk) and runs strategy components, each call in a fresh sandboxed store.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use strategy_sdk::{Decision, Info, LogLevel, PANIC_LOG_PREFIX, RoleView};
use wasmtime::component::{Component, Linker};
use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, OptLevel, PoolingAllocationConfig, Store, Trap,
};

use super::boundary::{self, UpdateStrategy, UpdateStrategyPre};
use super::cache::{CacheOutcome, CompileCache, Digest};
use super::planner::{PlanError, Planner};
use super::sandbox::{CallLog, EpochTicker, HostState, SandboxLimits, deadline_ticks};
use super::validate::{self, InvalidComponent};
use super::wasi_stub::{self, DeniedCall};
use crate::api::Reason;

/// Compiled components kept in memory; the oldest is dropped beyond this.
const MAX_LOADED: usize = 64;

/// Bytes of each pooled memory kept resident between calls (only the dirty
/// pages are reset, when the kernel can tell which those are).
const KEEP_RESIDENT_BYTES: usize = 4 << 20;
/// The same for tables.
const KEEP_RESIDENT_TABLE_BYTES: usize = 64 << 10;

/// How instances get their memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Allocator {
    /// Pre-reserved slots: fast instantiation, bounded concurrency.
    Pooling,
    /// Allocation per instance: the fallback where reserving the pool fails.
    OnDemand,
}

/// Why the engine could not be created.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// wasmtime refused the configuration.
    #[error("cannot configure the wasm engine: {0}")]
    Config(String),
    /// The epoch thread could not start.
    #[error("cannot start the strategy deadline thread: {0}")]
    Ticker(#[from] std::io::Error),
}

/// Why a component could not be loaded.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LoadError {
    /// Refused before compiling.
    #[error(transparent)]
    Invalid(#[from] InvalidComponent),
    /// Its sha256 is not the pinned one.
    #[error("component sha256 is {actual}, but {expected} is pinned")]
    DigestMismatch {
        /// The pinned digest.
        expected: String,
        /// The digest of the bytes.
        actual: String,
    },
    /// wasmtime could not compile it.
    #[error("cannot compile the component: {0}")]
    Compile(String),
    /// Its imports do not match what the host provides.
    #[error("cannot link the component: {0}")]
    Link(String),
    /// `describe` failed.
    #[error("describe() failed: {0}")]
    Describe(PlanError),
    /// `describe` returned something unusable.
    #[error("describe() returned an invalid name {0:?}")]
    BadInfo(String),
}

impl LoadError {
    /// The label of metrics, and the reason of conditions and Events.
    pub fn reason(&self) -> Reason {
        match self {
            Self::Invalid(_) => Reason::InvalidComponent,
            Self::DigestMismatch { .. } => Reason::DigestMismatch,
            Self::Compile(_) => Reason::CompileFailed,
            Self::Link(_) => Reason::LinkFailed,
            Self::Describe(_) | Self::BadInfo(_) => Reason::DescribeFailed,
        }
    }
}

/// Runs strategy components in a sandbox.
pub struct StrategyEngine {
    engine: Engine,
    allocator: Allocator,
    linker: Linker<HostState>,
    limits: Arc<SandboxLimits>,
    cache: Option<CompileCache>,
    loaded: Mutex<Loaded>,
    fresh_loads: AtomicUsize,
    ticker: Arc<EpochTicker>,
}

#[derive(Default)]
struct Loaded {
    by_digest: HashMap<Digest, Arc<WasmStrategy>>,
    order: VecDeque<Digest>,
    /// Components that failed to load, so a bad ConfigMap is not validated,
    /// compiled and described again on every reconcile.
    failed: HashMap<Digest, LoadError>,
    failed_order: VecDeque<Digest>,
}

impl Loaded {
    fn remember(&mut self, digest: Digest, strategy: &Arc<WasmStrategy>) {
        if self.by_digest.insert(digest, strategy.clone()).is_none() {
            self.order.push_back(digest);
        }
        while self.order.len() > MAX_LOADED {
            if let Some(old) = self.order.pop_front() {
                self.by_digest.remove(&old);
            }
        }
    }

    fn remember_failure(&mut self, digest: Digest, error: &LoadError) {
        if self.failed.insert(digest, error.clone()).is_none() {
            self.failed_order.push_back(digest);
        }
        while self.failed_order.len() > MAX_LOADED {
            if let Some(old) = self.failed_order.pop_front() {
                self.failed.remove(&old);
            }
        }
    }
}

impl StrategyEngine {
    /// An engine with `limits`, caching compiled components in `cache_dir`
    /// when given. Tries the pooling allocator first and falls back to
    /// on-demand allocation where the pool cannot be reserved.
    pub fn new(limits: SandboxLimits, cache_dir: Option<PathBuf>) -> Result<Self, EngineError> {
        let (engine, allocator) = match Engine::new(&config(&limits, Allocator::Pooling)) {
            Ok(engine) => (engine, Allocator::Pooling),
            Err(e) => {
                tracing::info!(error = %e, "pooling allocator unavailable; using on-demand allocation");
                let engine = Engine::new(&config(&limits, Allocator::OnDemand))
                    .map_err(|e| EngineError::Config(format!("{e:#}")))?;
                (engine, Allocator::OnDemand)
            }
        };
        Self::with_engine(engine, allocator, limits, cache_dir)
    }

    /// Like [`StrategyEngine::new`] but with a chosen allocator (for tests and
    /// benchmarks that compare the two).
    pub fn with_allocator(
        limits: SandboxLimits,
        cache_dir: Option<PathBuf>,
        allocator: Allocator,
    ) -> Result<Self, EngineError> {
        let engine = Engine::new(&config(&limits, allocator))
            .map_err(|e| EngineError::Config(format!("{e:#}")))?;
        Self::with_engine(engine, allocator, limits, cache_dir)
    }

    fn with_engine(
        engine: Engine,
        allocator: Allocator,
        limits: SandboxLimits,
        cache_dir: Option<PathBuf>,
    ) -> Result<Self, EngineError> {
        let mut linker = Linker::new(&engine);
        UpdateStrategy::add_to_linker::<HostState, wasmtime::component::HasSelf<HostState>>(
            &mut linker,
            |state| state,
        )
        .map_err(|e| EngineError::Config(format!("{e:#}")))?;
        let ticker = Arc::new(EpochTicker::start(engine.weak())?);
        let cache = cache_dir.map(|dir| CompileCache::new(dir, &engine));
        Ok(Self {
            engine,
            allocator,
            linker,
            limits: Arc::new(limits),
            cache,
            loaded: Mutex::default(),
            fresh_loads: AtomicUsize::new(0),
            ticker,
        })
    }

    /// The allocator in use.
    pub fn allocator(&self) -> Allocator {
        self.allocator
    }

    /// The limits every call runs under.
    pub fn limits(&self) -> &SandboxLimits {
        &self.limits
    }

    /// Loads a component, optionally checking it against a pinned sha256.
    /// Components are compiled once per digest; later loads are a map lookup.
    pub fn load(
        &self,
        bytes: &[u8],
        pinned_sha256: Option<&str>,
    ) -> Result<Arc<WasmStrategy>, LoadError> {
        let digest = Digest::of(bytes);
        if let Some(expected) = pinned_sha256 {
            let expected = expected.trim().to_ascii_lowercase();
            if expected != digest.hex() {
                return Err(LoadError::DigestMismatch {
                    expected,
                    actual: digest.hex(),
                });
            }
        }
        {
            let loaded = self.lock_loaded();
            if let Some(strategy) = loaded.by_digest.get(&digest) {
                return Ok(strategy.clone());
            }
            if let Some(error) = loaded.failed.get(&digest) {
                return Err(error.clone());
            }
        }
        match self.load_new(digest, bytes) {
            Ok(strategy) => {
                self.lock_loaded().remember(digest, &strategy);
                Ok(strategy)
            }
            Err(error) => {
                self.lock_loaded().remember_failure(digest, &error);
                Err(error)
            }
        }
    }

    /// Loads that had to validate and compile (or read the disk cache), as
    /// opposed to answers from memory, for success and failure alike.
    pub fn fresh_loads(&self) -> usize {
        self.fresh_loads.load(Ordering::Relaxed)
    }

    fn load_new(&self, digest: Digest, bytes: &[u8]) -> Result<Arc<WasmStrategy>, LoadError> {
        self.fresh_loads.fetch_add(1, Ordering::Relaxed);
        let shape = validate::validate(bytes, self.limits.max_component_bytes)?;
        let (component, outcome) = self.compile(&digest, bytes)?;
        let mut linker = self.linker.clone();
        wasi_stub::define(&mut linker, &component, &self.engine)
            .map_err(|e| LoadError::Link(format!("{e:#}")))?;
        let pre = linker
            .instantiate_pre(&component)
            .and_then(UpdateStrategyPre::new)
            .map_err(|e| LoadError::Link(format!("{e:#}")))?;
        let mut strategy = WasmStrategy {
            digest,
            wit_version: shape.version,
            info: Info::default(),
            pre,
            engine: self.engine.clone(),
            limits: self.limits.clone(),
            _ticker: self.ticker.clone(),
        };
        strategy.info = strategy.describe().map_err(LoadError::Describe)?;
        if !valid_name(&strategy.info.name) {
            return Err(LoadError::BadInfo(strategy.info.name));
        }
        tracing::debug!(
            strategy = %strategy.info.name,
            digest = %digest,
            cache = ?outcome,
            "loaded strategy component"
        );
        Ok(Arc::new(strategy))
    }

    fn compile(
        &self,
        digest: &Digest,
        bytes: &[u8],
    ) -> Result<(Component, CacheOutcome), LoadError> {
        let compiled = match &self.cache {
            Some(cache) => cache.load_or_compile(&self.engine, digest, bytes),
            None => Component::new(&self.engine, bytes).map(|c| (c, CacheOutcome::Miss)),
        };
        compiled.map_err(|e| LoadError::Compile(format!("{e:#}")))
    }

    fn lock_loaded(&self) -> std::sync::MutexGuard<'_, Loaded> {
        // A panic while holding the lock leaves the map consistent (inserts
        // are single operations), so a poisoned lock is still usable.
        self.loaded.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
}

fn config(limits: &SandboxLimits, allocator: Allocator) -> Config {
    let mut config = Config::new();
    config
        .wasm_component_model(true)
        .epoch_interruption(true)
        .max_wasm_stack(limits.max_wasm_stack)
        .cranelift_opt_level(OptLevel::Speed)
        .parallel_compilation(true);
    if allocator == Allocator::Pooling {
        let slots = limits.max_concurrent_calls;
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(slots)
            .total_core_instances(slots * limits.max_instances as u32)
            .max_core_instances_per_component(limits.max_instances as u32)
            .total_memories(slots * limits.max_memories as u32)
            .max_memories_per_component(limits.max_memories as u32)
            .total_tables(slots * limits.max_tables as u32)
            .max_tables_per_component(limits.max_tables as u32)
            .table_elements(limits.max_table_elements)
            .max_memory_size(limits.max_memory_bytes)
            // A fresh instance per call would fault in every page it touches
            // again. Where the kernel has PAGEMAP_SCAN (Linux 6.7+), reset
            // just the dirtied pages in place and keep them resident instead.
            .pagemap_scan(wasmtime::Enabled::Auto)
            .linear_memory_keep_resident(KEEP_RESIDENT_BYTES)
            .table_keep_resident(KEEP_RESIDENT_TABLE_BYTES);
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    }
    config
}

/// A loaded, ready-to-run strategy component.
pub struct WasmStrategy {
    digest: Digest,
    wit_version: String,
    info: Info,
    pre: UpdateStrategyPre<HostState>,
    engine: Engine,
    limits: Arc<SandboxLimits>,
    // Keeps deadlines enforced for as long as this strategy can be called.
    _ticker: Arc<EpochTicker>,
}

impl std::fmt::Debug for WasmStrategy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WasmStrategy")
            .field("name", &self.info.name)
            .field("digest", &self.digest.hex())
            .finish_non_exhaustive()
    }
}

impl WasmStrategy {
    /// What the component says about itself.
    pub fn info(&self) -> &Info {
        &self.info
    }

    /// sha256 of the component's bytes.
    pub fn digest(&self) -> &Digest {
        &self.digest
    }

    /// The WIT version it was built against.
    pub fn wit_version(&self) -> &str {
        &self.wit_version
    }

    /// Calls `plan` and returns the decision with what the strategy logged.
    pub fn plan_with_log(&self, view: &RoleView) -> Result<(Decision, CallLog), PlanError> {
        let wit_view = boundary::view_to_wit(view);
        let (answer, log) = self.call(|store, instance| {
            instance
                .tarantool_strategy_planner()
                .call_plan(store, &wit_view)
        })?;
        let decision = answer.map_err(PlanError::Rejected)?;
        self.check_size(&decision)?;
        Ok((boundary::decision_from_wit(decision, view), log))
    }

    /// Creates a store and an instance and drops them: the fixed part of
    /// every call. For benchmarks.
    #[doc(hidden)]
    pub fn probe_instantiate(&self) -> Result<(), PlanError> {
        self.call(|_, _| Ok(())).map(|_| ())
    }

    fn describe(&self) -> Result<Info, PlanError> {
        let (info, _) = self
            .call(|store, instance| instance.tarantool_strategy_planner().call_describe(store))?;
        Ok(boundary::info_from_wit(info))
    }

    /// Runs `f` on a fresh instance in a fresh store: no state survives a call
    /// and a trapped instance is simply dropped.
    fn call<R>(
        &self,
        f: impl FnOnce(&mut Store<HostState>, &UpdateStrategy) -> wasmtime::Result<R>,
    ) -> Result<(R, CallLog), PlanError> {
        let mut store = Store::new(&self.engine, HostState::new(&self.limits));
        store.limiter(|state| &mut state.limits);
        store.set_epoch_deadline(deadline_ticks(self.limits.deadline));
        store.epoch_deadline_trap();
        let instance = self
            .pre
            .instantiate(&mut store)
            .map_err(|e| PlanError::Instantiate(format!("{e:#}")))?;
        let result = f(&mut store, &instance);
        let log = std::mem::take(&mut store.data_mut().log);
        for (level, line) in &log.lines {
            emit(&self.info.name, *level, line);
        }
        match result {
            Ok(r) => Ok((r, log)),
            Err(e) => Err(self.classify(e, &log)),
        }
    }

    fn classify(&self, error: wasmtime::Error, log: &CallLog) -> PlanError {
        if let Some(denied) = error.downcast_ref::<DeniedCall>() {
            return PlanError::Denied(denied.to_string());
        }
        match error.downcast_ref::<Trap>() {
            Some(Trap::Interrupt) => PlanError::Deadline(self.limits.deadline),
            Some(Trap::StackOverflow) => PlanError::StackOverflow,
            Some(Trap::UnreachableCodeReached) => {
                let panic = log.lines.iter().rev().find_map(|(level, line)| {
                    (*level == LogLevel::Error)
                        .then(|| line.strip_prefix(PANIC_LOG_PREFIX))
                        .flatten()
                });
                match panic {
                    Some(message) => PlanError::Panicked(message.to_string()),
                    None => PlanError::Trap("unreachable instruction (abort)".into()),
                }
            }
            Some(trap) => PlanError::Trap(trap.to_string()),
            None if format!("{error:#}").contains("growing memory") => PlanError::MemoryLimit {
                limit: self.limits.max_memory_bytes,
            },
            None => PlanError::Trap(format!("{error:#}")),
        }
    }

    fn check_size(
        &self,
        d: &boundary::tarantool::strategy::types::Decision,
    ) -> Result<(), PlanError> {
        let checks = [
            ("message", d.message.len(), self.limits.max_message_bytes),
            (
                "state",
                d.state.as_ref().map_or(0, String::len),
                self.limits.max_state_bytes,
            ),
            ("actions", d.actions.len(), self.limits.max_actions),
        ];
        for (what, size, max) in checks {
            if size > max {
                return Err(PlanError::OutputTooLarge { what, size, max });
            }
        }
        Ok(())
    }
}

impl Planner for WasmStrategy {
    fn plan(&self, view: &RoleView) -> Result<Decision, PlanError> {
        self.plan_with_log(view).map(|(decision, _)| decision)
    }
}

fn emit(strategy: &str, level: LogLevel, line: &str) {
    match level {
        LogLevel::Trace => tracing::trace!(strategy, "{line}"),
        LogLevel::Debug => tracing::debug!(strategy, "{line}"),
        LogLevel::Info => tracing::info!(strategy, "{line}"),
        LogLevel::Warn => tracing::warn!(strategy, "{line}"),
        LogLevel::Error => tracing::error!(strategy, "{line}"),
    }
}

impl boundary::tarantool::strategy::types::Host for HostState {}

impl boundary::tarantool::strategy::log::Host for HostState {
    fn log(&mut self, level: boundary::tarantool::strategy::types::LogLevel, message: String) {
        self.record_log(boundary::log_level_from_wit(level), message);
    }
}
