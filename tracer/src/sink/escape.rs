//! Strings from the kernel and from containers are untrusted: nothing they contain may reach a
//! terminal as a control character or escape sequence.

use std::fmt::Write as _;

/// Make `s` safe to print on a terminal: control characters (C0, DEL, C1) and Unicode
/// bidirectional overrides are shown as escapes; backslashes are doubled so escapes stay
/// unambiguous.
pub fn terminal(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if (0x80..0xa0).contains(&(c as u32)) || is_bidi_control(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

/// Unicode bidirectional controls (overrides, isolates, marks): they reorder what a terminal
/// shows.
pub(crate) fn is_bidi_control(c: char) -> bool {
    matches!(c as u32, 0x202a..=0x202e | 0x2066..=0x2069 | 0x200e | 0x200f | 0x061c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_controls() {
        assert_eq!(terminal("plain name-1.2"), "plain name-1.2");
        assert_eq!(terminal("a\u{1b}[31mred"), "a\\x1b[31mred");
        assert_eq!(terminal("x\ny\tz\r"), "x\\ny\\tz\\r");
        assert_eq!(terminal("\u{7f}\u{9b}"), "\\x7f\\u{9b}");
        assert_eq!(terminal("evil\u{202e}txt"), "evil\\u{202e}txt");
        assert_eq!(terminal("back\\slash"), "back\\\\slash");
        assert_eq!(terminal("ünïcödé ok"), "ünïcödé ok");
    }

    #[test]
    fn output_has_no_control_chars() {
        let all: String = (0u32..0x3000).filter_map(char::from_u32).collect();
        let out = terminal(&all);
        assert!(!out.chars().any(|c| c.is_control() || is_bidi_control(c)));
    }
}
