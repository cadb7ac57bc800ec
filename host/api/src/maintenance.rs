//! Maintenance windows (`spec.updateStrategy.maintenanceWindows`): when the
//! operator may start a rollout.
//!
//! The format is Zalando postgres-operator's, in UTC: `Sat:01:00-Sat:06:00`
//! (weekday, hour and minute on both ends; a window may wrap the week, as
//! `Sun:23:00-Mon:02:00`) or `01:00-06:00` (every day; may wrap midnight).
//! Chosen over Strimzi's cron expressions: one regular pattern checks it
//! at admission, users read it at a glance, and no cron crate is needed.

use std::fmt;

/// The admission pattern of one window.
pub(crate) const WINDOW_PATTERN: &str = r"^((Mon|Tue|Wed|Thu|Fri|Sat|Sun):([01][0-9]|2[0-3]):[0-5][0-9]-(Mon|Tue|Wed|Thu|Fri|Sat|Sun):([01][0-9]|2[0-3]):[0-5][0-9]|([01][0-9]|2[0-3]):[0-5][0-9]-([01][0-9]|2[0-3]):[0-5][0-9])$";

const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
const DAY: i64 = 86_400;
const WEEK: i64 = 7 * DAY;

/// One window, as seconds since Monday 00:00 UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// Where it opens, in the week (or, for a daily window, in the day).
    start: i64,
    /// Where it closes.
    end: i64,
    /// A daily window (`HH:MM-HH:MM`).
    daily: bool,
}

/// A window that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("maintenance window {0:?} is neither `Ddd:HH:MM-Ddd:HH:MM` nor `HH:MM-HH:MM` (UTC)")]
pub struct InvalidWindow(pub String);

/// `HH:MM`, two digits each, as seconds into the day.
fn hhmm(text: &str) -> Option<i64> {
    let (h, m) = text.split_once(':')?;
    if h.len() != 2 || m.len() != 2 || !text.chars().all(|c| c.is_ascii_digit() || c == ':') {
        return None;
    }
    let (h, m): (i64, i64) = (h.parse().ok()?, m.parse().ok()?);
    ((0..24).contains(&h) && (0..60).contains(&m)).then_some(h * 3600 + m * 60)
}

fn day_time(text: &str) -> Option<i64> {
    let (day, time) = text.split_at_checked(3)?;
    let day = DAYS.iter().position(|d| *d == day)?;
    let time = time.strip_prefix(':')?;
    Some(i64::try_from(day).ok()? * DAY + hhmm(time)?)
}

impl std::str::FromStr for Window {
    type Err = InvalidWindow;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let invalid = || InvalidWindow(text.to_string());
        let (from, to) = text.split_once('-').ok_or_else(invalid)?;
        let two_digits = |t: &str| t.len() == 5;
        if two_digits(from) && two_digits(to) {
            let (start, end) = (
                hhmm(from).ok_or_else(invalid)?,
                hhmm(to).ok_or_else(invalid)?,
            );
            return Ok(Window {
                start,
                end,
                daily: true,
            });
        }
        let (start, end) = (
            day_time(from).ok_or_else(invalid)?,
            day_time(to).ok_or_else(invalid)?,
        );
        Ok(Window {
            start,
            end,
            daily: false,
        })
    }
}

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let show = |s: i64, f: &mut fmt::Formatter<'_>| {
            if !self.daily {
                write!(f, "{}:", DAYS[usize::try_from(s / DAY).unwrap_or(0) % 7])?;
            }
            write!(f, "{:02}:{:02}", (s % DAY) / 3600, (s % 3600) / 60)
        };
        show(self.start, f)?;
        f.write_str("-")?;
        show(self.end, f)
    }
}

impl Window {
    /// The period it repeats with, and where `unix` falls in that period.
    fn period_and_offset(&self, unix: i64) -> (i64, i64) {
        if self.daily {
            (DAY, unix.rem_euclid(DAY))
        } else {
            // 1970-01-01 was a Thursday: Monday 00:00 came 3 days earlier.
            (WEEK, (unix + 3 * DAY).rem_euclid(WEEK))
        }
    }

    /// Whether the window is open at `unix` (seconds since the epoch, UTC).
    /// A window whose ends are equal is always open.
    pub fn is_open(&self, unix: i64) -> bool {
        let (_, at) = self.period_and_offset(unix);
        match self.start.cmp(&self.end) {
            std::cmp::Ordering::Less => self.start <= at && at < self.end,
            std::cmp::Ordering::Greater => at >= self.start || at < self.end,
            std::cmp::Ordering::Equal => true,
        }
    }

    /// When the window next opens at or after `unix`.
    pub fn next_open(&self, unix: i64) -> i64 {
        let (period, at) = self.period_and_offset(unix);
        unix + (self.start - at).rem_euclid(period)
    }
}

/// Parses every window; the first that does not parse is the error.
pub fn parse_all(windows: &[String]) -> Result<Vec<Window>, InvalidWindow> {
    windows.iter().map(|w| w.parse()).collect()
}

/// Where `unix` stands with respect to `windows`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// No windows (always open), or inside one.
    Open,
    /// Outside every window: the next opens at this time (unix seconds).
    Closed {
        /// When the next window opens.
        opens_at: i64,
    },
}

/// Whether a rollout may start at `unix`.
pub fn standing(windows: &[Window], unix: i64) -> Standing {
    if windows.is_empty() || windows.iter().any(|w| w.is_open(unix)) {
        return Standing::Open;
    }
    let opens_at = windows
        .iter()
        .map(|w| w.next_open(unix))
        .min()
        .unwrap_or(unix);
    Standing::Closed { opens_at }
}

#[cfg(test)]
mod tests {
    use super::*;

    // 2026-11-30 is a Monday; 00:00 UTC.
    const MONDAY: i64 = 1_795_996_800;

    fn at(day: i64, h: i64, m: i64) -> i64 {
        MONDAY + day * DAY + h * 3600 + m * 60
    }

    #[test]
    fn the_reference_monday_is_a_monday() {
        let w: Window = "Mon:00:00-Mon:00:01".parse().unwrap();
        assert!(w.is_open(MONDAY));
        assert!(!w.is_open(MONDAY - 1));
    }

    #[test]
    fn windows_parse_and_print_back() {
        let pattern = regex::Regex::new(WINDOW_PATTERN).unwrap();
        for text in [
            "Sat:01:00-Sat:06:00",
            "01:00-06:00",
            "Sun:23:00-Mon:02:00",
            "22:00-02:00",
        ] {
            let w: Window = text.parse().unwrap();
            assert_eq!(w.to_string(), text);
        }
        for bad in [
            "",
            "Sat 01:00-06:00",
            "25:00-01:00",
            "Sat:01:00-06:00",
            "01:60-02:00",
            "Fri:1:00-Fri:2:00",
            "mon:01:00-mon:02:00",
        ] {
            assert!(bad.parse::<Window>().is_err(), "{bad}");
            assert!(!pattern.is_match(bad), "pattern {bad}");
        }
        for good in ["Sat:01:00-Sat:06:00", "01:00-06:00", "23:59-00:00"] {
            assert!(pattern.is_match(good), "pattern {good}");
        }
    }

    #[test]
    fn standing_says_when_the_next_window_opens() {
        let parse = |list: &[&str]| {
            parse_all(&list.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
        };
        let cases = [
            (
                "no windows: always open",
                parse(&[]),
                at(0, 12, 0),
                Standing::Open,
            ),
            (
                "inside a weekly window",
                parse(&["Mon:10:00-Mon:14:00"]),
                at(0, 12, 0),
                Standing::Open,
            ),
            (
                "at its start",
                parse(&["Mon:12:00-Mon:14:00"]),
                at(0, 12, 0),
                Standing::Open,
            ),
            (
                "at its end: closed, next week",
                parse(&["Mon:10:00-Mon:12:00"]),
                at(0, 12, 0),
                Standing::Closed {
                    opens_at: at(7, 10, 0),
                },
            ),
            (
                "before a weekly window",
                parse(&["Sat:01:00-Sat:06:00"]),
                at(0, 12, 0),
                Standing::Closed {
                    opens_at: at(5, 1, 0),
                },
            ),
            (
                "a window wrapping the week",
                parse(&["Sun:23:00-Mon:02:00"]),
                at(0, 1, 0),
                Standing::Open,
            ),
            (
                "a daily window",
                parse(&["11:00-13:00"]),
                at(3, 12, 0),
                Standing::Open,
            ),
            (
                "after today's daily window",
                parse(&["01:00-06:00"]),
                at(3, 12, 0),
                Standing::Closed {
                    opens_at: at(4, 1, 0),
                },
            ),
            (
                "a daily window wrapping midnight",
                parse(&["22:00-02:00"]),
                at(2, 1, 30),
                Standing::Open,
            ),
            (
                "the earliest of several",
                parse(&["Sat:01:00-Sat:06:00", "13:00-14:00"]),
                at(0, 12, 0),
                Standing::Closed {
                    opens_at: at(0, 13, 0),
                },
            ),
            (
                "seconds count: half a minute before",
                parse(&["12:01-12:02"]),
                at(0, 12, 0) + 30,
                Standing::Closed {
                    opens_at: at(0, 12, 1),
                },
            ),
        ];
        for (case, windows, now, want) in cases {
            assert_eq!(standing(&windows, now), want, "{case}");
        }
    }
}
