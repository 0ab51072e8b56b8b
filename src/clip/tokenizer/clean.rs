//! open_clip's text cleaning, which runs before both of its tokenizers: `ftfy.fix_text`, then
//! `html.unescape` twice, then whitespace collapsing.
//!
//! ftfy's deterministic fixes are reproduced here: HTML entities ending in `;` (repeated until
//! nothing changes, and only in lines before the first `<`), C1 controls read as Windows-1252,
//! Latin ligatures, full/half-width forms, curly quotes, line breaks, terminal escapes, control
//! characters and NFC. Its mojibake repair (`fix_encoding`, guessing that UTF-8 was decoded as
//! Latin-1 or Windows-1252) is heuristic and is not reproduced: text that *is* mojibake ("Ã©")
//! tokenizes as written here, and as ftfy's guess there.

use unicode_normalization::UnicodeNormalization;

/// ftfy's `LIGATURES`.
fn ligature(c: char) -> Option<&'static str> {
    Some(match c {
        '\u{132}' => "IJ",
        '\u{133}' => "ij",
        '\u{149}' => "\u{2bc}n",
        '\u{1f1}' => "DZ",
        '\u{1f2}' => "Dz",
        '\u{1f3}' => "dz",
        '\u{1c4}' => "D\u{17d}",
        '\u{1c5}' => "D\u{17e}",
        '\u{1c6}' => "d\u{17e}",
        '\u{1c7}' => "LJ",
        '\u{1c8}' => "Lj",
        '\u{1c9}' => "lj",
        '\u{1ca}' => "NJ",
        '\u{1cb}' => "Nj",
        '\u{1cc}' => "nj",
        '\u{fb00}' => "ff",
        '\u{fb01}' => "fi",
        '\u{fb02}' => "fl",
        '\u{fb03}' => "ffi",
        '\u{fb04}' => "ffl",
        '\u{fb05}' => "\u{17f}t",
        '\u{fb06}' => "st",
        _ => return None,
    })
}

/// Windows-1252 for the C1 range, "sloppy": undefined bytes keep their Latin-1 code point.
fn windows_1252(c: char) -> char {
    const TABLE: [char; 32] = [
        '€', '\u{81}', '‚', 'ƒ', '„', '…', '†', '‡', 'ˆ', '‰', 'Š', '‹', 'Œ', '\u{8d}', 'Ž',
        '\u{8f}', '\u{90}', '‘', '’', '“', '”', '•', '–', '—', '˜', '™', 'š', '›', 'œ', '\u{9d}',
        'ž', 'Ÿ',
    ];
    TABLE[c as usize - 0x80]
}

/// ftfy's `CONTROL_CHARS`.
fn is_removed_control(c: char) -> bool {
    matches!(c as u32,
        0x00..=0x08 | 0x0b | 0x0e..=0x1f | 0x7f | 0x206a..=0x206f | 0xfeff | 0xfff9..=0xfffc)
}

fn push_width_fixed(out: &mut String, c: char) {
    match c as u32 {
        0x3000 => out.push(' '),
        0xff01..=0xffef => out.extend(std::iter::once(c).nfkc()),
        _ => out.push(c),
    }
}

/// Entities that end in `;` and name something (ftfy leaves "this&not that" alone).
fn unescape_terminated_entities(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find('&') {
        out.push_str(&rest[..start]);
        let candidate = &rest[start..];
        let body_len = candidate[1..]
            .char_indices()
            .take_while(|&(index, c)| c.is_ascii_alphanumeric() || (index == 0 && c == '#'))
            .map(|(index, c)| index + c.len_utf8())
            .last()
            .unwrap_or(0);
        let name_len = body_len - usize::from(candidate[1..].starts_with('#'));
        if (1..=24).contains(&name_len) && candidate[1 + body_len..].starts_with(';') {
            let entity = &candidate[..body_len + 2];
            let decoded = htmlize::unescape(entity);
            if decoded != entity && !decoded.contains(';') {
                out.push_str(&decoded);
                rest = &candidate[entity.len()..];
                continue;
            }
        }
        out.push('&');
        rest = &candidate[1..];
    }
    out.push_str(rest);
    out
}

fn remove_terminal_escapes(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.char_indices().peekable();
    while let Some((index, c)) = chars.next() {
        if c == '\u{1b}' && text[index + 1..].starts_with('[') {
            let tail = &text[index + 2..];
            let params = tail
                .chars()
                .take_while(|c| c.is_ascii_digit() || *c == ';')
                .count();
            if tail[params..]
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic())
            {
                for _ in 0..params + 2 {
                    chars.next();
                }
                continue;
            }
        }
        out.push(c);
    }
    out
}

/// One pass of ftfy's fixers over a segment (a line).
fn fix_once(segment: &str, unescape: bool) -> String {
    let text = if unescape {
        unescape_terminated_entities(segment)
    } else {
        segment.to_string()
    };
    let mut fixed = String::with_capacity(text.len());
    for c in text.chars() {
        let c = if ('\u{80}'..='\u{9f}').contains(&c) {
            windows_1252(c)
        } else {
            c
        };
        if let Some(replacement) = ligature(c) {
            fixed.push_str(replacement);
            continue;
        }
        let c = match c {
            '\u{2bc}' | '\u{2018}'..='\u{201b}' => '\'',
            '\u{201c}'..='\u{201f}' => '"',
            _ => c,
        };
        push_width_fixed(&mut fixed, c);
    }
    let fixed = fixed
        .replace("\r\n", "\n")
        .replace(['\r', '\u{2028}', '\u{2029}', '\u{85}'], "\n");
    let fixed: String = remove_terminal_escapes(&fixed)
        .chars()
        .filter(|&c| !is_removed_control(c))
        .collect();
    fixed.nfc().collect()
}

/// `ftfy.fix_text` with default settings, less mojibake repair (see the module note).
pub fn fix_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut unescape = true;
    for segment in text.split_inclusive('\n') {
        // ftfy's "auto": once a line looks like HTML, entities are left for the rest of the text.
        if segment.contains('<') {
            unescape = false;
        }
        let mut current = segment.to_string();
        loop {
            let next = fix_once(&current, unescape);
            if next == current {
                break;
            }
            current = next;
        }
        out.push_str(&current);
    }
    out
}

/// open_clip's `basic_clean`: ftfy, then `html.unescape` twice, then strip.
pub fn basic_clean(text: &str) -> String {
    let fixed = fix_text(text);
    let once = htmlize::unescape(fixed.as_str()).into_owned();
    let twice = htmlize::unescape(once.as_str()).into_owned();
    twice.trim().to_string()
}

/// open_clip's `whitespace_clean`: runs of whitespace become one space.
pub fn whitespace_clean(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixes_what_ftfy_fixes() {
        assert_eq!(fix_text("“curly” ‘quotes’"), "\"curly\" 'quotes'");
        assert_eq!(fix_text("ﬁbrosis"), "fibrosis");
        assert_eq!(fix_text("ＭＲＩ　１２"), "MRI 12");
        assert_eq!(fix_text("a\u{0}b\u{feff}c"), "abc");
        assert_eq!(fix_text("e\u{301}"), "é");
        assert_eq!(fix_text("&amp;amp;amp; x"), "& x");
        assert_eq!(fix_text("<b>&amp;</b>"), "<b>&amp;</b>");
        assert_eq!(fix_text("this&not that"), "this&not that");
        assert_eq!(fix_text("\u{1b}[31mred\u{1b}[0m"), "red");
        assert_eq!(fix_text("\u{93}quoted\u{94}"), "\"quoted\"");
    }

    #[test]
    fn basic_clean_unescapes_html_twice_and_strips() {
        assert_eq!(basic_clean("  <i>&amp;amp;</i> "), "<i>&</i>");
        assert_eq!(whitespace_clean("a \t b\n\nc"), "a b c");
    }
}
