//! The guest SDK for tarantool-operator update strategies.
//!
//! A strategy implements [`Strategy`] on plain Rust types that mirror the WIT
//! package in `wit/strategy.wit`, and calls [`export_strategy!`] once. Built
//! for `wasm32-wasip2` it becomes a component the operator loads; built
//! natively the same code runs in tests and benchmarks.

pub mod rollout;
mod sample;
mod types;
pub mod view;

pub use types::{Action, Decision, Info, LogLevel, ParamSpec, Pod, PodRef, ReplicaSet, RoleView};

#[cfg(target_arch = "wasm32")]
#[doc(hidden)]
pub mod guest;

/// A rolling-update strategy: a pure function from a view of a Role to the next
/// actions.
pub trait Strategy {
    /// Name, version, description and accepted params.
    fn describe() -> Info;

    /// Decide the next actions. An `Err` pauses the Role's update with the
    /// message as the reason.
    fn plan(view: &RoleView) -> Result<Decision, String>;
}

/// Prefix of the error log line a guest's panic hook writes; the host reports
/// the rest as the panic message.
pub const PANIC_LOG_PREFIX: &str = "panic: ";

/// Writes one line to the operator's log. Natively (tests, benchmarks) it is
/// dropped.
pub fn log(level: LogLevel, message: &str) {
    #[cfg(target_arch = "wasm32")]
    guest::log(level, message);
    #[cfg(not(target_arch = "wasm32"))]
    let _ = (level, message);
}

/// The bytes of `name`, as a fixed-size array (for the name section
/// [`export_strategy!`] writes).
#[doc(hidden)]
pub const fn name_bytes<const N: usize>(name: &str) -> [u8; N] {
    let bytes = name.as_bytes();
    let mut out = [0u8; N];
    let mut i = 0;
    while i < N {
        out[i] = bytes[i];
        i += 1;
    }
    out
}

/// Exports a [`Strategy`] implementation as the component's `planner`
/// interface. Does nothing when not compiling for wasm.
///
/// `export_strategy!(MyStrategy, "MyStrategy")` also writes the name (the
/// one `describe()` returns) into a `tarantool-strategy-name` custom
/// section, so the operator refuses a component that a Role asks for by
/// another name before compiling it.
#[macro_export]
macro_rules! export_strategy {
    ($strategy:ty, $name:literal) => {
        $crate::export_strategy!($strategy);
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            const NAME: &str = $name;
            #[used]
            #[unsafe(link_section = "tarantool-strategy-name")]
            static NAME_SECTION: [u8; NAME.len()] = $crate::name_bytes::<{ NAME.len() }>(NAME);
        };
    };
    ($strategy:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            struct Export;
            impl $crate::guest::bindings::exports::tarantool::strategy::planner::Guest for Export {
                fn describe() -> $crate::guest::bindings::tarantool::strategy::types::Info {
                    $crate::guest::install_panic_hook();
                    $crate::guest::info_to_wit(<$strategy as $crate::Strategy>::describe())
                }
                fn plan(
                    view: $crate::guest::bindings::tarantool::strategy::types::RoleView,
                ) -> ::core::result::Result<
                    $crate::guest::bindings::tarantool::strategy::types::Decision,
                    ::std::string::String,
                > {
                    $crate::guest::install_panic_hook();
                    let view = $crate::guest::view_from_wit(view);
                    <$strategy as $crate::Strategy>::plan(&view)
                        .map(|d| $crate::guest::decision_to_wit(d, &view))
                }
            }
    $crate::guest::bindings::export!(Export with_types_in $crate::guest::bindings);
        };
    };
}
