//! Strategies compiled into the operator as plain Rust, for tests, benchmarks
//! and the simulator: the same code as the wasm built-ins, without the sandbox.

use std::marker::PhantomData;

use strategy_sdk::{Decision, Info, RoleView, Strategy};

use super::planner::{PlanError, Planner};

/// A [`Strategy`] called directly, as a [`Planner`].
pub struct Native<S: Strategy> {
    // `fn() -> S` keeps `Native` Send + Sync whatever `S` is: no `S` is held.
    strategy: PhantomData<fn() -> S>,
}

impl<S: Strategy> Native<S> {
    /// Wraps strategy `S`.
    pub fn new() -> Self {
        Native {
            strategy: PhantomData,
        }
    }

    /// The strategy's self-description.
    pub fn describe(&self) -> Info {
        S::describe()
    }
}

impl<S: Strategy> Default for Native<S> {
    fn default() -> Self {
        Self::new()
    }
}

impl<S: Strategy> Planner for Native<S> {
    fn plan(&self, view: &RoleView) -> Result<Decision, PlanError> {
        S::plan(view).map_err(PlanError::Rejected)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Refuses;

    impl Strategy for Refuses {
        fn describe() -> Info {
            Info {
                name: "Refuses".into(),
                ..Info::default()
            }
        }

        fn plan(_: &RoleView) -> Result<Decision, String> {
            Err("no".into())
        }
    }

    #[test]
    fn errors_become_rejections() {
        let planner = Native::<Refuses>::new();
        assert_eq!(planner.describe().name, "Refuses");
        match planner.plan(&RoleView::sample(1, 1)) {
            Err(PlanError::Rejected(m)) => assert_eq!(m, "no"),
            other => panic!("expected a rejection, got {other:?}"),
        }
    }
}
