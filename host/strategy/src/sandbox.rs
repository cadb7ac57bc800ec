//! What a strategy may use while it runs: limits, the per-call host state and
//! the epoch ticker that enforces the deadline.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use strategy_sdk::LogLevel;
use wasmtime::{EngineWeak, StoreLimits, StoreLimitsBuilder};

/// Limits applied to every strategy component.
#[derive(Debug, Clone)]
pub struct SandboxLimits {
    /// Largest accepted component, in bytes.
    pub max_component_bytes: usize,
    /// Linear memory a single instance may grow to.
    pub max_memory_bytes: usize,
    /// Elements in any one table.
    pub max_table_elements: usize,
    /// Core instances per component instance.
    pub max_instances: usize,
    /// Tables and memories per component instance.
    pub max_tables: usize,
    /// Memories per component instance.
    pub max_memories: usize,
    /// Wasm stack, in bytes (deep recursion traps).
    pub max_wasm_stack: usize,
    /// Wall-clock budget of one call (`describe` or `plan`).
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
}

impl Default for SandboxLimits {
    fn default() -> Self {
        Self {
            max_component_bytes: 16 << 20,
            max_memory_bytes: 64 << 20,
            max_table_elements: 20_000,
            max_instances: 32,
            max_tables: 32,
            max_memories: 4,
            max_wasm_stack: 512 << 10,
            deadline: Duration::from_millis(500),
            max_message_bytes: 4 << 10,
            max_state_bytes: 64 << 10,
            max_actions: 10_000,
            max_log_lines: 64,
            max_log_line_bytes: 1 << 10,
            max_concurrent_calls: 32,
        }
    }
}

impl SandboxLimits {
    pub(crate) fn store_limits(&self) -> StoreLimits {
        StoreLimitsBuilder::new()
            .memory_size(self.max_memory_bytes)
            .table_elements(self.max_table_elements)
            .instances(self.max_instances)
            .tables(self.max_tables)
            .memories(self.max_memories)
            .trap_on_grow_failure(true)
            .build()
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
    pub(crate) limits: StoreLimits,
    pub(crate) log: CallLog,
    max_log_lines: usize,
    max_log_line_bytes: usize,
}

impl HostState {
    pub(crate) fn new(limits: &SandboxLimits) -> Self {
        Self {
            limits: limits.store_limits(),
            log: CallLog::default(),
            max_log_lines: limits.max_log_lines,
            max_log_line_bytes: limits.max_log_line_bytes,
        }
    }

    pub(crate) fn record_log(&mut self, level: LogLevel, mut message: String) {
        if self.log.lines.len() >= self.max_log_lines {
            self.log.dropped += 1;
            return;
        }
        if message.len() > self.max_log_line_bytes {
            let mut cut = self.max_log_line_bytes;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
            message.push('…');
        }
        self.log.lines.push((level, message));
    }
}

/// How often the engine's epoch advances; deadlines are counted in ticks.
pub(crate) const EPOCH_TICK: Duration = Duration::from_millis(5);

/// Ticks that make up `deadline`, rounded up, at least one.
pub(crate) fn deadline_ticks(deadline: Duration) -> u64 {
    let tick = EPOCH_TICK.as_nanos();
    (deadline.as_nanos().div_ceil(tick)).max(1) as u64
}

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
    fn deadline_rounds_up_to_whole_ticks() {
        assert_eq!(deadline_ticks(Duration::ZERO), 1);
        assert_eq!(deadline_ticks(EPOCH_TICK), 1);
        assert_eq!(deadline_ticks(EPOCH_TICK + Duration::from_nanos(1)), 2);
        assert_eq!(deadline_ticks(Duration::from_millis(500)), 100);
    }

    #[test]
    fn log_is_bounded_in_lines_and_length() {
        let limits = SandboxLimits {
            max_log_lines: 2,
            max_log_line_bytes: 2,
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
