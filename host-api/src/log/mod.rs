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
//! Every line passes through the run's [`Redactor`] before it is kept:
//! stdout/stderr through a [`StreamRedactor`] per stream, so a secret split
//! across two writes, or across the cut of an endless line, is still masked.
//! [`LogSink::finish`] masks every kept line once more with the final set of
//! values, in case one was registered after a line was written.

mod host;

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

/// The text appended once when the cap is reached.
pub const TRUNCATION_MARKER: &str = "[airlock: log output cap reached; the step was stopped]";

/// The run's log: shared by the `log` host impl and the WASI stdout/stderr
/// capture of the same run.
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
    used: usize,
    exceeded: bool,
    stdout: Partial,
    stderr: Partial,
}

/// A stdout/stderr line in the making: raw bytes not yet decoded, and
/// decoded text the stream redactor holds back.
#[derive(Debug, Default)]
struct Partial {
    bytes: Vec<u8>,
    redactor: StreamRedactor,
}

impl LogSink {
    /// A sink that accepts at most `cap` bytes of log text in total and
    /// masks what `redactor` knows.
    pub fn new(cap: usize, redactor: Arc<Redactor>) -> Self {
        Self {
            started: Instant::now(),
            cap,
            redactor,
            inner: Mutex::new(Inner::default()),
        }
    }

    /// The run's redactor, shared with every host call of the run.
    pub fn redactor(&self) -> &Arc<Redactor> {
        &self.redactor
    }

    /// Appends one complete line (from the `log` interface).
    pub fn push_line(&self, source: Source, text: String) -> Result<(), HostLimitError> {
        let mut inner = self.lock();
        let fitted = self.charge(&mut inner, text.len())?;
        let elapsed_ms = self.elapsed_ms();
        if fitted < text.len() {
            // Mask the whole line first, then cut: cutting first could split
            // a secret so that neither half matches, keeping its prefix.
            let masked = self.redactor.redact(&text);
            let cut = floor_char_boundary(&masked, fitted.min(masked.len()));
            let text = masked[..cut].to_string();
            inner.lines.push(LogLine {
                source,
                elapsed_ms,
                text,
            });
            self.mark_exceeded(&mut inner);
            return Err(HostLimitError::Output { cap: self.cap });
        }
        let text = self.redactor.redact(&text).into_owned();
        inner.lines.push(LogLine {
            source,
            elapsed_ms,
            text,
        });
        Ok(())
    }

    /// Appends raw bytes written to stdout or stderr; they become lines at
    /// each newline.
    pub fn write_stream(&self, stream: StdStream, bytes: &[u8]) -> Result<(), HostLimitError> {
        let mut inner = self.lock();
        let fitted = self.charge(&mut inner, bytes.len())?;
        self.buffer_bytes(&mut inner, stream, &bytes[..fitted]);
        if fitted < bytes.len() {
            self.mark_exceeded(&mut inner);
            return Err(HostLimitError::Output { cap: self.cap });
        }
        Ok(())
    }

    /// Total bytes accepted so far.
    pub fn bytes_used(&self) -> usize {
        self.lock().used
    }

    /// Whether the cap was reached.
    pub fn exceeded(&self) -> bool {
        self.lock().exceeded
    }

    /// Flushes partial stdout/stderr lines and returns every line so far,
    /// masked with every value registered by now.
    pub fn finish(&self) -> Vec<LogLine> {
        let mut inner = self.lock();
        let elapsed_ms = self.elapsed_ms();
        for stream in [StdStream::Stdout, StdStream::Stderr] {
            self.end_line(&mut inner, stream, elapsed_ms);
        }
        let mut lines = std::mem::take(&mut inner.lines);
        for line in &mut lines {
            if let std::borrow::Cow::Owned(masked) = self.redactor.redact(&line.text) {
                line.text = masked;
            }
        }
        lines
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A poisoned sink still holds valid lines; keep serving them.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn elapsed_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// Spends up to `len` bytes of budget; returns how many fit.
    fn charge(&self, inner: &mut Inner, len: usize) -> Result<usize, HostLimitError> {
        if inner.exceeded {
            return Err(HostLimitError::Output { cap: self.cap });
        }
        let fitted = len.min(self.cap - inner.used);
        inner.used += fitted;
        Ok(fitted)
    }

    fn mark_exceeded(&self, inner: &mut Inner) {
        let elapsed_ms = self.elapsed_ms();
        for stream in [StdStream::Stdout, StdStream::Stderr] {
            self.end_line_at_cap(inner, stream, elapsed_ms);
        }
        inner.exceeded = true;
        inner.lines.push(LogLine {
            source: Source::Stderr,
            elapsed_ms,
            text: TRUNCATION_MARKER.to_string(),
        });
    }

    fn buffer_bytes(&self, inner: &mut Inner, stream: StdStream, mut bytes: &[u8]) {
        let elapsed_ms = self.elapsed_ms();
        while !bytes.is_empty() {
            let partial = partial_mut(inner, stream);
            match bytes.iter().position(|&b| b == b'\n') {
                Some(nl) => {
                    partial.bytes.extend_from_slice(&bytes[..nl]);
                    bytes = &bytes[nl + 1..];
                    self.end_line(inner, stream, elapsed_ms);
                }
                None => {
                    let room = MAX_PARTIAL_LINE - partial.bytes.len();
                    let take = bytes.len().min(room);
                    partial.bytes.extend_from_slice(&bytes[..take]);
                    bytes = &bytes[take..];
                    if partial.bytes.len() >= MAX_PARTIAL_LINE {
                        self.cut_line(inner, stream, elapsed_ms);
                    }
                }
            }
        }
    }

    /// A newline (or the end of the run): the whole line is final.
    fn end_line(&self, inner: &mut Inner, stream: StdStream, elapsed_ms: u64) {
        let partial = partial_mut(inner, stream);
        if partial.bytes.is_empty() && partial.redactor.is_empty() {
            return;
        }
        let bytes = std::mem::take(&mut partial.bytes);
        let mut text = partial
            .redactor
            .push(&self.redactor, &String::from_utf8_lossy(&bytes));
        text.push_str(&partial.redactor.finish(&self.redactor));
        if text.ends_with('\r') {
            text.pop();
        }
        push_stream_line(inner, stream, elapsed_ms, text);
    }

    /// The cap cut the stream: emit what is final, and drop what the stream
    /// redactor holds back — it may be the start of a secret whose rest was
    /// cut off, which would no longer match as a whole.
    fn end_line_at_cap(&self, inner: &mut Inner, stream: StdStream, elapsed_ms: u64) {
        let partial = partial_mut(inner, stream);
        let bytes = std::mem::take(&mut partial.bytes);
        let text = partial
            .redactor
            .push(&self.redactor, &String::from_utf8_lossy(&bytes));
        partial.redactor = StreamRedactor::new();
        if !text.is_empty() {
            push_stream_line(inner, stream, elapsed_ms, text);
        }
    }

    /// An endless line reached the cut size: emit what the stream redactor
    /// says is final, keeping any incomplete UTF-8 character and any text
    /// that may still turn out to be part of a secret.
    fn cut_line(&self, inner: &mut Inner, stream: StdStream, elapsed_ms: u64) {
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
        if !text.is_empty() {
            push_stream_line(inner, stream, elapsed_ms, text);
        }
    }
}

fn partial_mut(inner: &mut Inner, stream: StdStream) -> &mut Partial {
    match stream {
        StdStream::Stdout => &mut inner.stdout,
        StdStream::Stderr => &mut inner.stderr,
    }
}

fn push_stream_line(inner: &mut Inner, stream: StdStream, elapsed_ms: u64, text: String) {
    let source = match stream {
        StdStream::Stdout => Source::Stdout,
        StdStream::Stderr => Source::Stderr,
    };
    inner.lines.push(LogLine {
        source,
        elapsed_ms,
        text,
    });
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_bytes_become_lines_at_newlines_across_writes() {
        let sink = LogSink::new(1024, Arc::default());
        sink.write_stream(StdStream::Stdout, b"hel").unwrap();
        sink.write_stream(StdStream::Stdout, b"lo\nwor").unwrap();
        sink.write_stream(StdStream::Stderr, b"oops\n").unwrap();
        sink.write_stream(StdStream::Stdout, b"ld").unwrap();
        let lines = sink.finish();
        let texts: Vec<_> = lines.iter().map(|l| (l.source, l.text.as_str())).collect();
        assert_eq!(
            texts,
            vec![
                (Source::Stdout, "hello"),
                (Source::Stderr, "oops"),
                (Source::Stdout, "world")
            ]
        );
    }

    #[test]
    fn cap_keeps_what_fits_then_refuses_everything() {
        let sink = LogSink::new(10, Arc::default());
        sink.write_stream(StdStream::Stdout, b"12345\n").unwrap();
        let err = sink
            .write_stream(StdStream::Stdout, b"67890abc\n")
            .unwrap_err();
        assert_eq!(err, HostLimitError::Output { cap: 10 });
        assert!(sink.exceeded());
        assert!(
            sink.push_line(Source::Log(LogLevel::Info), "x".into())
                .is_err()
        );
        let lines = sink.finish();
        assert_eq!(lines[0].text, "12345");
        assert_eq!(lines[1].text, "6789");
        assert_eq!(lines.last().unwrap().text, TRUNCATION_MARKER);
        assert_eq!(sink.bytes_used(), 10);
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
