//! The built-in strategies, compiled to wasm by `build.rs` and embedded.

use std::sync::LazyLock;

use crate::cache::Digest;

/// A strategy that ships inside the operator.
#[derive(Debug, Clone, Copy)]
pub struct Builtin {
    /// The name a Role uses in `spec.updateStrategy.name`.
    pub name: &'static str,
    /// The component's bytes.
    pub wasm: &'static [u8],
}

pub use crate::api::update_strategy::{CLUSTER_PARTITION_UPDATE, ON_DELETE, SWITCH_MASTER_UPDATE};

/// Every built-in, in the order `strategy list` shows them.
pub(crate) const BUILTINS: &[Builtin] = &[
    Builtin {
        name: ON_DELETE,
        wasm: include_bytes!(concat!(env!("OUT_DIR"), "/on_delete.wasm")),
    },
    Builtin {
        name: CLUSTER_PARTITION_UPDATE,
        wasm: include_bytes!(concat!(env!("OUT_DIR"), "/cluster_partition_update.wasm")),
    },
    Builtin {
        name: SWITCH_MASTER_UPDATE,
        wasm: include_bytes!(concat!(env!("OUT_DIR"), "/switch_master_update.wasm")),
    },
];

/// Looks up a built-in by its Role-spec name.
pub fn find(name: &str) -> Option<&'static Builtin> {
    BUILTINS.iter().find(|b| b.name == name)
}

/// Whether `digest` is that of an embedded built-in (hashed once).
pub(crate) fn is_builtin(digest: &Digest) -> bool {
    static DIGESTS: LazyLock<Vec<Digest>> =
        LazyLock::new(|| BUILTINS.iter().map(|b| Digest::of(b.wasm)).collect());
    DIGESTS.contains(digest)
}

/// Path of the example custom strategy (`examples/custom-strategy`,
/// strategy `Canary`) as built with the operator. Not embedded: tests and
/// docs ship it the way users do, in a ConfigMap.
pub const EXAMPLE_COMPONENT_PATH: &str = env!("TARANTOOL_OPERATOR_EXAMPLE_WASM");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_the_api_calls_built_in_is_embedded() {
        let embedded: Vec<&str> = BUILTINS.iter().map(|b| b.name).collect();
        assert_eq!(embedded, crate::api::update_strategy::BUILTIN_NAMES);
    }
}
