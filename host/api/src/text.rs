//! The one function every message goes through before it reaches a
//! condition, an Event or a log line: [`bounded`].
//!
//! Messages carry text from outside the operator (a console's stderr, a
//! Cartridge error, a reply that did not parse). Whoever can edit a Cluster
//! must not be able to read anything through them that the operator saw, nor
//! forge a second line on a terminal: so the text is bounded and control
//! characters are replaced. What a console said is reduced to Cartridge's
//! error class and text before it gets here (see the cartridge crate's
//! `console::reduce`); this is the last line of defence.

/// The bound of a condition message and an Event note, in bytes: far below
/// the CRD's `maxLength` of a condition message ([`CONDITION_MESSAGE_MAX_LENGTH`])
/// and the 1 KiB Kubernetes keeps of an Event note, and enough for one
/// sentence naming a pod and Cartridge's error.
pub const MESSAGE_MAX: usize = 1024;

/// The `maxLength` of a condition message in the CRDs: metav1's own bound
/// (32768), so the apiserver refuses a status no operator should write.
pub const CONDITION_MESSAGE_MAX_LENGTH: u64 = 32768;

/// What ends a message cut at its bound.
const ELLIPSIS: &str = "...";

/// `text` with every control character (C0, DEL, C1, and the Unicode bidi
/// and line/paragraph separators that reorder or break a terminal line)
/// replaced by a space, runs of whitespace folded into one space, and cut
/// (at a character boundary, ending in `...`) to at most `max` bytes.
pub fn bounded(text: &str, max: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max));
    let mut space = false;
    for c in text.chars() {
        let c = if is_unsafe(c) || c.is_whitespace() {
            ' '
        } else {
            c
        };
        if c == ' ' {
            if space || out.is_empty() {
                continue;
            }
            space = true;
        } else {
            space = false;
        }
        if out.len() + c.len_utf8() > max {
            return cut(out, max);
        }
        out.push(c);
    }
    out.truncate(out.trim_end().len());
    out
}

/// [`bounded`] at [`MESSAGE_MAX`].
pub fn message(text: &str) -> String {
    bounded(text, MESSAGE_MAX)
}

/// `out` (already at most `max` bytes) ending in the ellipsis within `max`.
fn cut(mut out: String, max: usize) -> String {
    let keep = max.saturating_sub(ELLIPSIS.len());
    let mut end = keep.min(out.len());
    while !out.is_char_boundary(end) {
        end -= 1;
    }
    out.truncate(end);
    out.truncate(out.trim_end().len());
    if max >= ELLIPSIS.len() {
        out.push_str(ELLIPSIS);
    }
    out
}

/// Characters that control a terminal or reorder text.
fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{200E}' | '\u{200F}'            // LRM, RLM
            | '\u{2028}' | '\u{2029}'          // line, paragraph separators
            | '\u{202A}'..='\u{202E}'          // bidi embeddings and overrides
            | '\u{2066}'..='\u{2069}'          // bidi isolates
            | '\u{FEFF}' // BOM, zero-width no-break space
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_stripped_folded_and_bounded() {
        let long = "x".repeat(2000);
        let cases: &[(&str, &str, usize, &str)] = &[
            ("plain", "Cartridge refused it", 100, "Cartridge refused it"),
            (
                "newlines fold",
                "a\nforged: line\r\n",
                100,
                "a forged: line",
            ),
            (
                "escapes go",
                "red \u{1b}[31mtext\u{1b}[0m",
                100,
                "red [31mtext [0m",
            ),
            ("C1 and DEL", "a\u{9b}b\u{7f}c", 100, "a b c"),
            ("bidi override", "abc\u{202E}fed", 100, "abc fed"),
            ("tabs fold", "a\t\t b", 100, "a b"),
            ("leading space", "  \n a", 100, "a"),
            ("exact fit", "abcdef", 6, "abcdef"),
            ("cut with ellipsis", "abcdefgh", 6, "abc..."),
            ("cut at a char boundary", "ééééé", 6, "é..."),
            ("tiny bound", "abcdef", 2, ""),
            ("empty", "", 10, ""),
            ("long", &long, MESSAGE_MAX, ""),
        ];
        for (name, input, max, want) in cases {
            let got = bounded(input, *max);
            assert!(got.len() <= *max, "{name}: {} > {max}", got.len());
            assert!(!got.chars().any(is_unsafe), "{name}: {got:?}");
            if *name == "long" {
                assert!(got.ends_with(ELLIPSIS), "{name}");
                assert_eq!(got.len(), MESSAGE_MAX, "{name}");
            } else {
                assert_eq!(&got, want, "{name}");
            }
        }
    }

    #[test]
    fn a_megabyte_of_anything_stays_under_the_bound() {
        let junk: String = (0..1024 * 1024)
            .map(|i: u64| char::from_u32(((i * 7919) % 0x3000) as u32).unwrap_or('?'))
            .collect();
        let got = message(&junk);
        assert!(got.len() <= MESSAGE_MAX);
        assert!(!got.chars().any(is_unsafe));
    }
}
