//! `airlock:step/log` and the run's log: one ordered, capped record of the
//! step's log lines, stdout and stderr.
//!
//! Why one sink for all three: a reader of a run's log wants them in the
//! order they happened, and a flood through any of them must spend the same
//! budget, or a guest could dodge the cap by switching streams.
//!
//! Past the cap the sink keeps what fit, appends a marker line, and every
//! further write fails with [`HostLimitError::Output`], which traps the guest.

mod host;

use std::sync::Mutex;
use std::time::Instant;

use serde::Serialize;

use crate::HostLimitError;

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
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    lines: Vec<LogLine>,
    used: usize,
    exceeded: bool,
    stdout_partial: Vec<u8>,
    stderr_partial: Vec<u8>,
}

impl LogSink {
    /// A sink that accepts at most `cap` bytes of log text in total.
    pub fn new(cap: usize) -> Self {
        Self {
            started: Instant::now(),
            cap,
            inner: Mutex::new(Inner::default()),
        }
    }

    /// Appends one complete line (from the `log` interface).
    pub fn push_line(&self, source: Source, text: String) -> Result<(), HostLimitError> {
        let mut inner = self.lock();
        let fitted = self.charge(&mut inner, text.len())?;
        let elapsed_ms = self.elapsed_ms();
        if fitted < text.len() {
            let cut = floor_char_boundary(&text, fitted);
            inner.lines.push(LogLine {
                source,
                elapsed_ms,
                text: text[..cut].to_string(),
            });
            self.mark_exceeded(&mut inner);
            return Err(HostLimitError::Output { cap: self.cap });
        }
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

    /// Flushes partial stdout/stderr lines and returns every line so far.
    pub fn finish(&self) -> Vec<LogLine> {
        let mut inner = self.lock();
        let elapsed_ms = self.elapsed_ms();
        for stream in [StdStream::Stdout, StdStream::Stderr] {
            flush_partial(&mut inner, stream, elapsed_ms);
        }
        std::mem::take(&mut inner.lines)
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
            flush_partial(inner, stream, elapsed_ms);
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
                    partial.extend_from_slice(&bytes[..nl]);
                    bytes = &bytes[nl + 1..];
                    flush_partial(inner, stream, elapsed_ms);
                }
                None => {
                    let room = MAX_PARTIAL_LINE - partial.len();
                    let take = bytes.len().min(room);
                    partial.extend_from_slice(&bytes[..take]);
                    bytes = &bytes[take..];
                    if partial.len() >= MAX_PARTIAL_LINE {
                        flush_partial(inner, stream, elapsed_ms);
                    }
                }
            }
        }
    }
}

fn partial_mut(inner: &mut Inner, stream: StdStream) -> &mut Vec<u8> {
    match stream {
        StdStream::Stdout => &mut inner.stdout_partial,
        StdStream::Stderr => &mut inner.stderr_partial,
    }
}

fn flush_partial(inner: &mut Inner, stream: StdStream, elapsed_ms: u64) {
    let partial = std::mem::take(partial_mut(inner, stream));
    if partial.is_empty() {
        return;
    }
    let mut text = String::from_utf8_lossy(&partial).into_owned();
    if text.ends_with('\r') {
        text.pop();
    }
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
        let sink = LogSink::new(1024);
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
        let sink = LogSink::new(10);
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
        let sink = LogSink::new(1 << 20);
        sink.write_stream(StdStream::Stdout, &vec![b'a'; MAX_PARTIAL_LINE * 2 + 5])
            .unwrap();
        let lines = sink.finish();
        assert_eq!(lines.len(), 3);
        assert!(lines.iter().all(|l| l.text.len() <= MAX_PARTIAL_LINE));
    }
}
