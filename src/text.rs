//! Text from the network, made safe to show or log.
//!
//! A peer chooses the bytes of its nick, its chat lines, its `Bye` reasons and its
//! `Hello` fields. Shown raw, a control character could drive the terminal (an ESC
//! sequence), a newline could forge a log line, and a bidi override could show a text
//! reversed. The rule (see `docs/PROTOCOL.md`, "Text from peers"):
//!
//! - **unsafe characters** are the Unicode controls (C0, DEL, C1), the bidi embeddings,
//!   overrides and isolates (U+202A-202E, U+2066-2069), the implicit marks U+061C, U+200E,
//!   U+200F, and the line and paragraph separators U+2028, U+2029;
//! - [`escape`] shows each of them as `\u{XXXX}` (and a backslash as `\\`, so an escape
//!   cannot be forged); newlines too, except where a caller keeps them ([`escape_multiline`]
//!   for chat text, whose rows are drawn separately);
//! - the app refuses ops whose text holds one (see [`is_unsafe`]), so they never reach the
//!   screen; everything else a peer says (names, reasons, errors) is escaped where it
//!   enters this node.
//!
//! A leaf module: no dependencies, used by the transport, the node, the TUI, headless mode
//! and logs alike.

use std::borrow::Cow;
use std::fmt;

/// Whether `c` must never reach a terminal or a log as it is: a control character, a bidi
/// control, or a line/paragraph separator.
pub fn is_unsafe(c: char) -> bool {
    c.is_control() || is_bidi_control(c) || matches!(c, '\u{2028}' | '\u{2029}')
}

/// Whether `c` changes the direction of the text around it (embeddings, overrides,
/// isolates, and the implicit direction marks).
pub fn is_bidi_control(c: char) -> bool {
    matches!(
        c,
        '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
    )
}

/// The first unsafe character of `s`, if any (for a clear refusal).
pub fn find_unsafe(s: &str) -> Option<char> {
    s.chars().find(|&c| is_unsafe(c))
}

/// `s` with every unsafe character (newlines included) written as `\u{XXXX}` and every
/// backslash doubled; borrowed when nothing needed escaping.
pub fn escape(s: &str) -> Cow<'_, str> {
    escape_with(s, false)
}

/// Like [`escape`], but newlines are kept (chat text shown on several rows).
pub fn escape_multiline(s: &str) -> Cow<'_, str> {
    escape_with(s, true)
}

fn escape_with(s: &str, keep_newlines: bool) -> Cow<'_, str> {
    let needs = |c: char| c == '\\' || (is_unsafe(c) && !(keep_newlines && c == '\n'));
    if !s.chars().any(needs) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if c == '\\' {
            out.push_str("\\\\");
        } else if needs(c) {
            out.push_str(&format!("\\u{{{:04x}}}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// A `Display` that escapes its text as [`escape`] does, for log fields:
/// `tracing::info!(name = %text::Escaped(&name))`.
#[derive(Debug, Clone, Copy)]
pub struct Escaped<'a>(pub &'a str);

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&escape(self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn plain_text_is_borrowed_unchanged() {
        assert!(matches!(
            escape("héllo, 世界 👋"),
            Cow::Borrowed("héllo, 世界 👋")
        ));
        // Right-to-left scripts need no control characters and stay as they are.
        assert_eq!(escape("שלום"), "שלום");
    }

    #[test]
    fn controls_bidi_and_separators_are_escaped() {
        assert_eq!(escape("a\u{1b}[2Jb"), "a\\u{001b}[2Jb");
        assert_eq!(escape("evil\u{202e}gnp.exe"), "evil\\u{202e}gnp.exe");
        assert_eq!(escape("x\u{2066}y\u{2069}"), "x\\u{2066}y\\u{2069}");
        assert_eq!(escape("l1\nl2\r"), "l1\\u{000a}l2\\u{000d}");
        assert_eq!(escape("\u{85}\u{2028}"), "\\u{0085}\\u{2028}");
        assert_eq!(escape("\u{7f}"), "\\u{007f}");
    }

    #[test]
    fn an_escape_cannot_be_forged_with_a_backslash() {
        assert_eq!(escape("\\u{202e}"), "\\\\u{202e}");
    }

    #[test]
    fn multiline_keeps_newlines_only() {
        assert_eq!(escape_multiline("a\nb\u{1b}"), "a\nb\\u{001b}");
    }

    #[test]
    fn escaped_displays_the_escape() {
        assert_eq!(
            Escaped("bye\n2026-12-01 INFO forged").to_string(),
            "bye\\u{000a}2026-12-01 INFO forged"
        );
    }

    proptest! {
        #[test]
        fn escaped_text_holds_no_unsafe_character(s in any::<String>()) {
            prop_assert_eq!(find_unsafe(&escape(&s)), None);
            let multi = escape_multiline(&s);
            prop_assert!(multi.chars().all(|c| c == '\n' || !is_unsafe(c)));
        }
    }
}
