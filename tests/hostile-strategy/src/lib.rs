//! A strategy that misbehaves in exactly one way, chosen by a cargo feature.
//! The sandbox tests build it once per feature and check that the host
//! refuses each misbehaviour with a typed error and stays healthy. Without a
//! feature it is a harmless strategy that deletes nothing.

// Each feature build uses a different subset of the code below.
#![allow(
    unused_mut,
    unused_variables,
    unreachable_code,
    unconditional_recursion
)]

use strategy_sdk::{Action, Decision, Info, LogLevel, PodRef, RoleView, Strategy};

/// Lines the `log-flood` build writes in one plan.
pub const FLOOD_LINES: usize = 20_000;

/// The misbehaving strategy.
pub struct Hostile;

impl Strategy for Hostile {
    fn describe() -> Info {
        #[cfg(feature = "endless-describe")]
        spin();
        #[cfg(feature = "wait-forever")]
        return Info {
            name: "Hostile".into(),
            // A terminal escape (clears the screen) and 16 MiB of version.
            version: format!("1.0\x1b[2J{}", "9".repeat(16 << 20)),
            description: "misbehaves on purpose".into(),
            params: Vec::new(),
        };
        #[cfg(not(feature = "wait-forever"))]
        Info {
            name: "Hostile".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "misbehaves on purpose".into(),
            params: Vec::new(),
        }
    }

    fn plan(view: &RoleView) -> Result<Decision, String> {
        let mut decision = Decision {
            message: "hostile".into(),
            ..Decision::default()
        };
        #[cfg(feature = "endless-loop")]
        spin();
        #[cfg(feature = "busy")]
        {
            // Bounded work: the `iterations` param, for the CPU budget's
            // benchmark (a strategy that needs some CPU, not a loop).
            let iterations: u64 = view
                .params
                .iter()
                .find(|(k, _)| k == "iterations")
                .and_then(|(_, v)| v.parse().ok())
                .unwrap_or(0);
            let mut x: u64 = 1;
            for i in 0..iterations {
                x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(i));
            }
            decision.message = format!("busy {x}");
        }
        #[cfg(feature = "wait-forever")]
        {
            // "Wait 0" forever, with a forged second line and escapes in a
            // message of the largest accepted size.
            let line = "\x1b[31mstill waiting\nINFO forged: update complete ";
            decision.message = line.repeat(4096 / line.len());
            decision.actions = vec![Action::Wait(0)];
            strategy_sdk::log(LogLevel::Info, "\x1b]0;owned\x07log line\nsecond");
            if view.max_unavailable == u32::MAX {
                // 32 MiB in one buffer (a second copy would pass the
                // memory limit first).
                let mut error = String::with_capacity(32 << 20);
                error.push_str("\x1b[2J");
                while error.len() < 32 << 20 {
                    error.push('e');
                }
                return Err(error);
            }
        }
        #[cfg(feature = "memory-bomb")]
        {
            let mut hoard: Vec<Vec<u8>> = Vec::new();
            loop {
                hoard.push(vec![1u8; 1 << 20]);
                std::hint::black_box(&hoard);
            }
        }
        #[cfg(feature = "deep-recursion")]
        {
            decision.message = recurse(u64::from(view.max_unavailable)).to_string();
        }
        #[cfg(feature = "panic")]
        panic!("boom at {} replica sets", view.replicasets.len());
        #[cfg(feature = "huge-output")]
        {
            decision.message = "x".repeat(8 << 20);
        }
        #[cfg(feature = "huge-state")]
        {
            decision.state = Some("s".repeat(1 << 20));
        }
        #[cfg(feature = "log-flood")]
        for i in 0..FLOOD_LINES {
            strategy_sdk::log(LogLevel::Info, &format!("flood {i}"));
        }
        #[cfg(feature = "read-file")]
        {
            decision.message = std::fs::read_to_string("/etc/passwd").map_err(|e| e.to_string())?;
        }
        #[cfg(feature = "sleep")]
        std::thread::sleep(std::time::Duration::from_secs(3600));
        #[cfg(feature = "unknown-pod")]
        {
            decision.actions.push(Action::DeletePod(PodRef {
                replicaset: 9_999,
                pod: 0,
            }));
        }
        #[cfg(feature = "over-budget")]
        for (r, _) in view
            .pod_refs()
            .filter(|(r, p)| r.replicaset == 0 && !p.master)
        {
            decision.actions.push(Action::DeletePod(r));
        }
        #[cfg(feature = "master-first")]
        if let Some((r, _)) = view.pod_refs().find(|(_, p)| p.master) {
            decision.actions.push(Action::DeletePod(r));
        }
        let _ = (
            view,
            LogLevel::Info,
            PodRef {
                replicaset: 0,
                pod: 0,
            },
            Action::Wait(0),
        );
        Ok(decision)
    }
}

#[cfg(any(feature = "endless-loop", feature = "endless-describe"))]
fn spin() {
    let mut i: u64 = 0;
    loop {
        i = std::hint::black_box(i.wrapping_add(1));
    }
}

#[cfg(feature = "deep-recursion")]
fn recurse(n: u64) -> u64 {
    // black_box keeps the compiler from turning this into a loop.
    std::hint::black_box(recurse(std::hint::black_box(n + 1))) + 1
}

#[cfg(not(feature = "wrong-world"))]
strategy_sdk::export_strategy!(Hostile);

/// With `wrong-world`, the component exports some other interface instead.
#[cfg(all(feature = "wrong-world", target_arch = "wasm32"))]
mod wrong_world {
    wit_bindgen::generate!({
        inline: "package evil:thing@1.0.0; interface runner { run: func() -> u32; } world evil { export runner; }",
        world: "evil",
    });
    struct Evil;
    impl exports::evil::thing::runner::Guest for Evil {
        fn run() -> u32 {
            7
        }
    }
    export!(Evil);
}
