//! The WIT boundary: host bindings generated from `wit/strategy.wit` and the
//! conversions between them and the SDK's plain types.
//!
//! Every string a component returns passes [`clean`] here, before it can
//! reach a terminal, a log, an Event or a status: bounded in bytes, without
//! control characters (terminal escapes, a forged second line) or bidi
//! overrides. The opaque `state` is the one exception: it is the
//! strategy's own data, handed back to it unchanged (bounded in size by
//! the engine, and only ever written as an escaped JSON string).

use strategy_sdk as sdk;

use super::guard::MIN_WAIT_SECONDS;

/// Longest short field a component returns: its version, a param's name
/// and default. (Its name is checked stricter still: 63 bytes of
/// `[A-Za-z0-9._-]`.)
pub(crate) const MAX_SHORT_BYTES: usize = 128;
/// Longest text a component returns: its description, a param's
/// description, the error of a failed `plan`. A decision's `message` has
/// its own limit ([`crate::SandboxLimits::max_message_bytes`], 4 KiB), and
/// so do log lines (`max_log_line_bytes`, 1 KiB).
pub(crate) const MAX_TEXT_BYTES: usize = 4 << 10;

/// Whether a field may hold line breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lines {
    /// One line: line breaks and tabs become spaces.
    One,
    /// Several lines: `\n` is kept, tabs become spaces.
    Many,
}

/// Bidi overrides and isolates: they reorder what a terminal shows.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}')
}

/// `s` made safe to show: control characters (C0, DEL, C1: terminal escape
/// sequences among them) and bidi controls become U+FFFD, line breaks
/// spaces where `lines` is [`Lines::One`], and the result is cut to at most
/// `max` bytes on a character boundary, ending in `…` when cut.
pub(crate) fn clean(s: &str, max: usize, lines: Lines) -> String {
    const ELLIPSIS: char = '…';
    let mut out = String::with_capacity(s.len().min(max));
    // Where to cut if the rest does not fit: leaves room for the ellipsis.
    let room = max.saturating_sub(ELLIPSIS.len_utf8());
    let mut cut = 0;
    for c in s.chars() {
        let c = match c {
            '\n' if lines == Lines::Many => '\n',
            '\n' | '\r' | '\t' => ' ',
            c if c.is_control() || is_bidi_control(c) => char::REPLACEMENT_CHARACTER,
            c => c,
        };
        if out.len() + c.len_utf8() > max {
            out.truncate(cut);
            if max >= ELLIPSIS.len_utf8() {
                out.push(ELLIPSIS);
            }
            return out;
        }
        out.push(c);
        if out.len() <= room {
            cut = out.len();
        }
    }
    out
}

wasmtime::component::bindgen!({
    path: "../../wit",
    world: "update-strategy",
});

use tarantool::strategy::types as wit;

/// Lowers the SDK view into the flat WIT view.
pub(crate) fn view_to_wit(view: &sdk::RoleView) -> wit::RoleView {
    let pod_count = view.replicasets.iter().map(|rs| rs.pods.len()).sum();
    let mut pods = Vec::with_capacity(pod_count);
    let mut names =
        String::with_capacity(view.replicasets.iter().map(|rs| rs.name.len() + 1).sum());
    let replicasets = view
        .replicasets
        .iter()
        .map(|rs| {
            let first_pod = pods.len() as u32;
            pods.extend(rs.pods.iter().map(pod_to_wit));
            names.push_str(&rs.name);
            names.push('\n');
            wit::Replicaset {
                weight: rs.weight,
                holds_data: rs.holds_data,
                desired_replicas: rs.desired_replicas,
                first_pod,
                pod_count: rs.pods.len() as u32,
            }
        })
        .collect();
    wit::RoleView {
        role: view.role.clone(),
        params: view.params.clone(),
        max_unavailable: view.max_unavailable,
        replicasets,
        replicaset_names: names,
        pods,
        now_unix: view.now_unix,
        state: view.state.clone(),
    }
}

fn pod_to_wit(p: &sdk::Pod) -> wit::Pod {
    let mut flags = wit::PodFlags::empty();
    for (set, flag) in [
        (p.updated, wit::PodFlags::UPDATED),
        (p.ready, wit::PodFlags::READY),
        (p.terminating, wit::PodFlags::TERMINATING),
        (p.master, wit::PodFlags::MASTER),
        (p.healthy, wit::PodFlags::HEALTHY),
    ] {
        if set {
            flags |= flag;
        }
    }
    wit::Pod {
        ordinal: p.ordinal,
        flags,
        restarts: p.restarts,
        age_seconds: p.age_seconds,
        lag_millis: p.lag_millis,
    }
}

/// Maps indices into the flat pod list back to [`sdk::PodRef`]s.
struct PodIndex<'v> {
    view: &'v sdk::RoleView,
    /// Flat index of each replica set's first pod.
    starts: Vec<usize>,
}

impl<'v> PodIndex<'v> {
    fn new(view: &'v sdk::RoleView) -> Self {
        let mut starts = Vec::with_capacity(view.replicasets.len());
        let mut total = 0;
        for rs in &view.replicasets {
            starts.push(total);
            total += rs.pods.len();
        }
        Self { view, starts }
    }

    /// An index past the end becomes a reference to a replica set that does
    /// not exist, so the guard refuses it as an unknown pod.
    fn resolve(&self, index: u32) -> sdk::PodRef {
        let i = index as usize;
        // The last replica set starting at or before `i` (empty ones share a
        // start with their successor, so take the last of equal starts).
        let r = self.starts.partition_point(|&start| start <= i);
        if let Some(r) = r.checked_sub(1)
            && i - self.starts[r] < self.view.replicasets[r].pods.len()
        {
            return sdk::PodRef {
                replicaset: r as u32,
                pod: (i - self.starts[r]) as u32,
            };
        }
        sdk::PodRef {
            replicaset: u32::MAX,
            pod: index,
        }
    }
}

/// Lifts a WIT decision into the SDK's decision, resolving pod indices
/// against the `view` the strategy was given.
pub(crate) fn decision_from_wit(
    d: wit::Decision,
    view: &sdk::RoleView,
    max_message_bytes: usize,
) -> sdk::Decision {
    let pods = PodIndex::new(view);
    sdk::Decision {
        actions: d
            .actions
            .into_iter()
            .map(|a| match a {
                wit::Action::DeletePod(i) => sdk::Action::DeletePod(pods.resolve(i)),
                wit::Action::SwitchMaster(i) => sdk::Action::SwitchMaster(pods.resolve(i)),
                wit::Action::Wait(s) => sdk::Action::Wait(s.max(MIN_WAIT_SECONDS)),
            })
            .collect(),
        state: d.state,
        message: clean(&d.message, max_message_bytes, Lines::One),
        done: d.done,
    }
}

/// The error a failed `plan` returned, made safe to show.
pub(crate) fn error_from_wit(error: &str) -> String {
    clean(error, MAX_TEXT_BYTES, Lines::One)
}

/// Params a component may describe; more are dropped (the CRD allows 64 on
/// a Role).
pub(crate) const MAX_PARAMS: usize = 64;

/// Lifts a WIT info into the SDK's info, every string [`clean`]ed.
pub(crate) fn info_from_wit(i: wit::Info) -> sdk::Info {
    let short = |s: &str| clean(s, MAX_SHORT_BYTES, Lines::One);
    let text = |s: &str| clean(s, MAX_TEXT_BYTES, Lines::Many);
    sdk::Info {
        name: short(&i.name),
        version: short(&i.version),
        description: text(&i.description),
        params: i
            .params
            .iter()
            .take(MAX_PARAMS)
            .map(|p| sdk::ParamSpec {
                name: short(&p.name),
                description: text(&p.description),
                default: p.default.as_deref().map(short),
            })
            .collect(),
    }
}

pub(crate) fn log_level_from_wit(level: wit::LogLevel) -> sdk::LogLevel {
    match level {
        wit::LogLevel::Trace => sdk::LogLevel::Trace,
        wit::LogLevel::Debug => sdk::LogLevel::Debug,
        wit::LogLevel::Info => sdk::LogLevel::Info,
        wit::LogLevel::Warn => sdk::LogLevel::Warn,
        wit::LogLevel::Error => sdk::LogLevel::Error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_bounds_and_strips() {
        // (input, max, lines, expected)
        let cases: &[(&str, usize, Lines, &str)] = &[
            ("plain", 64, Lines::One, "plain"),
            ("", 64, Lines::One, ""),
            ("exactly", 7, Lines::One, "exactly"),
            ("too long", 7, Lines::One, "too …"),
            ("héllo", 3, Lines::One, "…"),
            ("ab", 0, Lines::One, ""),
            (
                "1.0\x1b[2J\x1b[31mred",
                64,
                Lines::One,
                "1.0\u{FFFD}[2J\u{FFFD}[31mred",
            ),
            (
                "ok\nINFO forged line",
                64,
                Lines::One,
                "ok INFO forged line",
            ),
            ("a\r\nb\tc", 64, Lines::Many, "a \nb c"),
            (
                "bell\x07 del\x7f c1\u{9b}",
                64,
                Lines::One,
                "bell\u{FFFD} del\u{FFFD} c1\u{FFFD}",
            ),
            ("abc\u{202E}fed", 64, Lines::One, "abc\u{FFFD}fed"),
            ("日本語", 7, Lines::One, "日…"),
            ("日本語", 9, Lines::One, "日本語"),
        ];
        for (input, max, lines, expected) in cases {
            let got = clean(input, *max, *lines);
            assert_eq!(&got, expected, "clean({input:?}, {max}, {lines:?})");
            assert!(got.len() <= *max, "{got:?} is over {max}");
        }
    }

    #[test]
    fn a_huge_string_is_cut_without_copying_it_whole() {
        let huge = "x".repeat(32 << 20);
        let got = clean(&huge, MAX_TEXT_BYTES, Lines::One);
        assert!(got.len() <= MAX_TEXT_BYTES && got.ends_with('…'));
    }

    #[test]
    fn info_strings_are_cleaned_and_waits_floored() {
        let info = info_from_wit(wit::Info {
            name: "Evil".into(),
            version: format!("1.0\x1b]0;title\x07{}", "9".repeat(16 << 20)),
            description: "line one\nline two\x1b[1m".into(),
            params: vec![
                wit::ParamSpec {
                    name: "p\nq".into(),
                    description: String::new(),
                    default: Some("\x1b[31m".into()),
                };
                100
            ],
        });
        assert!(info.version.len() <= MAX_SHORT_BYTES);
        assert!(!info.version.contains('\x1b'));
        assert_eq!(info.description, "line one\nline two\u{FFFD}[1m");
        assert_eq!(info.params.len(), MAX_PARAMS);
        assert_eq!(info.params[0].name, "p q");
        assert_eq!(info.params[0].default.as_deref(), Some("\u{FFFD}[31m"));

        let v = view();
        let d = decision_from_wit(
            wit::Decision {
                actions: vec![wit::Action::Wait(0), wit::Action::Wait(30)],
                state: None,
                message: "done\nFAKE: all good".into(),
                done: false,
            },
            &v,
            4096,
        );
        assert_eq!(
            d.actions,
            vec![sdk::Action::Wait(MIN_WAIT_SECONDS), sdk::Action::Wait(30)]
        );
        assert_eq!(d.message, "done FAKE: all good");
    }

    fn view() -> sdk::RoleView {
        let rs = |name: &str, n: u32| sdk::ReplicaSet {
            name: name.into(),
            desired_replicas: n,
            pods: (0..n)
                .map(|ordinal| sdk::Pod {
                    ordinal,
                    ..sdk::Pod::default()
                })
                .collect(),
            ..sdk::ReplicaSet::default()
        };
        sdk::RoleView {
            replicasets: vec![rs("a-0", 2), rs("a-1", 0), rs("a-2", 3)],
            ..sdk::RoleView::default()
        }
    }

    #[test]
    fn the_flat_view_keeps_every_pod_and_name_in_order() {
        let w = view_to_wit(&view());
        assert_eq!(w.replicaset_names, "a-0\na-1\na-2\n");
        assert_eq!(w.pods.len(), 5);
        let spans: Vec<_> = w
            .replicasets
            .iter()
            .map(|r| (r.first_pod, r.pod_count))
            .collect();
        assert_eq!(spans, vec![(0, 2), (2, 0), (2, 3)]);
    }

    #[test]
    fn pod_indices_resolve_across_replica_sets_and_past_the_end() {
        let v = view();
        let index = PodIndex::new(&v);
        let at = |i| index.resolve(i);
        assert_eq!(
            at(1),
            sdk::PodRef {
                replicaset: 0,
                pod: 1
            }
        );
        assert_eq!(
            at(2),
            sdk::PodRef {
                replicaset: 2,
                pod: 0
            }
        );
        assert_eq!(
            at(4),
            sdk::PodRef {
                replicaset: 2,
                pod: 2
            }
        );
        assert_eq!(at(5).replicaset, u32::MAX);
    }

    #[test]
    fn pod_flags_survive_the_round_trip() {
        let pod = sdk::Pod {
            ordinal: 2,
            updated: true,
            ready: false,
            terminating: true,
            master: false,
            healthy: true,
            restarts: 3,
            age_seconds: 40,
            lag_millis: 7,
        };
        let w = pod_to_wit(&pod);
        assert!(
            w.flags
                .contains(wit::PodFlags::UPDATED | wit::PodFlags::TERMINATING)
        );
        assert!(w.flags.contains(wit::PodFlags::HEALTHY));
        assert!(
            !w.flags
                .intersects(wit::PodFlags::READY | wit::PodFlags::MASTER)
        );
        assert_eq!(
            (w.ordinal, w.restarts, w.age_seconds, w.lag_millis),
            (2, 3, 40, 7)
        );
    }
}
