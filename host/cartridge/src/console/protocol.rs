//! The text protocol of Tarantool's admin console, as the operator uses it.
//!
//! # Chunks
//!
//! Every Lua chunk the operator runs is sent as ONE line:
//!
//! ```lua
//! return assert(loadstring(require('digest').base64_decode('<chunk>'), '=<name>'))(require('json').decode(require('digest').base64_decode('<args>')))
//! ```
//!
//! Why one base64 line rather than the chunk itself or a
//! `require('console').delimiter(...)` preamble:
//!
//! - The console reads one statement per line on its socket, but
//!   `tarantoolctl connect` fed on stdin reads ALL of stdin and sends it as
//!   one chunk, and `tt connect` has its own rules. A single line is one
//!   statement under every one of them.
//! - A delimiter is session state: it would have to be set and reset, and a
//!   chunk failing in between leaves the session in an odd mode.
//! - base64 has no character that needs quoting in Lua or in a shell, so the
//!   same line also works as a command-line argument (the fallback when stdin
//!   cannot be closed through exec) and survives any quoting of the chunk's
//!   own strings. `digest.base64_decode` exists in every Tarantool since 1.6.
//! - `loadstring(..., '=name')` names the chunk, so Lua errors read
//!   `name:12: message` instead of quoting the chunk's source.
//!
//! Arguments travel as JSON (also base64) and are decoded inside the
//! instance; results come back as ONE JSON string (`return
//! json.encode(projection)`), so Tarantool's YAML is only a thin envelope and
//! the Rust side decodes plain JSON.
//!
//! # Replies
//!
//! A reply is one YAML document: `---\n- value\n- value\n...\n` (an empty
//! `---\n...\n` for no values). A Lua error is `---\n- error: message\n...\n`.
//! `tarantoolctl connect` prints the reply on stdout, or, on a Lua error,
//! "Error while executing remote command:" and the message on stderr and exits
//! with code 3.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::ConsoleError;

/// Length of the greeting a console sends on connect (two 64-byte lines).
pub(crate) const GREETING_LEN: usize = 128;

/// What `tarantoolctl connect` writes to stderr before a Lua error's message.
pub(crate) const TARANTOOLCTL_ERROR_MARKER: &str = "Error while executing remote command:";

/// The end of a YAML document as the console writes it.
const DOCUMENT_END: &[u8] = b"\n...\n";

/// The one-line statement that runs `code` (a Lua chunk, any number of lines)
/// with `args_json` (a JSON text, decoded in the instance and passed as the
/// chunk's `...`). `name` names the chunk in Lua error messages; characters
/// other than ASCII letters, digits, `_`, `-` and `.` are replaced.
///
/// The line ends in `\n` (the console's statement terminator).
pub(crate) fn encode_chunk(name: &str, code: &str, args_json: Option<&str>) -> String {
    let name: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let args = match args_json {
        Some(json) => format!(
            "require('json').decode(require('digest').base64_decode('{}'))",
            STANDARD.encode(json)
        ),
        None => String::new(),
    };
    format!(
        "return assert(loadstring(require('digest').base64_decode('{}'), '={name}'))({args})\n",
        STANDARD.encode(code)
    )
}

/// Checks the 128-byte greeting of a console socket.
pub(crate) fn check_greeting(greeting: &[u8]) -> Result<(), ConsoleError> {
    let text = String::from_utf8_lossy(greeting);
    let first = text.lines().next().unwrap_or_default().trim_end();
    if !first.starts_with("Tarantool ") {
        return Err(ConsoleError::Protocol {
            message: format!("not a Tarantool greeting: {:?}", truncate(first, 80)),
        });
    }
    if !first.contains("(Lua console)") {
        // e.g. "Tarantool 2.6.0 (Binary) <uuid>": the iproto port, not the
        // console socket.
        return Err(ConsoleError::Protocol {
            message: format!("not a Lua console: {:?}", truncate(first, 80)),
        });
    }
    Ok(())
}

/// Whether `buf` holds a complete reply document (it ends where the console
/// ends one). Lines inside a value are indented, so `\n...\n` at the end can
/// only be the document end.
pub(crate) fn is_complete_document(buf: &[u8]) -> bool {
    buf == b"---\n...\n" || (buf.starts_with(b"---") && buf.ends_with(DOCUMENT_END))
}

/// Whether what arrived so far can still become a reply (used to fail fast
/// on garbage instead of waiting for a document end that never comes).
pub(crate) fn may_become_document(buf: &[u8]) -> bool {
    let n = buf.len().min(3);
    buf[..n] == b"---"[..n]
}

/// Parses a reply (one YAML document holding a sequence) into its values.
/// `- error: message` as the only value becomes [`ConsoleError::Lua`].
pub(crate) fn parse_reply(reply: &[u8]) -> Result<Vec<serde_yaml::Value>, ConsoleError> {
    let text = std::str::from_utf8(reply).map_err(|e| ConsoleError::Protocol {
        message: format!("reply is not UTF-8: {e}"),
    })?;
    let trimmed = text.trim();
    if !trimmed.starts_with("---") || !trimmed.ends_with("...") {
        return Err(ConsoleError::Protocol {
            // The reply itself stays out of the message: it may be anything
            // the command printed.
            message: format!("reply is not a YAML document ({} bytes)", reply.len()),
        });
    }
    let value: serde_yaml::Value =
        serde_yaml::from_str(trimmed).map_err(|e| ConsoleError::Protocol {
            message: format!(
                "reply is not valid YAML ({} bytes): {}",
                reply.len(),
                yaml_error_location(&e)
            ),
        })?;
    let values = match value {
        serde_yaml::Value::Null => Vec::new(),
        serde_yaml::Value::Sequence(values) => values,
        other => {
            return Err(ConsoleError::Protocol {
                message: format!("reply is not a list of values but {}", yaml_kind(&other)),
            });
        }
    };
    if let [serde_yaml::Value::Mapping(map)] = values.as_slice()
        && map.len() == 1
        && let Some(error) = map.get("error")
    {
        return Err(ConsoleError::Lua {
            message: yaml_to_message(error),
        });
    }
    Ok(values)
}

/// The message of a Lua error as `tarantoolctl connect` reports it on stderr,
/// if stderr holds one.
pub(crate) fn tarantoolctl_error(stderr: &str) -> Option<String> {
    let at = stderr.find(TARANTOOLCTL_ERROR_MARKER)?;
    Some(
        stderr[at + TARANTOOLCTL_ERROR_MARKER.len()..]
            .trim()
            .to_string(),
    )
}

/// The single JSON string a chunk returns (`return json.encode(...)`).
pub(crate) fn single_string(values: Vec<serde_yaml::Value>) -> Result<String, ConsoleError> {
    let mut values = values.into_iter();
    match (values.next(), values.next()) {
        (Some(serde_yaml::Value::String(s)), None) => Ok(s),
        (first, second) => Err(ConsoleError::Protocol {
            message: format!(
                "expected one JSON string, got {}",
                match (first, second) {
                    (None, _) => "no value".to_string(),
                    (Some(_), Some(_)) => "several values".to_string(),
                    (Some(v), None) => yaml_kind(&v).to_string(),
                }
            ),
        }),
    }
}

/// What kind of YAML value `v` is, for messages that must not quote it.
fn yaml_kind(v: &serde_yaml::Value) -> &'static str {
    match v {
        serde_yaml::Value::Null => "null",
        serde_yaml::Value::Bool(_) => "a boolean",
        serde_yaml::Value::Number(_) => "a number",
        serde_yaml::Value::String(_) => "a string",
        serde_yaml::Value::Sequence(_) => "a list",
        serde_yaml::Value::Mapping(_) => "a map",
        serde_yaml::Value::Tagged(_) => "a tagged value",
    }
}

/// Where YAML parsing failed, without the text around it.
fn yaml_error_location(e: &serde_yaml::Error) -> String {
    match e.location() {
        Some(l) => format!("error at line {}, column {}", l.line(), l.column()),
        None => "error".to_string(),
    }
}

fn yaml_to_message(value: &serde_yaml::Value) -> String {
    match value {
        serde_yaml::Value::String(s) => s.clone(),
        // `error({...})` or an error object serialized as a table.
        other => serde_yaml::to_string(other)
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|_| format!("{other:?}")),
    }
}

/// At most `max` bytes of `s`, cut at a character boundary.
pub(crate) fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// The last `max` bytes of `s` (cut at a character boundary): the end of a
/// log is where the error is.
pub(crate) fn tail(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut start = s.len() - max;
    while !s.is_char_boundary(start) {
        start += 1;
    }
    &s[start..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_is_one_line_without_quotes_to_escape() {
        let line = encode_chunk(
            "multi line/name",
            "local a = 'x'\nlocal b = \"y\\n\"\nreturn a .. b",
            Some(r#"{"k":"it's"}"#),
        );
        assert!(line.ends_with('\n'));
        assert_eq!(line.matches('\n').count(), 1);
        assert!(line.contains("'=multi_line_name'"));
        // Only the wrapper's own quotes: base64 needs none.
        assert_eq!(line.matches('\'').count(), 2 * 5 + 2);
    }

    #[test]
    fn parses_values_and_empty_documents() {
        let v = parse_reply(b"---\n- '{\"a\":1}'\n- 2\n...\n\n").unwrap();
        assert_eq!(v.len(), 2);
        assert_eq!(v[0], serde_yaml::Value::String("{\"a\":1}".into()));
        assert!(parse_reply(b"---\n...\n").unwrap().is_empty());
    }

    #[test]
    fn folded_strings_are_unfolded() {
        let reply = b"---\n- '{\"a\":\"x y z word word\n  word\"}'\n...\n";
        let v = single_string(parse_reply(reply).unwrap()).unwrap();
        assert_eq!(v, "{\"a\":\"x y z word word word\"}");
    }

    #[test]
    fn lua_errors_are_typed() {
        match parse_reply(b"---\n- error: 'multi\n\n    line'\n...\n") {
            Err(ConsoleError::Lua { message }) => assert_eq!(message, "multi\nline"),
            other => panic!("{other:?}"),
        }
        match parse_reply(b"---\n- error:\n    x: 1\n...\n") {
            Err(ConsoleError::Lua { message }) => assert_eq!(message, "x: 1"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn garbage_is_a_protocol_error() {
        for reply in [
            &b"garbage\n"[..],
            b"---\n- [unclosed\n...\n",
            b"---\nkey: value\n...\n",
            b"\xff\xfe",
            b"",
        ] {
            assert!(
                matches!(parse_reply(reply), Err(ConsoleError::Protocol { .. })),
                "{reply:?}"
            );
        }
        assert!(matches!(
            single_string(vec![serde_yaml::Value::Null]),
            Err(ConsoleError::Protocol { .. })
        ));
        assert!(may_become_document(b"--"));
        assert!(!may_become_document(b"ga"));
    }

    #[test]
    fn greetings() {
        let mut g = format!(
            "{:<63}\n{:<63}\n",
            "Tarantool 2.6.0 (Lua console)", "type 'help'"
        );
        assert!(check_greeting(g.as_bytes()).is_ok());
        g = format!("{:<63}\n{:<63}\n", "Tarantool 2.6.0 (Binary) 1234", "salt");
        assert!(check_greeting(g.as_bytes()).is_err());
        assert!(check_greeting(b"HTTP/1.1 400").is_err());
    }

    #[test]
    fn tarantoolctl_stderr() {
        let stderr =
            "connected to unix/:/x.control\nError while executing remote command:\nop:1: boom\n";
        assert_eq!(tarantoolctl_error(stderr).as_deref(), Some("op:1: boom"));
        assert_eq!(tarantoolctl_error("Can't connect"), None);
    }
}
