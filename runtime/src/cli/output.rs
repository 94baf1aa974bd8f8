//! Human output: tables, times, colours, and text from the server made safe
//! for a terminal; `--json` output.
//!
//! Why escaping: log lines, error messages and names come from the server,
//! and much of that from a step, which is untrusted. Printed raw, an escape
//! sequence in a log line could rewrite the terminal (move the cursor, hide
//! text, set the title, in some terminals worse). Every string from the
//! server goes through [`escape`] before it reaches a terminal: control
//! characters (C0, DEL, C1) and the bidirectional overrides become visible
//! `\u{…}` escapes. JSON output keeps JSON's own escapes and escapes the
//! characters serde_json leaves raw ([`escape_json`]).

use std::borrow::Cow;
use std::io::Write as _;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

use crate::cli::exit;
use crate::cli::remote::{CliResult, Failure};

/// Bidirectional embeddings, overrides and isolates: they reorder what a
/// terminal shows ("Trojan Source").
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}')
}

fn unsafe_char(c: char) -> bool {
    c.is_control() || is_bidi_control(c)
}

/// `text` with every control character, newlines and tabs included,
/// written as `\n`, `\t` or `\u{…}`: one line, safe for a terminal.
pub fn escape(text: &str) -> Cow<'_, str> {
    if !text.chars().any(unsafe_char) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if unsafe_char(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Like [`escape`] but keeps line breaks: for multi-line text (a manifest).
pub fn escape_lines(text: &str) -> String {
    text.split('\n')
        .map(|l| escape(l).into_owned())
        .collect::<Vec<_>>()
        .join("\n")
}

/// serde_json's text with the characters it leaves raw inside strings
/// (DEL, C1 controls, bidi controls) escaped as `\uXXXX`: still the same
/// JSON, safe for a terminal. Outside strings serde_json writes ASCII only,
/// and a raw newline is always its pretty-printing (inside strings it
/// writes `\n`), so newlines stay.
pub fn escape_json(json: String) -> String {
    let unsafe_in_json = |c: char| c != '\n' && unsafe_char(c);
    if !json.chars().any(unsafe_in_json) {
        return json;
    }
    let mut out = String::with_capacity(json.len() + 16);
    for c in json.chars() {
        if unsafe_in_json(c) {
            out.push_str(&format!("\\u{:04x}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

/// Prints `value` as pretty JSON on stdout.
pub fn print_json<T: Serialize + ?Sized>(value: &T) -> CliResult<()> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| Failure::new(exit::INTERNAL, format!("cannot write JSON: {e}")))?;
    println!("{}", escape_json(text));
    Ok(())
}

/// A value as compact JSON, escaped for a terminal (a run's output).
pub fn compact_json<T: Serialize + ?Sized>(value: &T) -> String {
    escape_json(serde_json::to_string(value).unwrap_or_default())
}

/// A table with a header row, columns aligned; cells are escaped.
pub struct Table {
    rows: Vec<Vec<String>>,
    header: bool,
}

impl Table {
    pub fn new(header: &[&str]) -> Self {
        Self {
            rows: vec![header.iter().map(|h| (*h).to_owned()).collect()],
            header: true,
        }
    }

    /// Name–value lines without a header, for `show`.
    pub fn fields() -> Self {
        Self {
            rows: Vec::new(),
            header: false,
        }
    }

    pub fn field(&mut self, name: &str, value: impl Into<String>) {
        self.rows.push(vec![format!("{name}:"), value.into()]);
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub fn is_empty(&self) -> bool {
        self.rows.len() == usize::from(self.header)
    }

    /// The table as text, each line ending in `\n`.
    pub fn render(&self) -> String {
        let mut tw = tabwriter::TabWriter::new(Vec::new()).padding(3);
        for row in &self.rows {
            let line: Vec<Cow<'_, str>> = row.iter().map(|c| escape(c)).collect();
            let _ = writeln!(tw, "{}", line.join("\t"));
        }
        let bytes = tw.into_inner().unwrap_or_default();
        // Trailing spaces of the last column are noise.
        String::from_utf8_lossy(&bytes)
            .lines()
            .map(|l| format!("{}\n", l.trim_end()))
            .collect()
    }

    /// Prints the table, or `empty` on stderr when it has no rows.
    pub fn print_or(&self, empty: &str) {
        if self.is_empty() {
            eprintln!("{empty}");
        } else {
            print!("{}", self.render());
        }
    }
}

/// `t` as `2026-12-01T08:53:00Z`.
pub fn absolute(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// `t` relative to `now`: "just now", "42 s ago", "3 min ago", "5 h ago",
/// "2 days ago", or "in 3 min" for a future time.
pub fn relative(t: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let secs = (now - t).num_seconds();
    let (amount, future) = (secs.unsigned_abs(), secs < 0);
    if amount < 5 {
        return "just now".to_owned();
    }
    let span = match amount {
        s if s < 60 => format!("{s} s"),
        s if s < 3600 => format!("{} min", s / 60),
        s if s < 86_400 => format!("{} h", s / 3600),
        s if s < 2 * 86_400 => "1 day".to_owned(),
        s => format!("{} days", s / 86_400),
    };
    if future {
        format!("in {span}")
    } else {
        format!("{span} ago")
    }
}

/// `t` as the user asked: relative by default, absolute with `--absolute`.
pub fn when(t: DateTime<Utc>, absolute_times: bool) -> String {
    if absolute_times {
        absolute(t)
    } else {
        relative(t, Utc::now())
    }
}

/// Both, for `show`: `2026-12-01T08:53:00Z (3 min ago)`.
pub fn when_both(t: DateTime<Utc>) -> String {
    format!("{} ({})", absolute(t), relative(t, Utc::now()))
}

/// A digest shortened for a table: `sha256:` and 12 hex digits.
pub fn short_digest(digest: &str) -> String {
    match digest.strip_prefix("sha256:") {
        Some(hex) => format!("sha256:{}", hex.chars().take(12).collect::<String>()),
        None => digest.chars().take(19).collect(),
    }
}

/// Colours for stdout, on only where anstream would colour: a terminal (or
/// CLICOLOR_FORCE), never with NO_COLOR.
#[derive(Debug, Clone, Copy)]
pub struct Palette {
    enabled: bool,
}

impl Palette {
    pub fn stdout() -> Self {
        let choice = anstream::AutoStream::choice(&std::io::stdout());
        Self {
            enabled: !matches!(choice, anstream::ColorChoice::Never),
        }
    }

    /// `text` in `style` when colours are on.
    pub fn paint(&self, style: anstyle::Style, text: &str) -> String {
        if self.enabled {
            format!("{}{text}{}", style.render(), style.render_reset())
        } else {
            text.to_owned()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_make_control_characters_visible() {
        assert_eq!(escape("plain ünïcode"), "plain ünïcode");
        assert_eq!(escape("a\x1b[2Jb"), "a\\u{1b}[2Jb");
        assert_eq!(escape("x\ny\tz\r"), "x\\ny\\tz\\r");
        assert_eq!(
            escape("\u{9b}31m \u{7f} \u{202e}"),
            "\\u{9b}31m \\u{7f} \\u{202e}"
        );
        assert_eq!(escape_lines("a\n\x07b"), "a\n\\u{7}b");
    }

    #[test]
    fn json_stays_json_and_safe() {
        let text =
            serde_json::to_string(&serde_json::json!({"t": "\u{1b}[31m\u{9b}\u{202e}"})).unwrap();
        let safe = escape_json(text);
        assert!(!safe.chars().any(unsafe_char), "{safe}");
        let back: serde_json::Value = serde_json::from_str(&safe).unwrap();
        assert_eq!(back["t"], "\u{1b}[31m\u{9b}\u{202e}");
    }

    #[test]
    fn relative_times_read_like_people_say_them() {
        let now = DateTime::parse_from_rfc3339("2026-12-01T12:00:00Z")
            .unwrap()
            .to_utc();
        let ago = |s: i64| relative(now - chrono::Duration::seconds(s), now);
        assert_eq!(ago(2), "just now");
        assert_eq!(ago(42), "42 s ago");
        assert_eq!(ago(3 * 60 + 5), "3 min ago");
        assert_eq!(ago(5 * 3600), "5 h ago");
        assert_eq!(ago(30 * 3600), "1 day ago");
        assert_eq!(ago(3 * 86_400), "3 days ago");
        assert_eq!(ago(-180), "in 3 min");
    }

    #[test]
    fn tables_align_and_escape() {
        let mut t = Table::new(&["ID", "NAME"]);
        t.row(vec!["1".into(), "a\x1bb".into()]);
        t.row(vec!["12345".into(), "c".into()]);
        assert_eq!(t.render(), "ID      NAME\n1       a\\u{1b}b\n12345   c\n");
    }
}
