//! How long an object whose passes keep failing waits before the next one.
//!
//! Per object, exponential, with jitter: an object that failed once comes
//! back soon, one that keeps failing comes back less and less often, and
//! objects that fail together (an apiserver outage, every Role's Cartridge
//! unreachable) spread out instead of coming back in step. A successful
//! pass forgets the object's failures. Watch events still start a pass at
//! once: a user's fix is never held back by the backoff, which only spaces
//! the operator's own retries.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};

/// Which object: controller, namespace, name.
pub(crate) type Key = (&'static str, String, String);

/// Past this many failing objects, those that have not failed for a while
/// (deleted meanwhile, or fixed by a pass that never reported) are dropped.
const SWEEP_ABOVE: usize = 1024;

/// The failing objects and where each is in its backoff.
pub(crate) struct Backoffs {
    policy: ExponentialBuilder,
    /// The longest base delay (jittered: up to twice that). An entry that
    /// has not failed for twice the longest jittered delay is stale.
    max: Duration,
    failing: Mutex<HashMap<Key, (ExponentialBackoff, Instant)>>,
}

impl Backoffs {
    /// Delays from `min` doubling up to `max`, each stretched by a random
    /// factor in [1, 2): the n-th retry of an object comes after
    /// `[d, 2d)` with `d = min(min * 2^(n-1), max)`.
    pub(crate) fn new(min: Duration, max: Duration) -> Self {
        let max = max.max(min);
        Self {
            policy: ExponentialBuilder::default()
                .with_min_delay(min)
                .with_max_delay(max)
                .with_factor(2.0)
                .with_jitter()
                .without_max_times(),
            max,
            failing: Mutex::new(HashMap::new()),
        }
    }

    /// The object failed again: how long until its next pass.
    pub(crate) fn failed(&self, key: Key) -> Duration {
        let now = Instant::now();
        let mut failing = self.failing.lock().unwrap_or_else(|e| e.into_inner());
        if failing.len() > SWEEP_ABOVE {
            let stale = self.max.saturating_mul(4);
            failing.retain(|_, (_, at)| now.duration_since(*at) < stale);
        }
        let (backoff, at) = failing
            .entry(key)
            .or_insert_with(|| (self.policy.build(), now));
        *at = now;
        // Without a limit of times the iterator never ends; the maximum is
        // the answer should it ever.
        backoff.next().unwrap_or(self.max)
    }

    /// The object's pass succeeded: its next failure starts from `min`.
    pub(crate) fn succeeded(&self, key: &Key) {
        self.failing
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
    }

    /// How many objects are backing off.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.failing.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: &str) -> Key {
        ("role", "ns".into(), name.into())
    }

    const MIN: Duration = Duration::from_secs(2);
    const MAX: Duration = Duration::from_secs(60);

    #[test]
    fn delays_double_up_to_the_maximum_within_their_jitter() {
        let backoffs = Backoffs::new(MIN, MAX);
        // The base delay of each retry: 2, 4, 8, 16, 32, then 60 for good.
        let bases = [2, 4, 8, 16, 32, 60, 60, 60];
        for (n, base) in bases.iter().enumerate() {
            let base = Duration::from_secs(*base);
            let got = backoffs.failed(key("a"));
            assert!(
                got >= base && got < base * 2,
                "retry {}: {got:?} not in [{base:?}, {:?})",
                n + 1,
                base * 2
            );
        }
    }

    #[test]
    fn a_success_starts_the_object_over_and_objects_are_independent() {
        let backoffs = Backoffs::new(MIN, MAX);
        for _ in 0..5 {
            backoffs.failed(key("a"));
        }
        assert!(backoffs.failed(key("b")) < MIN * 2, "b has not failed yet");
        backoffs.succeeded(&key("a"));
        assert!(backoffs.failed(key("a")) < MIN * 2, "a starts over");
        backoffs.succeeded(&key("a"));
        backoffs.succeeded(&key("b"));
        assert_eq!(backoffs.len(), 0);
    }

    #[test]
    fn objects_failing_together_spread_out() {
        let backoffs = Backoffs::new(MIN, MAX);
        let delays: Vec<Duration> = (0..50)
            .map(|i| {
                let k = key(&format!("r{i}"));
                for _ in 0..3 {
                    backoffs.failed(k.clone());
                }
                backoffs.failed(k)
            })
            .collect();
        let distinct: std::collections::BTreeSet<u128> =
            delays.iter().map(Duration::as_millis).collect();
        // 50 objects on their fourth failure: base 16 s, spread over 16 s.
        assert!(distinct.len() > 25, "{} distinct of 50", distinct.len());
        assert!(delays.iter().all(|d| *d >= MIN * 8 && *d < MIN * 16));
    }
}
