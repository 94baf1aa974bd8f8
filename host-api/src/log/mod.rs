//! `airlock:step/log` and the run's log: one ordered, capped record of the
//! step's log lines, stdout and stderr.
//!
//! Why one sink for all three: a reader of a run's log wants them in the
//! order they happened, and a flood through any of them must spend the same
//! budget, or a guest could dodge the cap by switching streams.
//!
//! Past the cap the sink keeps what fit, appends a marker line, and every
//! further write fails with [`HostLimitError::Output`], which traps the guest.
//!
//! Every entry costs its stored size plus [`ENTRY_OVERHEAD`], so the cap
//! bounds the log however it is written (empty entries included).
//!
//! Every line passes through the run's [`Redactor`] before it is kept:
//! stdout/stderr through a [`StreamRedactor`] per stream, so a secret split
//! across two writes, or across the cut of an endless line, is still masked.
//! [`LogSink::finish`] masks the kept entries once more, as one text, with
//! the final set of values: a value registered after a line was written, or
//! split across entries (two `log` calls, stdout then stderr), is masked
//! too.

mod host;
pub mod live;

pub use host::Log;
pub use live::LiveTap;

use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde::Serialize;

use crate::HostLimitError;
use crate::redact::{Redactor, StreamRedactor};

/// A log line's level, as the guest chose it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

impl From<crate::bindings::log::Level> for LogLevel {
    fn from(l: crate::bindings::log::Level) -> Self {
        use crate::bindings::log::Level;
        match l {
            Level::Trace => Self::Trace,
            Level::Debug => Self::Debug,
            Level::Info => Self::Info,
            Level::Warn => Self::Warn,
            Level::Error => Self::Error,
        }
    }
}

impl std::fmt::Display for LogLevel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Trace => "TRACE",
            Self::Debug => "DEBUG",
            Self::Info => "INFO",
            Self::Warn => "WARN",
            Self::Error => "ERROR",
        })
    }
}

/// Where a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase", tag = "source", content = "level")]
pub enum Source {
    Stdout,
    Stderr,
    Log(LogLevel),
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Stdout => f.write_str("stdout"),
            Self::Stderr => f.write_str("stderr"),
            Self::Log(level) => level.fmt(f),
        }
    }
}

/// One entry of a run's log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogLine {
    #[serde(flatten)]
    pub source: Source,
    /// Milliseconds since the run's sink was created.
    pub elapsed_ms: u64,
    pub text: String,
}

/// The two WASI output streams a guest can write raw bytes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StdStream {
    Stdout,
    Stderr,
}

/// A raw stdout/stderr line longer than this without a newline is cut into
/// lines of this size, so one endless line cannot hide from the log.
const MAX_PARTIAL_LINE: usize = 16 * 1024;

/// What each entry costs on top of its text: about what one entry takes in
/// a stored record (`{"source":"stdout","elapsed_ms":12,"text":""}`) and in
/// memory. Why: counting text bytes alone let a step write millions of empty
/// entries, each free, into one run record.
pub const ENTRY_OVERHEAD: usize = 64;

/// The text appended once when the cap is reached.
pub const TRUNCATION_MARKER: &str = "[airlock: log output cap reached; the step was stopped]";

/// The run's log: shared by the `log` host impl and the WASI stdout/stderr
/// capture of the same run.
///
/// # The budget
///
/// Every entry costs [`ENTRY_OVERHEAD`] plus its text as stored: after
/// masking, JSON-escaped (a control character counts 6 bytes, `"` and `\`
/// count 2). The sum over the run, with what stdout and stderr hold for
/// lines not yet ended, never exceeds the cap, so the log's size in memory,
/// in the run record and on a terminal is bounded by the cap whatever the
/// guest writes (at most `cap / 64` entries).
///
/// # Order
///
/// Entries are kept in the order they were written. A write to one source
/// ends the line another source left open (`print!("a"); eprintln!("b")` is
/// two lines, `a` then `b`), so the log reads as one stream, and a value
/// split across writes to different sources sits in consecutive entries,
/// where [`LogSink::finish`] masks it.
#[derive(Debug)]
pub struct LogSink {
    started: Instant,
    cap: usize,
    redactor: Arc<Redactor>,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    lines: Vec<LogLine>,
    /// Cost of the entries in `lines`.
    used: usize,
    exceeded: bool,
    stdout: Partial,
    stderr: Partial,
    /// The live feed, when the host follows the log as it is written.
    feed: Option<live::Feed>,
}

/// A stdout/stderr line in the making: raw bytes not yet decoded, and
/// decoded text the stream redactor holds back.
#[derive(Debug, Default)]
struct Partial {
    bytes: Vec<u8>,
    redactor: StreamRedactor,
    /// What the held text costs (as an entry of its own).
    charged: usize,
}

impl Partial {
    fn is_empty(&self) -> bool {
        self.bytes.is_empty() && self.redactor.is_empty()
    }

    /// Recomputes `charged` for what is still held.
    fn recharge(&mut self) {
        self.charged = if self.is_empty() {
            0
        } else {
            ENTRY_OVERHEAD
                + stored_len(&self.bytes)
                + stored_len(self.redactor.pending().as_bytes())
        };
    }
}

/// Bytes `text` takes inside a JSON string as serde_json writes it.
fn stored_len(text: &[u8]) -> usize {
    text.iter()
        .map(|&b| match b {
            b'"' | b'\\' | b'\n' | b'\r' | b'\t' | 0x08 | 0x0c => 2,
            0..=0x1f => 6,
            _ => 1,
        })
        .sum()
}

/// The longest prefix of `text` (on a char boundary) whose stored length
/// is at most `budget`.
fn prefix_within(text: &str, budget: usize) -> &str {
    let mut spent = 0;
    for (i, c) in text.char_indices() {
        let mut buf = [0; 4];
        spent += stored_len(c.encode_utf8(&mut buf).as_bytes());
        if spent > budget {
            return &text[..i];
        }
    }
    text
}

impl LogSink {
    /// A sink that accepts at most `cap` bytes of log (see the type docs for
    /// how entries are counted) and masks what `redactor` knows.
    pub fn new(cap: usize, redactor: Arc<Redactor>) -> Self {
        Self {
            started: Instant::now(),
            cap,
            redactor,
            inner: Mutex::new(Inner::default()),
        }
    }

    /// Also hands every line to `tap` as soon as it is final (see
    /// [`live`]), and the end of the log at [`finish`](Self::finish).
    pub fn with_live(self, tap: Arc<dyn LiveTap>) -> Self {
        self.lock().feed = Some(live::Feed::new(tap));
        self
    }

    /// The run's redactor, shared with every host call of the run.
    pub fn redactor(&self) -> &Arc<Redactor> {
        &self.redactor
    }

    /// Appends one complete line (from the `log` interface).
    pub fn push_line(&self, source: Source, text: String) -> Result<(), HostLimitError> {
        let mut inner = self.lock();
        let result = self.push_line_locked(&mut inner, source, text);
        self.feed(&mut inner);
        result
    }

    fn push_line_locked(
        &self,
        inner: &mut Inner,
        source: Source,
        text: String,
    ) -> Result<(), HostLimitError> {
        if inner.exceeded {
            return Err(HostLimitError::Output { cap: self.cap });
        }
        let elapsed_ms = self.elapsed_ms();
        self.end_open_lines(inner, None, elapsed_ms);
        // Mask the whole line first, then cut: cutting first could split a
        // secret so that neither half matches, keeping its prefix.
        let text = self.redactor.redact(&text).into_owned();
        if !self.keep(inner, source, elapsed_ms, text) {
            self.mark_exceeded(inner);
            return Err(HostLimitError::Output { cap: self.cap });
        }
        Ok(())
    }

    /// Appends raw bytes written to stdout or stderr; they become lines at
    /// each newline.
    pub fn write_stream(&self, stream: StdStream, bytes: &[u8]) -> Result<(), HostLimitError> {
        let mut inner = self.lock();
        let result = self.write_stream_locked(&mut inner, stream, bytes);
        self.feed(&mut inner);
        result
    }

    fn write_stream_locked(
        &self,
        inner: &mut Inner,
        stream: StdStream,
        bytes: &[u8],
    ) -> Result<(), HostLimitError> {
        if inner.exceeded {
            return Err(HostLimitError::Output { cap: self.cap });
        }
        let elapsed_ms = self.elapsed_ms();
        self.end_open_lines(inner, Some(stream), elapsed_ms);
        // Each byte costs at least one: what fits is at most the room left.
        let room = self.room(inner);
        let fitted = bytes.len().min(room);
        let whole = self.buffer_bytes(inner, stream, &bytes[..fitted], elapsed_ms);
        if !whole || fitted < bytes.len() || self.room_signed(inner) < 0 {
            self.mark_exceeded(inner);
            return Err(HostLimitError::Output { cap: self.cap });
        }
        Ok(())
    }

    /// The log's cost so far (entries kept plus lines still open).
    pub fn bytes_used(&self) -> usize {
        let inner = self.lock();
        self.spent(&inner).min(self.cap)
    }

    /// Whether the cap was reached.
    pub fn exceeded(&self) -> bool {
        self.lock().exceeded
    }

    /// Ends the open stdout/stderr lines and returns every line so far,
    /// masked with every value registered by now, and across entries: a
    /// value split over consecutive entries is masked in each.
    pub fn finish(&self) -> Vec<LogLine> {
        let mut inner = self.lock();
        let elapsed_ms = self.elapsed_ms();
        self.end_open_lines(&mut inner, None, elapsed_ms);
        let mut lines = std::mem::take(&mut inner.lines);
        let mut texts: Vec<String> = lines
            .iter_mut()
            .map(|l| std::mem::take(&mut l.text))
            .collect();
        self.redactor.redact_pieces(&mut texts);
        for (line, text) in lines.iter_mut().zip(texts) {
            line.text = text;
        }
        if let Some(feed) = inner.feed.as_mut() {
            feed.finish(&lines);
        }
        lines
    }

    /// Hands the lines that became final to the live feed, if any.
    fn feed(&self, inner: &mut Inner) {
        let Inner { lines, feed, .. } = inner;
        if let Some(feed) = feed.as_mut() {
            feed.release(lines, &self.redactor);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A poisoned sink still holds valid lines; keep serving them.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn elapsed_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    fn spent(&self, inner: &Inner) -> usize {
        inner.used + inner.stdout.charged + inner.stderr.charged
    }

    fn room(&self, inner: &Inner) -> usize {
        self.cap.saturating_sub(self.spent(inner))
    }

    fn room_signed(&self, inner: &Inner) -> isize {
        self.cap as isize - self.spent(inner) as isize
    }

    /// Keeps one entry if its cost fits; otherwise keeps the prefix that
    /// fits (if any) and returns false.
    fn keep(&self, inner: &mut Inner, source: Source, elapsed_ms: u64, text: String) -> bool {
        let room = self.room(inner);
        let cost = ENTRY_OVERHEAD + stored_len(text.as_bytes());
        if cost <= room {
            inner.used += cost;
            inner.lines.push(LogLine {
                source,
                elapsed_ms,
                text,
            });
            return true;
        }
        if room > ENTRY_OVERHEAD {
            let cut = prefix_within(&text, room - ENTRY_OVERHEAD);
            if !cut.is_empty() {
                inner.used += ENTRY_OVERHEAD + stored_len(cut.as_bytes());
                inner.lines.push(LogLine {
                    source,
                    elapsed_ms,
                    text: cut.to_string(),
                });
            }
        }
        false
    }

    /// Ends the lines stdout and stderr hold open, except `except`'s: a
    /// write from another source comes after them.
    fn end_open_lines(&self, inner: &mut Inner, except: Option<StdStream>, elapsed_ms: u64) {
        for stream in [StdStream::Stdout, StdStream::Stderr] {
            if Some(stream) != except && !partial_mut(inner, stream).is_empty() {
                self.end_line(inner, stream, elapsed_ms);
            }
        }
    }

    fn mark_exceeded(&self, inner: &mut Inner) {
        inner.exceeded = true;
        let elapsed_ms = self.elapsed_ms();
        for stream in [StdStream::Stdout, StdStream::Stderr] {
            self.end_line_at_cap(inner, stream, elapsed_ms);
        }
        inner.lines.push(LogLine {
            source: Source::Stderr,
            elapsed_ms,
            text: TRUNCATION_MARKER.to_string(),
        });
    }

    /// Buffers stream bytes, ending lines at newlines and cutting endless
    /// ones; false when a line did not fit the budget.
    fn buffer_bytes(
        &self,
        inner: &mut Inner,
        stream: StdStream,
        mut bytes: &[u8],
        elapsed_ms: u64,
    ) -> bool {
        while !bytes.is_empty() {
            let partial = partial_mut(inner, stream);
            let (chunk, ends_line) = match bytes.iter().position(|&b| b == b'\n') {
                Some(nl) => (&bytes[..nl], Some(nl + 1)),
                None => {
                    let room = MAX_PARTIAL_LINE - partial.bytes.len();
                    (&bytes[..bytes.len().min(room)], None)
                }
            };
            if partial.is_empty() {
                partial.charged = ENTRY_OVERHEAD;
            }
            partial.charged += stored_len(chunk);
            partial.bytes.extend_from_slice(chunk);
            let fits = match ends_line {
                Some(consumed) => {
                    bytes = &bytes[consumed..];
                    self.end_line(inner, stream, elapsed_ms)
                }
                None => {
                    bytes = &bytes[chunk.len()..];
                    if partial_mut(inner, stream).bytes.len() >= MAX_PARTIAL_LINE {
                        self.cut_line(inner, stream, elapsed_ms)
                    } else {
                        true
                    }
                }
            };
            if !fits {
                return false;
            }
        }
        true
    }

    /// A newline (or the end of the run): the whole line is final.
    fn end_line(&self, inner: &mut Inner, stream: StdStream, elapsed_ms: u64) -> bool {
        let partial = partial_mut(inner, stream);
        let bytes = std::mem::take(&mut partial.bytes);
        let mut text = partial
            .redactor
            .push(&self.redactor, &String::from_utf8_lossy(&bytes));
        text.push_str(&partial.redactor.finish(&self.redactor));
        partial.charged = 0;
        if text.ends_with('\r') {
            text.pop();
        }
        self.keep(inner, stream.source(), elapsed_ms, text)
    }

    /// The cap cut the stream: keep what is final and fits, and drop what
    /// the stream redactor holds back — it may be the start of a secret
    /// whose rest was cut off, which would no longer match as a whole.
    fn end_line_at_cap(&self, inner: &mut Inner, stream: StdStream, elapsed_ms: u64) {
        let partial = partial_mut(inner, stream);
        let bytes = std::mem::take(&mut partial.bytes);
        let text = partial
            .redactor
            .push(&self.redactor, &String::from_utf8_lossy(&bytes));
        partial.redactor = StreamRedactor::new();
        partial.charged = 0;
        if !text.is_empty() {
            self.keep(inner, stream.source(), elapsed_ms, text);
        }
    }

    /// An endless line reached the cut size: emit what the stream redactor
    /// says is final, keeping any incomplete UTF-8 character and any text
    /// that may still turn out to be part of a secret.
    fn cut_line(&self, inner: &mut Inner, stream: StdStream, elapsed_ms: u64) -> bool {
        let partial = partial_mut(inner, stream);
        let valid = match std::str::from_utf8(&partial.bytes) {
            Ok(_) => partial.bytes.len(),
            Err(e) if e.error_len().is_none() => e.valid_up_to(),
            Err(_) => partial.bytes.len(),
        };
        let rest = partial.bytes.split_off(valid);
        let bytes = std::mem::replace(&mut partial.bytes, rest);
        let text = partial
            .redactor
            .push(&self.redactor, &String::from_utf8_lossy(&bytes));
        partial.recharge();
        if text.is_empty() {
            return true;
        }
        self.keep(inner, stream.source(), elapsed_ms, text)
    }
}

impl StdStream {
    fn source(self) -> Source {
        match self {
            Self::Stdout => Source::Stdout,
            Self::Stderr => Source::Stderr,
        }
    }
}

fn partial_mut(inner: &mut Inner, stream: StdStream) -> &mut Partial {
    match stream {
        StdStream::Stdout => &mut inner.stdout,
        StdStream::Stderr => &mut inner.stderr,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_bytes_become_lines_at_newlines_across_writes() {
        let sink = LogSink::new(1024, Arc::default());
        sink.write_stream(StdStream::Stdout, b"hel").unwrap();
        sink.write_stream(StdStream::Stdout, b"lo\nwor").unwrap();
        sink.write_stream(StdStream::Stdout, b"ld\n").unwrap();
        let lines = sink.finish();
        let texts: Vec<_> = lines.iter().map(|l| (l.source, l.text.as_str())).collect();
        assert_eq!(
            texts,
            vec![(Source::Stdout, "hello"), (Source::Stdout, "world")]
        );
    }

    #[test]
    fn a_write_from_another_source_ends_the_open_line() {
        let sink = LogSink::new(1024, Arc::default());
        sink.write_stream(StdStream::Stdout, b"wor").unwrap();
        sink.write_stream(StdStream::Stderr, b"oops\n").unwrap();
        sink.write_stream(StdStream::Stdout, b"ld").unwrap();
        sink.push_line(Source::Log(LogLevel::Info), "logged".into())
            .unwrap();
        let lines = sink.finish();
        let texts: Vec<_> = lines.iter().map(|l| (l.source, l.text.as_str())).collect();
        assert_eq!(
            texts,
            vec![
                (Source::Stdout, "wor"),
                (Source::Stderr, "oops"),
                (Source::Stdout, "ld"),
                (Source::Log(LogLevel::Info), "logged"),
            ]
        );
    }

    #[test]
    fn cap_keeps_what_fits_then_refuses_everything() {
        let cap = 2 * ENTRY_OVERHEAD + 10;
        let sink = LogSink::new(cap, Arc::default());
        sink.write_stream(StdStream::Stdout, b"12345\n").unwrap();
        let err = sink
            .write_stream(StdStream::Stdout, b"67890abc\n")
            .unwrap_err();
        assert_eq!(err, HostLimitError::Output { cap });
        assert!(sink.exceeded());
        assert!(
            sink.push_line(Source::Log(LogLevel::Info), "x".into())
                .is_err()
        );
        let lines = sink.finish();
        assert_eq!(lines[0].text, "12345");
        assert_eq!(lines[1].text, "67890");
        assert_eq!(lines.last().unwrap().text, TRUNCATION_MARKER);
        assert_eq!(sink.bytes_used(), cap);
    }

    #[test]
    fn empty_entries_spend_the_budget() {
        let cap = 64 * 1024;
        for source in ["log", "stdout"] {
            let sink = LogSink::new(cap, Arc::default());
            let mut accepted = 0usize;
            loop {
                let r = match source {
                    "log" => sink.push_line(Source::Log(LogLevel::Info), String::new()),
                    _ => sink.write_stream(StdStream::Stdout, b"\n"),
                };
                if r.is_err() {
                    break;
                }
                accepted += 1;
                assert!(accepted <= cap / ENTRY_OVERHEAD, "{source}: unbounded");
            }
            let lines = sink.finish();
            assert!(lines.len() <= cap / ENTRY_OVERHEAD + 1, "{source}");
            assert_eq!(lines.last().unwrap().text, TRUNCATION_MARKER);
        }
    }

    #[test]
    fn entries_cost_what_they_take_when_stored() {
        // A control character is six bytes in a JSON record.
        let sink = LogSink::new(ENTRY_OVERHEAD + 60, Arc::default());
        sink.push_line(Source::Log(LogLevel::Info), "\u{1}".repeat(10))
            .unwrap();
        assert_eq!(sink.bytes_used(), ENTRY_OVERHEAD + 60);
        let lines = sink.finish();
        let stored = serde_json::to_string(&lines[0].text).unwrap();
        assert_eq!(stored.len() - 2, 60);
    }

    #[test]
    fn the_stored_log_never_outgrows_the_cap() {
        let cap = 256 * 1024;
        let sink = LogSink::new(cap, Arc::default());
        let mut i = 0u32;
        loop {
            let r = match i % 4 {
                0 => sink.push_line(Source::Log(LogLevel::Warn), "\u{7}\"".into()),
                1 => sink.write_stream(StdStream::Stdout, b"\x01\x02\n"),
                2 => sink.write_stream(StdStream::Stderr, b"\\"),
                _ => sink.push_line(Source::Log(LogLevel::Info), String::new()),
            };
            if r.is_err() {
                break;
            }
            i += 1;
        }
        let stored = serde_json::to_string(&sink.finish()).unwrap();
        // The entries' own JSON is at most the cap (the marker line aside).
        assert!(stored.len() <= cap + 200, "{} > {cap}", stored.len());
    }

    #[test]
    fn an_endless_line_is_cut_into_bounded_lines() {
        let sink = LogSink::new(1 << 20, Arc::default());
        sink.write_stream(StdStream::Stdout, &vec![b'a'; MAX_PARTIAL_LINE * 2 + 5])
            .unwrap();
        let lines = sink.finish();
        assert_eq!(lines.len(), 3);
        assert!(lines.iter().all(|l| l.text.len() <= MAX_PARTIAL_LINE));
    }

    const SECRET: &str = "hunter2-correct-horse";

    fn sink_with_secret() -> LogSink {
        let redactor = Arc::new(Redactor::new());
        assert!(redactor.register("PW", SECRET));
        LogSink::new(1 << 20, redactor)
    }

    #[test]
    fn a_secret_split_across_writes_is_masked() {
        let sink = sink_with_secret();
        sink.write_stream(StdStream::Stdout, b"pw=hunter2-cor")
            .unwrap();
        sink.write_stream(StdStream::Stdout, b"rect-horse!\n")
            .unwrap();
        sink.push_line(Source::Log(LogLevel::Info), format!("log {SECRET}"))
            .unwrap();
        let lines = sink.finish();
        assert_eq!(lines[0].text, "pw=[REDACTED:PW]!");
        assert_eq!(lines[1].text, "log [REDACTED:PW]");
    }

    #[test]
    fn the_cap_never_keeps_part_of_a_secret() {
        // Every cut position inside the secret, on both paths.
        for cap in 4..SECRET.len() + 8 {
            let redactor = Arc::new(Redactor::new());
            assert!(redactor.register("PW", SECRET));
            let sink = LogSink::new(cap, redactor.clone());
            let _ = sink.write_stream(StdStream::Stdout, format!("a{SECRET} tail").as_bytes());
            let sink2 = LogSink::new(cap, redactor);
            let _ = sink2.push_line(Source::Log(LogLevel::Info), format!("b{SECRET} tail"));
            for lines in [sink.finish(), sink2.finish()] {
                let all: String = lines.into_iter().map(|l| l.text).collect();
                for w in SECRET.as_bytes().windows(6) {
                    let w = std::str::from_utf8(w).unwrap();
                    assert!(!all.contains(w), "cap {cap}: {w:?} kept in {all:?}");
                }
            }
        }
    }

    #[test]
    fn a_secret_split_across_log_calls_and_sources_is_masked() {
        let (a, b) = SECRET.split_at(9);
        let sink = sink_with_secret();
        sink.push_line(Source::Log(LogLevel::Info), format!("one {a}"))
            .unwrap();
        sink.push_line(Source::Log(LogLevel::Warn), format!("{b} two"))
            .unwrap();
        sink.write_stream(StdStream::Stdout, format!("three {a}").as_bytes())
            .unwrap();
        sink.write_stream(StdStream::Stderr, format!("{b} four\n").as_bytes())
            .unwrap();
        let texts: Vec<String> = sink.finish().into_iter().map(|l| l.text).collect();
        assert_eq!(
            texts,
            [
                "one [REDACTED:PW]",
                "[REDACTED:PW] two",
                "three [REDACTED:PW]",
                "[REDACTED:PW] four"
            ]
        );
    }

    #[test]
    fn a_secret_across_the_cut_of_an_endless_line_is_masked() {
        for offset in [1, 5, 10, 20] {
            let sink = sink_with_secret();
            let mut flood = vec![b'a'; MAX_PARTIAL_LINE - offset];
            flood.extend_from_slice(SECRET.as_bytes());
            flood.extend_from_slice(&vec![b'b'; MAX_PARTIAL_LINE]);
            sink.write_stream(StdStream::Stdout, &flood).unwrap();
            let all: String = sink.finish().into_iter().map(|l| l.text).collect();
            assert!(!all.contains("hunter2"), "offset {offset}");
            assert!(!all.contains("horse"), "offset {offset}");
            assert!(all.contains("[REDACTED:PW]"), "offset {offset}");
        }
    }
}
