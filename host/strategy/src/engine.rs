//! The wasm engine: validates, compiles (once per content digest, on a small
//! bounded pool, cached on disk) and runs strategy components, each call in
//! a fresh sandboxed store, in a fairly shared call slot, on a CPU budget.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, mpsc};
use std::time::Duration;

use strategy_sdk::{Decision, Info, LogLevel, PANIC_LOG_PREFIX, RoleView};
use wasmtime::component::{Component, Linker};
use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, OptLevel, PoolingAllocationConfig, Store, Trap,
    UpdateDeadline,
};

use super::boundary::{self, UpdateStrategy, UpdateStrategyPre};
use super::builtin;
use super::cache::{CacheOutcome, CompileCache, Digest};
use super::planner::{PlanError, Planner};
use super::sandbox::{
    CallClock, CallLog, CallSlots, Caller, EpochTicker, HostState, OutOfTime, OverBudget,
    SandboxLimits,
};
use super::validate::{self, ComponentShape, InvalidComponent};
use super::wasi_stub::{self, DeniedCall};
use crate::api::Reason;

/// Compiled components kept in memory at most, whatever their size (the
/// byte budget is [`SandboxLimits::max_loaded_bytes`]); also the number of
/// remembered failures.
const MAX_LOADED: usize = 64;

/// Loads that may hash and check their bytes at the same time.
const CHECK_THREADS: usize = 2;

/// Stack of the compile threads: cranelift recurses deeper than the 2 MiB
/// of runtime threads allow.
const COMPILE_STACK: usize = 16 << 20;

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
    /// The compile threads could not start.
    #[error("cannot start the strategy compile threads: {0}")]
    CompileThreads(std::io::Error),
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
    /// Compiling took longer than the budget.
    #[error("compiling the component took longer than {0:?}; it was abandoned")]
    CompileBudget(Duration),
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
            Self::Compile(_) | Self::CompileBudget(_) => Reason::CompileFailed,
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
    cache: Option<Arc<CompileCache>>,
    loaded: Mutex<Loaded>,
    /// Loads under way, by digest: a second load of the same bytes waits
    /// for the first instead of compiling again.
    inflight: Mutex<HashMap<Digest, Arc<Inflight>>>,
    compiler: CompilePool,
    /// Bounds the loads that hash and check bytes at once: a hundred Roles
    /// with new components must not make a hundred threads busy (the async
    /// runtime's workers would get a hundredth of the CPU).
    checks: Gate,
    slots: Arc<CallSlots>,
    fresh_loads: AtomicUsize,
    ticker: Arc<EpochTicker>,
}

#[derive(Default)]
struct Loaded {
    by_digest: HashMap<Digest, Arc<WasmStrategy>>,
    /// Least recently used first.
    order: VecDeque<Digest>,
    /// Bytes of native code of the components in `by_digest`.
    bytes: usize,
    /// Components that failed to load, so a bad ConfigMap is not validated,
    /// compiled and described again on every reconcile.
    failed: HashMap<Digest, LoadError>,
    failed_order: VecDeque<Digest>,
}

impl Loaded {
    fn get(&mut self, digest: &Digest) -> Option<Arc<WasmStrategy>> {
        let strategy = self.by_digest.get(digest)?.clone();
        if let Some(at) = self.order.iter().position(|d| d == digest) {
            self.order.remove(at);
            self.order.push_back(*digest);
        }
        Some(strategy)
    }

    /// Keeps `strategy`, dropping the least recently used beyond the count
    /// and the byte budget (never the one just added: a component over the
    /// budget alone still runs, it just is not kept beside others).
    fn remember(&mut self, digest: Digest, strategy: &Arc<WasmStrategy>, max_bytes: usize) {
        if self.by_digest.insert(digest, strategy.clone()).is_none() {
            self.order.push_back(digest);
            self.bytes += strategy.code_bytes;
        }
        while self.order.len() > MAX_LOADED || (self.bytes > max_bytes && self.order.len() > 1) {
            let Some(old) = self.order.pop_front() else {
                break;
            };
            if let Some(gone) = self.by_digest.remove(&old) {
                self.bytes = self.bytes.saturating_sub(gone.code_bytes);
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

/// A load under way; others asking for the same digest wait on it.
#[derive(Default)]
struct Inflight {
    done: Mutex<Option<Result<Arc<WasmStrategy>, LoadError>>>,
    ready: Condvar,
}

impl Inflight {
    fn finish(&self, result: Result<Arc<WasmStrategy>, LoadError>) {
        *self.done.lock().unwrap_or_else(|e| e.into_inner()) = Some(result);
        self.ready.notify_all();
    }

    fn wait(&self) -> Result<Arc<WasmStrategy>, LoadError> {
        let mut done = self.done.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(result) = done.as_ref() {
                return result.clone();
            }
            done = self.ready.wait(done).unwrap_or_else(|e| e.into_inner());
        }
    }
}

/// Finishes an [`Inflight`] even when the leader panics, so that waiters
/// never hang.
struct Leader<'a> {
    engine: &'a StrategyEngine,
    digest: Digest,
    inflight: Arc<Inflight>,
}

impl Drop for Leader<'_> {
    fn drop(&mut self) {
        let mut inflight = self.engine.lock_inflight();
        inflight.remove(&self.digest);
        drop(inflight);
        let unfinished = self
            .inflight
            .done
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_none();
        if unfinished {
            self.inflight
                .finish(Err(LoadError::Compile("the load was interrupted".into())));
        }
    }
}

/// A counting semaphore: at most `permits` holders at once, the rest wait
/// (blocked, using no CPU).
struct Gate {
    free: Mutex<usize>,
    opened: Condvar,
}

/// A held permit of a [`Gate`].
struct Permit<'a>(&'a Gate);

impl Gate {
    fn new(permits: usize) -> Self {
        Self {
            free: Mutex::new(permits.max(1)),
            opened: Condvar::new(),
        }
    }

    fn enter(&self) -> Permit<'_> {
        let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
        while *free == 0 {
            free = self.opened.wait(free).unwrap_or_else(|e| e.into_inner());
        }
        *free -= 1;
        Permit(self)
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        *self.0.free.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        self.0.opened.notify_one();
    }
}

type Job = Box<dyn FnOnce() + Send>;

/// A fixed number of compile threads fed by a queue: compiles never use more
/// than that many cores, however many Roles load at once.
struct CompilePool {
    jobs: Mutex<mpsc::Sender<Job>>,
}

impl CompilePool {
    fn start(threads: usize) -> std::io::Result<Self> {
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..threads.max(1) {
            let rx = rx.clone();
            std::thread::Builder::new()
                .name(format!("strategy-compile-{i}"))
                .stack_size(COMPILE_STACK)
                .spawn(move || {
                    loop {
                        let job = rx.lock().unwrap_or_else(|e| e.into_inner()).recv();
                        match job {
                            Ok(job) => job(),
                            // The engine is gone.
                            Err(_) => break,
                        }
                    }
                })?;
        }
        Ok(Self {
            jobs: Mutex::new(tx),
        })
    }

    /// Runs `compile` on the pool; waits for it to start, then at most
    /// `budget` for it to finish. An abandoned compile runs to its end on
    /// its thread (cranelift cannot be interrupted) and keeps that thread,
    /// so the pool stays the bound on compiling cores.
    fn run<T: Send + 'static>(
        &self,
        budget: Duration,
        compile: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, LoadError> {
        let (started_tx, started_rx) = mpsc::channel::<()>();
        let (done_tx, done_rx) = mpsc::channel::<T>();
        let job: Job = Box::new(move || {
            let _ = started_tx.send(());
            let _ = done_tx.send(compile());
        });
        let sent = self
            .jobs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .send(job);
        let lost = || LoadError::Compile("the compile thread stopped".into());
        sent.map_err(|_| lost())?;
        started_rx.recv().map_err(|_| lost())?;
        match done_rx.recv_timeout(budget) {
            Ok(compiled) => Ok(compiled),
            Err(mpsc::RecvTimeoutError::Timeout) => Err(LoadError::CompileBudget(budget)),
            Err(mpsc::RecvTimeoutError::Disconnected) => Err(lost()),
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
        let cache = cache_dir
            .map(|dir| Arc::new(CompileCache::new(dir, &engine, limits.max_cache_disk_bytes)));
        let compiler =
            CompilePool::start(limits.compile_threads).map_err(EngineError::CompileThreads)?;
        Ok(Self {
            engine,
            allocator,
            linker,
            slots: Arc::new(CallSlots::new(&limits)),
            limits: Arc::new(limits),
            cache,
            loaded: Mutex::default(),
            inflight: Mutex::default(),
            compiler,
            checks: Gate::new(CHECK_THREADS),
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
        self.load_named(bytes, pinned_sha256, None)
    }

    /// Like [`StrategyEngine::load`], refusing before compiling a component
    /// whose name section names another strategy than `expected_name`.
    /// Concurrent loads of the same bytes compile once: the later ones wait
    /// for the first.
    pub fn load_named(
        &self,
        bytes: &[u8],
        pinned_sha256: Option<&str>,
        expected_name: Option<&str>,
    ) -> Result<Arc<WasmStrategy>, LoadError> {
        let check = self.checks.enter();
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
            let mut loaded = self.lock_loaded();
            if let Some(strategy) = loaded.get(&digest) {
                check_name(&strategy.info.name, expected_name)?;
                return Ok(strategy);
            }
            if let Some(error) = loaded.failed.get(&digest) {
                return Err(error.clone());
            }
        }
        // Join a load of the same bytes under way, or lead one.
        let (inflight, leader) = {
            let mut inflight = self.lock_inflight();
            match inflight.get(&digest) {
                Some(running) => (running.clone(), false),
                None => {
                    let running = Arc::new(Inflight::default());
                    inflight.insert(digest, running.clone());
                    (running, true)
                }
            }
        };
        if !leader {
            drop(check);
            return match inflight.wait() {
                // The leader asked for another name: that says nothing
                // about this load's, so it loads again (and leads or joins
                // a load of its own).
                Err(LoadError::Invalid(InvalidComponent::NameMismatch { .. })) => {
                    self.load_named(bytes, pinned_sha256, expected_name)
                }
                Err(error) => Err(error),
                Ok(strategy) => {
                    check_name(&strategy.info.name, expected_name)?;
                    Ok(strategy)
                }
            };
        }
        let leader = Leader {
            engine: self,
            digest,
            inflight,
        };
        let result = self.load_new(digest, bytes, expected_name, check);
        match &result {
            Ok(strategy) => {
                self.lock_loaded()
                    .remember(digest, strategy, self.limits.max_loaded_bytes);
            }
            // A name that does not match says nothing about the bytes: a
            // Role asking for the right name may load them.
            Err(LoadError::Invalid(InvalidComponent::NameMismatch { .. })) => {}
            Err(error) => self.lock_loaded().remember_failure(digest, error),
        }
        leader.inflight.finish(result.clone());
        drop(leader);
        result
    }

    /// Loads that had to validate and compile (or read the disk cache), as
    /// opposed to answers from memory, for success and failure alike.
    pub fn fresh_loads(&self) -> usize {
        self.fresh_loads.load(Ordering::Relaxed)
    }

    fn load_new(
        &self,
        digest: Digest,
        bytes: &[u8],
        expected_name: Option<&str>,
        check: Permit<'_>,
    ) -> Result<Arc<WasmStrategy>, LoadError> {
        self.fresh_loads.fetch_add(1, Ordering::Relaxed);
        let shape: ComponentShape =
            validate::validate(bytes, self.limits.max_component_bytes, &self.limits.shape)?;
        // Checked: the compile waits on the pool, not on this gate.
        drop(check);
        if let (Some(found), Some(requested)) = (&shape.census.name, expected_name)
            && found != requested
        {
            return Err(InvalidComponent::NameMismatch {
                requested: requested.to_string(),
                found: boundary::clean(found, boundary::MAX_SHORT_BYTES, boundary::Lines::One),
            }
            .into());
        }
        let (component, outcome) = self.compile(&digest, bytes)?;
        let code_bytes = {
            let image = component.image_range();
            (image.end as usize).saturating_sub(image.start as usize)
        };
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
            slots: self.slots.clone(),
            builtin: builtin::is_builtin(&digest),
            code_bytes: code_bytes + bytes.len(),
            _ticker: self.ticker.clone(),
        };
        strategy.info = strategy.describe().map_err(LoadError::Describe)?;
        if !valid_name(&strategy.info.name) {
            return Err(LoadError::BadInfo(strategy.info.name));
        }
        if let Some(declared) = &shape.census.name
            && declared != &strategy.info.name
        {
            return Err(LoadError::BadInfo(format!(
                "{} (its name section says {})",
                strategy.info.name,
                boundary::clean(declared, boundary::MAX_SHORT_BYTES, boundary::Lines::One)
            )));
        }
        tracing::debug!(
            strategy = %strategy.info.name,
            digest = %digest,
            cache = ?outcome,
            "loaded strategy component"
        );
        Ok(Arc::new(strategy))
    }

    /// Compiles on the pool (or reads the disk cache there: deserializing
    /// is cheap, but a miss compiles).
    fn compile(
        &self,
        digest: &Digest,
        bytes: &[u8],
    ) -> Result<(Component, CacheOutcome), LoadError> {
        let (engine, cache, digest) = (self.engine.clone(), self.cache.clone(), *digest);
        let bytes = bytes.to_vec();
        let compiled = self
            .compiler
            .run(self.limits.compile_budget, move || match cache {
                Some(cache) => cache.load_or_compile(&engine, &digest, &bytes),
                None => Component::new(&engine, &bytes).map(|c| (c, CacheOutcome::Miss)),
            })?;
        compiled.map_err(|e| LoadError::Compile(format!("{e:#}")))
    }

    fn lock_loaded(&self) -> std::sync::MutexGuard<'_, Loaded> {
        // A panic while holding the lock leaves the map consistent (inserts
        // are single operations), so a poisoned lock is still usable.
        self.loaded.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn lock_inflight(&self) -> std::sync::MutexGuard<'_, HashMap<Digest, Arc<Inflight>>> {
        // As above: single inserts and removes.
        self.inflight.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A loaded strategy's name against the one asked for.
fn check_name(found: &str, expected: Option<&str>) -> Result<(), LoadError> {
    match expected {
        Some(requested) if requested != found => Err(InvalidComponent::NameMismatch {
            requested: requested.to_string(),
            found: found.to_string(),
        }
        .into()),
        _ => Ok(()),
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
        // One compile, one core: the compile pool's size is the bound.
        .parallel_compilation(false);
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
    slots: Arc<CallSlots>,
    /// One of the embedded built-ins (by digest): may use the reserved slots.
    builtin: bool,
    /// Native code and original bytes: what keeping it in memory costs.
    code_bytes: usize,
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
        self.plan_as(Caller::Anonymous, view)
    }

    /// Like [`WasmStrategy::plan_with_log`], in a call slot counted for
    /// `caller`: a Role's calls take at most its share of the pool.
    pub fn plan_as(
        &self,
        caller: Caller<'_>,
        view: &RoleView,
    ) -> Result<(Decision, CallLog), PlanError> {
        let wit_view = boundary::view_to_wit(view);
        let (answer, log) = self.call(caller, |store, instance| {
            instance
                .tarantool_strategy_planner()
                .call_plan(store, &wit_view)
        })?;
        let decision =
            answer.map_err(|error| PlanError::Rejected(boundary::error_from_wit(&error)))?;
        self.check_size(&decision)?;
        Ok((
            boundary::decision_from_wit(decision, view, self.limits.max_message_bytes),
            log,
        ))
    }

    /// Creates a store and an instance and drops them: the fixed part of
    /// every call. For benchmarks.
    #[doc(hidden)]
    pub fn probe_instantiate(&self) -> Result<(), PlanError> {
        self.call(Caller::Anonymous, |_, _| Ok(())).map(|_| ())
    }

    fn describe(&self) -> Result<Info, PlanError> {
        let (info, _) = self.call(Caller::Anonymous, |store, instance| {
            instance.tarantool_strategy_planner().call_describe(store)
        })?;
        Ok(boundary::info_from_wit(info))
    }

    /// Runs `f` on a fresh instance in a fresh store: no state survives a call
    /// and a trapped instance is simply dropped.
    fn call<R>(
        &self,
        caller: Caller<'_>,
        f: impl FnOnce(&mut Store<HostState>, &UpdateStrategy) -> wasmtime::Result<R>,
    ) -> Result<(R, CallLog), PlanError> {
        let _slot = self.slots.acquire(caller, self.builtin)?;
        let mut store = Store::new(&self.engine, HostState::new(&self.limits));
        store.limiter(|state| &mut state.limits);
        // The clock is looked at on every epoch tick: CPU time on this
        // thread against the budget, and wall time against the deadline.
        let clock = CallClock::start(&self.limits);
        store.epoch_deadline_callback(move |_| match clock.check() {
            Ok(()) => Ok(UpdateDeadline::Continue(1)),
            Err(out) => Err(out.into()),
        });
        store.set_epoch_deadline(1);
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
        match error.downcast_ref::<OutOfTime>() {
            Some(OutOfTime::Cpu) => return PlanError::CpuBudget(self.limits.cpu_budget),
            Some(OutOfTime::Wall) => return PlanError::Deadline(self.limits.deadline),
            None => {}
        }
        if let Some(over) = error.downcast_ref::<OverBudget>() {
            return if over.memory {
                PlanError::MemoryLimit { limit: over.limit }
            } else {
                PlanError::Trap(over.to_string())
            };
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
                    // Log lines are cleaned and bounded already.
                    Some(message) => PlanError::Panicked(message.to_string()),
                    None => PlanError::Trap("unreachable instruction (abort)".into()),
                }
            }
            Some(trap) => PlanError::Trap(trap.to_string()),
            None if format!("{error:#}").contains("growing memory") => PlanError::MemoryLimit {
                limit: self.limits.max_memory_bytes,
            },
            None => PlanError::Trap(boundary::clean(
                &format!("{error:#}"),
                boundary::MAX_TEXT_BYTES,
                boundary::Lines::One,
            )),
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
