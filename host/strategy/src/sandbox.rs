//! What a strategy may use while it runs: limits, the per-call host state
//! (with a resource limiter that sums all of a call's memories), the call
//! slots shared fairly between Roles, the per-call CPU clock and the epoch
//! ticker that lets the host look at it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use strategy_sdk::LogLevel;
use wasmtime::{EngineWeak, ResourceLimiter};

use super::boundary::{self, Lines};
use super::planner::PlanError;
use super::validate::ShapeLimits;

/// Limits applied to every strategy component.
#[derive(Debug, Clone)]
pub struct SandboxLimits {
    /// Largest accepted component, in bytes.
    pub max_component_bytes: usize,
    /// What a component may declare, checked before compiling.
    pub shape: ShapeLimits,
    /// Linear memory one call may use, all of its memories together.
    pub max_memory_bytes: usize,
    /// Table elements one call may use, all of its tables together.
    pub max_table_elements: usize,
    /// Core instances per component instance.
    pub max_instances: usize,
    /// Tables and memories per component instance.
    pub max_tables: usize,
    /// Memories per component instance.
    pub max_memories: usize,
    /// Wasm stack, in bytes (deep recursion traps).
    pub max_wasm_stack: usize,
    /// CPU time one call (`describe` or `plan`) may use, counted on the
    /// thread that runs it: a strategy descheduled by a busy machine is not
    /// charged for it, so eight strategies at once on two cores still get
    /// their budget each.
    pub cpu_budget: Duration,
    /// Wall-clock time one call may take: the last resort behind
    /// `cpu_budget` (a call waiting on nothing cannot use wall time; this
    /// bounds a machine so loaded that the CPU clock barely moves).
    pub deadline: Duration,
    /// Largest `message` in a decision.
    pub max_message_bytes: usize,
    /// Largest opaque `state` (it is stored in the Role's status).
    pub max_state_bytes: usize,
    /// Most actions in one decision.
    pub max_actions: usize,
    /// Log lines kept per call; later ones are counted and dropped.
    pub max_log_lines: usize,
    /// Longest kept log line; longer ones are cut.
    pub max_log_line_bytes: usize,
    /// Strategy instances that may run at the same time (pool size).
    pub max_concurrent_calls: u32,
    /// Of those, how many one owner (a Role) may hold at once.
    pub max_calls_per_owner: u32,
    /// Of those, how many only the built-in strategies may use, so that
    /// custom strategies, however slow and however many, never take the
    /// last slot from a built-in.
    pub reserved_builtin_calls: u32,
    /// How long a call waits for a slot before failing (busy).
    pub slot_wait: Duration,
    /// Components compiled at the same time (threads of the compile pool).
    pub compile_threads: usize,
    /// Wall time a compile may take before the load fails. The census
    /// bounds compile time already; this is the net behind it.
    pub compile_budget: Duration,
    /// Compiled components kept in memory, in bytes of native code.
    pub max_loaded_bytes: usize,
    /// The on-disk compile cache, in bytes; the least recently used
    /// artifacts are removed beyond it.
    pub max_cache_disk_bytes: u64,
}

impl Default for SandboxLimits {
    fn default() -> Self {
        Self {
            max_component_bytes: 16 << 20,
            shape: ShapeLimits::default(),
            max_memory_bytes: 64 << 20,
            max_table_elements: 20_000,
            max_instances: 32,
            max_tables: 32,
            max_memories: 4,
            max_wasm_stack: 512 << 10,
            cpu_budget: Duration::from_millis(500),
            deadline: Duration::from_secs(5),
            max_message_bytes: 4 << 10,
            max_state_bytes: 64 << 10,
            max_actions: 10_000,
            max_log_lines: 64,
            max_log_line_bytes: 1 << 10,
            max_concurrent_calls: 32,
            max_calls_per_owner: 2,
            reserved_builtin_calls: 8,
            slot_wait: Duration::from_secs(10),
            compile_threads: 1,
            compile_budget: Duration::from_secs(30),
            max_loaded_bytes: 64 << 20,
            max_cache_disk_bytes: 128 << 20,
        }
    }
}

/// A call tried to grow its memories or tables past the per-call budget.
#[derive(Debug, thiserror::Error)]
#[error("growing memory or tables to {total} in one call; the limit is {limit}")]
pub(crate) struct OverBudget {
    /// Bytes (memories) or elements (tables) the call would hold.
    pub(crate) total: usize,
    /// The limit.
    pub(crate) limit: usize,
    /// Whether it was a memory (else a table).
    pub(crate) memory: bool,
}

/// The resource limiter of one call: memory and table elements are summed
/// over every memory and table of every instance the call creates (a
/// per-memory limit lets a component with four memories use four times
/// the budget).
#[derive(Debug)]
pub(crate) struct CallLimiter {
    memory_bytes: usize,
    table_elements: usize,
    max_memory_bytes: usize,
    max_table_elements: usize,
    max_instances: usize,
    max_tables: usize,
    max_memories: usize,
}

impl CallLimiter {
    pub(crate) fn new(limits: &SandboxLimits) -> Self {
        Self {
            memory_bytes: 0,
            table_elements: 0,
            max_memory_bytes: limits.max_memory_bytes,
            max_table_elements: limits.max_table_elements,
            max_instances: limits.max_instances,
            max_tables: limits.max_tables,
            max_memories: limits.max_memories,
        }
    }

    /// Moves `held` from `current` to `desired`, or fails past `limit`.
    fn grow(
        held: &mut usize,
        current: usize,
        desired: usize,
        limit: usize,
        memory: bool,
    ) -> wasmtime::Result<bool> {
        let total = held.saturating_sub(current).saturating_add(desired);
        if total > limit {
            // An error rather than `false`: the guest traps at once instead
            // of seeing -1 and retrying smaller grows until the deadline.
            return Err(OverBudget {
                total,
                limit,
                memory,
            }
            .into());
        }
        *held = total;
        Ok(true)
    }
}

impl ResourceLimiter for CallLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let limit = self.max_memory_bytes;
        Self::grow(&mut self.memory_bytes, current, desired, limit, true)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let limit = self.max_table_elements;
        Self::grow(&mut self.table_elements, current, desired, limit, false)
    }

    fn instances(&self) -> usize {
        self.max_instances
    }

    fn tables(&self) -> usize {
        self.max_tables
    }

    fn memories(&self) -> usize {
        self.max_memories
    }
}

/// CPU time the calling thread has used.
pub(crate) fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_THREAD_CPUTIME_ID is
    // supported by every Linux the operator runs on (a failure leaves 0, and
    // the wall deadline still holds).
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(
        u64::try_from(ts.tv_sec).unwrap_or(0),
        u32::try_from(ts.tv_nsec).unwrap_or(0),
    )
}

/// Why a call was stopped by its clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum OutOfTime {
    /// It used its CPU budget.
    #[error("used its CPU budget")]
    Cpu,
    /// It ran past the wall-clock deadline.
    #[error("ran past its wall-clock deadline")]
    Wall,
}

/// The clock of one call: started on the thread that runs it, looked at on
/// every epoch tick (see [`EPOCH_TICK`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct CallClock {
    cpu_start: Duration,
    wall_start: Instant,
    cpu_budget: Duration,
    deadline: Duration,
}

impl CallClock {
    pub(crate) fn start(limits: &SandboxLimits) -> Self {
        Self {
            cpu_start: thread_cpu_time(),
            wall_start: Instant::now(),
            cpu_budget: limits.cpu_budget,
            deadline: limits.deadline,
        }
    }

    /// Whether the call must stop now.
    pub(crate) fn check(&self) -> Result<(), OutOfTime> {
        if thread_cpu_time().saturating_sub(self.cpu_start) >= self.cpu_budget {
            return Err(OutOfTime::Cpu);
        }
        if self.wall_start.elapsed() >= self.deadline {
            return Err(OutOfTime::Wall);
        }
        Ok(())
    }
}

/// Who a call is made for: its slots are counted per owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller<'a> {
    /// A Role (`namespace/name`), or any key a caller shares fairly by.
    Owner(&'a str),
    /// Nobody in particular (the CLI, tests): only the total counts.
    Anonymous,
}

#[derive(Debug, Default)]
struct SlotsInUse {
    total: u32,
    custom: u32,
    by_owner: HashMap<String, u32>,
}

/// The instance slots of the pool, shared fairly: an owner holds at most
/// `max_calls_per_owner`, custom strategies together at most the pool less
/// `reserved_builtin_calls`, and a call waits for its slot (up to
/// `slot_wait`) instead of failing at the pool's limit.
#[derive(Debug)]
pub(crate) struct CallSlots {
    in_use: Mutex<SlotsInUse>,
    freed: Condvar,
    total: u32,
    per_owner: u32,
    custom: u32,
    wait: Duration,
}

/// A held slot; dropping it frees the slot.
pub(crate) struct Slot<'a> {
    slots: &'a CallSlots,
    owner: Option<String>,
    builtin: bool,
}

impl CallSlots {
    pub(crate) fn new(limits: &SandboxLimits) -> Self {
        let total = limits.max_concurrent_calls.max(1);
        Self {
            in_use: Mutex::default(),
            freed: Condvar::new(),
            total,
            per_owner: limits.max_calls_per_owner.clamp(1, total),
            custom: total.saturating_sub(limits.reserved_builtin_calls).max(1),
            wait: limits.slot_wait,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, SlotsInUse> {
        // Counters only: a poisoned lock still holds consistent numbers.
        self.in_use.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits for a slot for `caller`.
    pub(crate) fn acquire(&self, caller: Caller<'_>, builtin: bool) -> Result<Slot<'_>, PlanError> {
        let owner = match caller {
            Caller::Owner(owner) => Some(owner),
            Caller::Anonymous => None,
        };
        let free = |u: &SlotsInUse| {
            u.total < self.total
                && (builtin || u.custom < self.custom)
                && owner.is_none_or(|o| u.by_owner.get(o).copied().unwrap_or(0) < self.per_owner)
        };
        let until = Instant::now() + self.wait;
        let mut in_use = self.lock();
        while !free(&in_use) {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(PlanError::Busy {
                    waited: self.wait,
                    owner: owner.is_some_and(|o| {
                        in_use.by_owner.get(o).copied().unwrap_or(0) >= self.per_owner
                    }),
                });
            }
            in_use = self
                .freed
                .wait_timeout(in_use, left)
                .map(|(guard, _)| guard)
                .unwrap_or_else(|e| e.into_inner().0);
        }
        in_use.total += 1;
        if !builtin {
            in_use.custom += 1;
        }
        if let Some(owner) = owner {
            *in_use.by_owner.entry(owner.to_string()).or_default() += 1;
        }
        Ok(Slot {
            slots: self,
            owner: owner.map(str::to_string),
            builtin,
        })
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        let mut in_use = self.slots.lock();
        in_use.total = in_use.total.saturating_sub(1);
        if !self.builtin {
            in_use.custom = in_use.custom.saturating_sub(1);
        }
        if let Some(owner) = &self.owner
            && let Some(held) = in_use.by_owner.get_mut(owner)
        {
            *held = held.saturating_sub(1);
            if *held == 0 {
                in_use.by_owner.remove(owner);
            }
        }
        drop(in_use);
        self.slots.freed.notify_all();
    }
}

/// Lines a strategy logged during one call.
#[derive(Debug, Default, Clone)]
pub struct CallLog {
    /// Kept lines, in order.
    pub lines: Vec<(LogLevel, String)>,
    /// Lines dropped because the call logged too much.
    pub dropped: usize,
}

/// The data a [`wasmtime::Store`] carries for one call.
pub(crate) struct HostState {
    pub(crate) limits: CallLimiter,
    pub(crate) log: CallLog,
    max_log_lines: usize,
    max_log_line_bytes: usize,
}

impl HostState {
    pub(crate) fn new(limits: &SandboxLimits) -> Self {
        Self {
            limits: CallLimiter::new(limits),
            log: CallLog::default(),
            max_log_lines: limits.max_log_lines,
            max_log_line_bytes: limits.max_log_line_bytes,
        }
    }

    pub(crate) fn record_log(&mut self, level: LogLevel, message: String) {
        if self.log.lines.len() >= self.max_log_lines {
            self.log.dropped += 1;
            return;
        }
        let line = boundary::clean(&message, self.max_log_line_bytes, Lines::One);
        self.log.lines.push((level, line));
    }
}

/// How often the engine's epoch advances; deadlines are counted in ticks.
pub(crate) const EPOCH_TICK: Duration = Duration::from_millis(5);

/// A thread that advances the engine's epoch so a running strategy can be
/// interrupted at its deadline. It stops when dropped or when the engine goes.
pub(crate) struct EpochTicker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl EpochTicker {
    pub(crate) fn start(engine: EngineWeak) -> std::io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("strategy-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    match engine.upgrade() {
                        Some(engine) => engine.increment_epoch(),
                        None => break,
                    }
                }
            })?;
        Ok(Self {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_is_summed_over_all_memories_of_a_call() {
        let limits = SandboxLimits {
            max_memory_bytes: 100,
            ..SandboxLimits::default()
        };
        let mut limiter = CallLimiter::new(&limits);
        // (current, desired, allowed) in order, over several memories.
        let steps = [
            (0, 40, true),  // memory A
            (0, 40, true),  // memory B: 80 in all
            (40, 60, true), // A grows: 100 in all
            (0, 1, false),  // a third memory would pass the sum
            (40, 41, false),
        ];
        for (current, desired, allowed) in steps {
            let grown = limiter.memory_growing(current, desired, None);
            assert_eq!(grown.is_ok(), allowed, "{current} -> {desired}");
        }
    }

    #[test]
    fn the_cpu_clock_counts_this_thread_only() {
        let before = thread_cpu_time();
        std::thread::sleep(Duration::from_millis(30));
        // Sleeping uses no CPU (allow the syscalls' own time).
        assert!(thread_cpu_time() - before < Duration::from_millis(20));
    }

    #[test]
    fn slots_are_shared_fairly() {
        let limits = SandboxLimits {
            max_concurrent_calls: 4,
            max_calls_per_owner: 2,
            reserved_builtin_calls: 1,
            slot_wait: Duration::ZERO,
            ..SandboxLimits::default()
        };
        let slots = CallSlots::new(&limits);
        let a1 = slots.acquire(Caller::Owner("a"), false).expect("a's first");
        let _a2 = slots
            .acquire(Caller::Owner("a"), false)
            .expect("a's second");
        assert!(matches!(
            slots.acquire(Caller::Owner("a"), false),
            Err(PlanError::Busy { owner: true, .. })
        ));
        let _b = slots.acquire(Caller::Owner("b"), false).expect("b's own");
        // Three custom calls hold all but the reserved slot.
        assert!(matches!(
            slots.acquire(Caller::Owner("c"), false),
            Err(PlanError::Busy { owner: false, .. })
        ));
        let builtin = slots.acquire(Caller::Owner("c"), true).expect("reserved");
        assert!(slots.acquire(Caller::Anonymous, true).is_err(), "pool full");
        drop((a1, builtin));
        slots.acquire(Caller::Owner("a"), false).expect("freed");
    }

    #[test]
    fn log_is_bounded_in_lines_and_length() {
        let limits = SandboxLimits {
            max_log_lines: 2,
            max_log_line_bytes: 4,
            ..SandboxLimits::default()
        };
        let mut state = HostState::new(&limits);
        state.record_log(LogLevel::Info, "héllo".into());
        state.record_log(LogLevel::Warn, "ok".into());
        state.record_log(LogLevel::Error, "dropped".into());
        assert_eq!(state.log.lines[0].1, "h…");
        assert_eq!(state.log.lines[1].1, "ok");
        assert_eq!(state.log.dropped, 1);
    }
}
