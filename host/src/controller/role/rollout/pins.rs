//! The strategy each running rollout started with. A rollout keeps its
//! component even when its ConfigMap changes mid-way (the change takes
//! effect at the next rollout); the pin goes when the rollout ends or the
//! Role goes, so the operator holds no component it will not use again.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use crate::strategy::WasmStrategy;

/// Pinned strategies by `namespace/role`, each with the rollout revision
/// it was pinned for.
#[derive(Default)]
pub struct Pins {
    pinned: Mutex<HashMap<String, (String, Arc<WasmStrategy>)>>,
}

impl Pins {
    fn key(namespace: &str, role: &str) -> String {
        format!("{namespace}/{role}")
    }

    /// The strategy pinned for this rollout of the Role, if any.
    pub fn get(&self, namespace: &str, role: &str, revision: &str) -> Option<Arc<WasmStrategy>> {
        // A panic while holding the map cannot leave it half-written: every
        // write is one insert or remove.
        let pinned = self.pinned.lock().unwrap_or_else(PoisonError::into_inner);
        pinned
            .get(&Self::key(namespace, role))
            .filter(|(pinned_revision, _)| pinned_revision == revision)
            .map(|(_, strategy)| strategy.clone())
    }

    /// Pins `strategy` for this rollout of the Role (replacing an earlier
    /// rollout's).
    pub fn pin(&self, namespace: &str, role: &str, revision: &str, strategy: Arc<WasmStrategy>) {
        let mut pinned = self.pinned.lock().unwrap_or_else(PoisonError::into_inner);
        pinned.insert(Self::key(namespace, role), (revision.to_string(), strategy));
    }

    /// The Role's rollout ended, or the Role goes: its pin goes.
    pub fn release(&self, namespace: &str, role: &str) {
        let mut pinned = self.pinned.lock().unwrap_or_else(PoisonError::into_inner);
        pinned.remove(&Self::key(namespace, role));
    }

    /// How many Roles hold a pin.
    pub fn len(&self) -> usize {
        self.pinned
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// No Role holds a pin.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::testing;

    #[test]
    fn a_pin_holds_for_its_rollout_and_goes_with_it() {
        let registry = testing::registry();
        let Ok(strategy) = registry.builtin("OnDelete") else {
            panic!("the built-in OnDelete");
        };
        let pins = Pins::default();
        pins.pin("ns", "storage", "rev-1", strategy);
        assert!(pins.get("ns", "storage", "rev-1").is_some());
        assert!(
            pins.get("ns", "storage", "rev-2").is_none(),
            "a new rollout resolves again"
        );
        assert!(pins.get("ns", "router", "rev-1").is_none());
        assert!(pins.get("other", "storage", "rev-1").is_none());
        pins.release("ns", "storage");
        assert!(pins.is_empty());
    }
}
