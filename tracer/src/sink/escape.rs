//! Strings from the kernel and from containers are untrusted: nothing they contain may reach a
//! terminal as a control character or escape sequence, reorder what it shows, break a line
//! where it shows none, or hide in a name unseen.

use std::fmt::Write as _;

/// Make `s` safe to print on a terminal: control characters (C0, DEL, C1) as escapes (`\x1b`,
/// `\u{9b}`), and as `\u{..}` the invisible characters of [`is_invisible`] too (bidirectional
/// controls, U+2028/U+2029, zero-width and other invisible format characters); backslashes
/// are doubled so escapes stay unambiguous.
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
            c if (0x80..0xa0).contains(&(c as u32)) || is_invisible(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

/// Unicode bidirectional controls (embeddings, overrides, isolates, marks): they reorder what
/// a terminal shows.
pub(crate) fn is_bidi_control(c: char) -> bool {
    matches!(c as u32, 0x202a..=0x202e | 0x2066..=0x2069 | 0x200e | 0x200f | 0x061c)
}

/// U+2028 LINE SEPARATOR and U+2029 PARAGRAPH SEPARATOR: line breaks to some terminals, editors
/// and log readers (and to JavaScript before ES2019).
pub(crate) fn is_line_separator(c: char) -> bool {
    matches!(c as u32, 0x2028 | 0x2029)
}

/// Characters that show as nothing: zero width space, non-joiner and joiner (U+200B..U+200D),
/// word joiner and the invisible operators (U+2060..U+2064), the deprecated format controls
/// (U+206A..U+206F) and U+2065, the Mongolian vowel separator (U+180E), the byte order mark /
/// zero width no-break space (U+FEFF), and the interlinear annotation controls
/// (U+FFF9..U+FFFB). Two names that differ only by them look the same.
pub(crate) fn is_zero_width(c: char) -> bool {
    matches!(
        c as u32,
        0x200b..=0x200d | 0x2060..=0x2065 | 0x206a..=0x206f | 0x180e | 0xfeff | 0xfff9..=0xfffb
    )
}

/// What [`terminal`] escapes besides control characters, and NDJSON escapes as `\uXXXX`:
/// characters that are invisible yet change how text shows or reads.
pub(crate) fn is_invisible(c: char) -> bool {
    is_bidi_control(c) || is_line_separator(c) || is_zero_width(c)
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
    fn escapes_every_bidi_control() {
        assert_eq!(
            terminal("a\u{202a}\u{202b}\u{202c}\u{202d}\u{202e}b"),
            "a\\u{202a}\\u{202b}\\u{202c}\\u{202d}\\u{202e}b"
        );
        assert_eq!(
            terminal("a\u{2066}\u{2067}\u{2068}\u{2069}b"),
            "a\\u{2066}\\u{2067}\\u{2068}\\u{2069}b"
        );
        assert_eq!(
            terminal("\u{200e}\u{200f}\u{61c}"),
            "\\u{200e}\\u{200f}\\u{61c}"
        );
        // The classic spoof: `cod\u{202e}gnp.exe` shows as `codexe.png`.
        assert_eq!(terminal("cod\u{202e}gnp.exe"), "cod\\u{202e}gnp.exe");
    }

    #[test]
    fn escapes_line_and_paragraph_separators() {
        assert_eq!(
            terminal("one\u{2028}two\u{2029}three"),
            "one\\u{2028}two\\u{2029}three"
        );
    }

    #[test]
    fn escapes_zero_width_characters() {
        assert_eq!(
            terminal("w\u{200b}e\u{200c}b\u{200d}"),
            "w\\u{200b}e\\u{200c}b\\u{200d}"
        );
        assert_eq!(
            terminal("\u{2060}\u{2061}\u{2062}\u{2063}\u{2064}"),
            "\\u{2060}\\u{2061}\\u{2062}\\u{2063}\\u{2064}"
        );
        assert_eq!(terminal("\u{feff}web"), "\\u{feff}web");
        assert_eq!(terminal("a\u{180e}b"), "a\\u{180e}b");
        assert_eq!(terminal("\u{206a}\u{206f}"), "\\u{206a}\\u{206f}");
        assert_eq!(terminal("\u{fff9}\u{fffb}"), "\\u{fff9}\\u{fffb}");
        // Two names that look the same on a terminal no longer print the same.
        assert_ne!(terminal("web"), terminal("w\u{200b}eb"));
    }

    #[test]
    fn visible_neighbours_stay() {
        // Next to the escaped ranges, but visible: spaces, dashes, quotes, ellipsis, the
        // replacement character, non-Latin letters.
        let s = "\u{2000}\u{2010}\u{2019}\u{2026}\u{202f}\u{2070}\u{fffd}\u{5d0}\u{627}\u{1820}";
        assert_eq!(terminal(s), s);
    }

    #[test]
    fn output_has_no_control_or_invisible_chars() {
        let all: String = (0u32..=0x10ffff).filter_map(char::from_u32).collect();
        let out = terminal(&all);
        assert!(!out.chars().any(|c| c.is_control() || is_invisible(c)));
        // Every class in is_invisible is escaped, not dropped.
        for c in all.chars().filter(|&c| is_invisible(c)) {
            assert_eq!(terminal(&c.to_string()), format!("\\u{{{:x}}}", c as u32));
        }
    }
}
