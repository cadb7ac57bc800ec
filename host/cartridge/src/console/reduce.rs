//! What of a console's output may reach an error message (and from there a
//! condition, an Event or a log line).
//!
//! A console command's stdout and stderr are whatever the command printed:
//! with a Cluster's own command (when the operator allows it), or an image
//! whose `sh` or `tarantoolctl` is not what it seems, that can be a token or
//! a password. So no raw output is quoted. What is kept:
//!
//! - a Lua error's first line, which the operator's chunks make
//!   `<admin function>: <Cartridge error class>: <text>` (stack traces and
//!   anything after the first line go);
//! - one line of a command failure the operator recognises (the console
//!   client cannot connect, the command is missing, permission denied);
//!
//! and everything else is summarised by its size. Each kept line is bounded
//! and stripped of control characters ([`crate::api::text::bounded`]); the
//! controllers bound the whole message again where it becomes a condition
//! or an Event.

use crate::api::text;

/// The bound of one kept line, in bytes.
pub const LINE_MAX: usize = 512;

/// Failures of the console client or the shell, as they print them: the
/// line holding one is kept.
const KNOWN_FAILURES: &[&str] = &[
    // tarantoolctl connect, tt connect
    "Failed to connect to Tarantool",
    "failed to connect",
    "Connection refused",
    "No such file or directory",
    // sh: exec: tarantoolctl: not found
    ": not found",
    "command not found",
    "Permission denied",
    "executable file not found",
];

/// A Lua error as reported by the console: its first line, bounded.
pub fn lua_error(message: &str) -> String {
    let first = message
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("");
    text::bounded(first, LINE_MAX)
}

/// What a failed console command printed, reduced: the last line naming a
/// known failure, else only how much it printed.
pub fn command_failure(output: &str) -> String {
    let known = output
        .lines()
        .rev()
        .map(str::trim)
        .find(|line| KNOWN_FAILURES.iter().any(|k| line.contains(k)));
    match known {
        Some(line) => text::bounded(line, LINE_MAX),
        None if output.trim().is_empty() => "it printed nothing".to_string(),
        None => format!(
            "its output ({} bytes) is withheld: not a failure the operator recognises",
            output.len()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "eyJhbGciOiJSUzI1NiIsImtpZCI6InNlY3JldCJ9.c2VjcmV0.c2lnbmF0dXJl";

    #[test]
    fn command_failures_keep_only_what_is_recognised() {
        let megabyte = format!("{TOKEN}\n").repeat(16 * 1024);
        let cases: &[(&str, String, &str)] = &[
            ("nothing", String::new(), "it printed nothing"),
            (
                "tarantoolctl without its socket",
                "Failed to connect to Tarantool\n".into(),
                "Failed to connect to Tarantool",
            ),
            (
                "a missing client",
                "sh: 1: exec: tarantoolctl: not found\n".into(),
                "sh: 1: exec: tarantoolctl: not found",
            ),
            (
                "the last known line wins, the rest goes",
                format!("{TOKEN}\nconnect: Connection refused\n{TOKEN}\n"),
                "connect: Connection refused",
            ),
            (
                "a token alone is withheld",
                format!("{TOKEN}\n"),
                "its output (63 bytes) is withheld: not a failure the operator recognises",
            ),
            (
                "escapes in a known line are stripped",
                "\u{1b}[31mFailed to connect to Tarantool\u{1b}[0m\rforged".into(),
                "[31mFailed to connect to Tarantool [0m forged",
            ),
        ];
        for (name, output, want) in cases {
            assert_eq!(command_failure(output), *want, "{name}");
        }
        let got = command_failure(&megabyte);
        assert!(!got.contains(TOKEN), "{got}");
        assert!(got.len() <= LINE_MAX, "{got}");
    }

    #[test]
    fn lua_errors_keep_their_first_line() {
        let long = format!("edit: X: {}", "y".repeat(5000));
        let cases: &[(&str, &str, &str)] = &[
            (
                "a Cartridge refusal",
                "failover_set_params: FailoverSetParamsError: Cluster isn't bootstrapped yet",
                "failover_set_params: FailoverSetParamsError: Cluster isn't bootstrapped yet",
            ),
            (
                "a stack trace goes",
                "edit: Invalid cluster topology config: bad\nstack traceback:\n\t[C]: in ?",
                "edit: Invalid cluster topology config: bad",
            ),
            ("leading blank lines", "\n\n  x: y", "x: y"),
            ("empty", "", ""),
        ];
        for (name, message, want) in cases {
            assert_eq!(lua_error(message), *want, "{name}");
        }
        assert!(lua_error(&long).len() <= LINE_MAX);
    }
}
