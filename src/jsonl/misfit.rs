//! Is it JSON Lines, and is it configured right? Recognising JSONL by
//! content, and misconfigurations said once with their fix.

use std::fmt;

use super::{Fields, SharedLine};

/// True when `first_line` (a UTF-8 byte order mark and surrounding
/// whitespace allowed) is a JSON object: how `--format auto` recognises
/// JSON Lines on standard input or under another name.
pub fn looks_like_jsonl(first_line: &[u8]) -> bool {
    let body = first_line.strip_prefix("\u{FEFF}".as_bytes()).unwrap_or(first_line);
    let body = body.trim_ascii();
    body.first() == Some(&b'{') && serde_json::from_slice::<serde::de::IgnoredAny>(body).is_ok()
}

/// The names of the fields of a JSON object line, or `None` when it is not one.
pub fn field_names(line: &[u8]) -> Option<Vec<String>> {
    let text = String::from_utf8_lossy(line);
    let body = text.strip_prefix('\u{FEFF}').unwrap_or(&text);
    let Fields(raw) = serde_json::from_str(body).ok()?;
    Some(raw.into_iter().map(|(k, _)| k.into_owned()).collect())
}

/// A misconfiguration seen in the first batch of a shard: said once, with
/// the fix, instead of one error per line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Misfit {
    /// No line is a JSON object: the input is not JSON Lines.
    NotJsonl {
        /// The first non-blank line.
        line: u64,
    },
    /// Lines are JSON objects, but none has the text field.
    NoTextField {
        /// The first object's line.
        line: u64,
        /// The text field asked for.
        field: String,
        /// The fields the first object has.
        fields: Vec<String>,
    },
}

impl Misfit {
    /// Looks at a shard's first batch (line number, bytes): `None` when some
    /// line is an object with the text field.
    pub fn of(lines: &[(u64, SharedLine)], text_field: &str) -> Option<Misfit> {
        let mut first_object = None;
        for (n, raw) in lines {
            if let Some(names) = field_names(raw) {
                if names.iter().any(|k| k == text_field) {
                    return None;
                }
                first_object.get_or_insert((*n, names));
            }
        }
        match first_object {
            Some((line, fields)) => Some(Misfit::NoTextField { line, field: text_field.to_owned(), fields }),
            None => lines.first().map(|(line, _)| Misfit::NotJsonl { line: *line }),
        }
    }

    /// True for a wrong option (every shard would fail the same way).
    pub fn is_config(&self) -> bool {
        matches!(self, Misfit::NoTextField { .. })
    }
}

impl fmt::Display for Misfit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Misfit::NotJsonl { line } => write!(
                f,
                "not JSON Lines: line {line} is not a JSON object, nor is any line after it in the first batch \
                 (a text file? use --format text, or --format auto to choose by file name); nothing was written for it"
            ),
            Misfit::NoTextField { line, field, fields } => {
                let names: Vec<String> = fields.iter().map(|n| format!("{n:?}")).collect();
                write!(
                    f,
                    "no record of the first batch has a \"{field}\" field; the first (line {line}) has {}: \
                     name the text field with --text-field",
                    if names.is_empty() { "no field".to_owned() } else { format!("fields {}", names.join(", ")) }
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jsonl_is_recognised_by_content() {
        assert!(looks_like_jsonl(b"\xEF\xBB\xBF {\"text\":\"a\"}\r\n"));
        assert!(!looks_like_jsonl(b"{not json\n"));
        assert!(!looks_like_jsonl(b"[1,2]\n"));
    }

    #[test]
    fn misfits_are_named_with_the_fields_seen() {
        let lines =
            |ls: &[&str]| ls.iter().zip(1..).map(|(l, n)| (n, l.as_bytes().to_vec().into())).collect::<Vec<_>>();
        assert_eq!(Misfit::of(&lines(&["A text file.", "Second line."]), "text"), Some(Misfit::NotJsonl { line: 1 }));
        let wrong = Misfit::of(&lines(&["junk", r#"{"id":1,"body":"x"}"#]), "text").unwrap();
        assert!(wrong.is_config());
        assert!(wrong.to_string().contains(r#"the first (line 2) has fields "id", "body""#), "{wrong}");
        assert_eq!(Misfit::of(&lines(&["junk", r#"{"text":"x"}"#]), "text"), None);
    }
}
