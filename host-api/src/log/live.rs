//! The live feed of a run's log: each line handed to a [`LiveTap`] while
//! the run still runs, masked exactly as the stored log will be.
//!
//! Why lines may be held back: [`super::LogSink::finish`] masks the whole
//! log once more as one text, so a value split across two entries (two
//! `log` calls, stdout then stderr) is masked in both. A line sent the
//! moment it was written could not be, if a later entry completes the
//! value. So lines are sent as soon as no later text can change how they
//! are masked: at once when the log's text does not end with the start of
//! a registered value (or of one of its forms) and holds no escape near
//! its end ([`Redactor::may_continue`]) — the usual case — and otherwise
//! once the text after them is at least the redactor's
//! [`reach`](Redactor::reach). Each is masked across entries together with
//! enough text before it that no match can start earlier, so it masks the
//! same now as at the end: a reader of the live feed and of the stored
//! record sees the same text. The rest is sent, from the final masking,
//! when the run ends.
//!
//! What it cannot do: a value registered only after a line was sent (none
//! is today: secrets are registered before the guest starts, and a
//! credential the host inserts is registered before the request that could
//! echo it) is masked in the stored log but not in what was already sent.

use std::sync::Arc;

use super::LogLine;
use crate::redact::Redactor;

/// Where a live log goes (the host's appender to its database).
///
/// Called with the sink's lock held: it must not block (hand the lines to
/// a channel).
pub trait LiveTap: Send + Sync {
    /// Lines `first`, `first + 1`, … of the log (their index in the stored
    /// log), final and masked.
    fn lines(&self, first: u64, lines: &[LogLine]);
    /// The log is complete: nothing follows.
    fn end(&self);
}

/// The last `reach` bytes (or more, in whole lines) of the log's text.
fn tail(lines: &[LogLine], reach: usize) -> String {
    let mut start = lines.len();
    let mut len = 0usize;
    while start > 0 && len < reach {
        start -= 1;
        len += lines[start].text.len();
    }
    lines[start..].iter().map(|l| l.text.as_str()).collect()
}

/// What has been sent to the tap.
pub(super) struct Feed {
    tap: Arc<dyn LiveTap>,
    /// Lines sent so far (the next line to send).
    sent: usize,
}

impl std::fmt::Debug for Feed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Feed").field("sent", &self.sent).finish()
    }
}

impl Feed {
    pub(super) fn new(tap: Arc<dyn LiveTap>) -> Self {
        Self { tap, sent: 0 }
    }

    /// Sends the lines of `lines` that can no longer change (see the
    /// module docs).
    pub(super) fn release(&mut self, lines: &[LogLine], redactor: &Redactor) {
        let n = lines.len();
        if self.sent >= n {
            return;
        }
        let reach = redactor.reach();
        if reach == 0 {
            self.tap.lines(self.sent as u64, &lines[self.sent..]);
            self.sent = n;
            return;
        }
        let end = if redactor.may_continue(&tail(lines, reach)) {
            // The last line with at least `reach` bytes of text after it.
            let mut after = 0usize;
            let mut end = None;
            for j in (self.sent..n).rev() {
                if after >= reach {
                    end = Some(j + 1);
                    break;
                }
                after += lines[j].text.len();
            }
            match end {
                Some(end) => end,
                None => return,
            }
        } else {
            // Nothing written later can complete a match: all is final.
            n
        };
        // Enough context before the first unsent line that no match
        // touching it starts outside the window.
        let mut start = self.sent;
        let mut before = 0usize;
        while start > 0 && before < reach {
            start -= 1;
            before += lines[start].text.len();
        }
        let mut texts: Vec<String> = lines[start..n].iter().map(|l| l.text.clone()).collect();
        redactor.redact_pieces(&mut texts);
        let out: Vec<LogLine> = lines[self.sent..end]
            .iter()
            .zip(texts.drain(self.sent - start..end - start))
            .map(|(line, text)| LogLine {
                text,
                ..line.clone()
            })
            .collect();
        self.tap.lines(self.sent as u64, &out);
        self.sent = end;
    }

    /// Sends what is left of the final, masked log, then the end.
    pub(super) fn finish(&mut self, masked: &[LogLine]) {
        if self.sent < masked.len() {
            self.tap.lines(self.sent as u64, &masked[self.sent..]);
            self.sent = masked.len();
        }
        self.tap.end();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::log::{LogLevel, LogSink, Source, StdStream};

    #[derive(Default)]
    struct Collect {
        lines: Mutex<Vec<(u64, String)>>,
        ended: Mutex<bool>,
    }

    impl LiveTap for Collect {
        fn lines(&self, first: u64, lines: &[LogLine]) {
            let mut got = self.lines.lock().unwrap();
            for (i, l) in lines.iter().enumerate() {
                assert_eq!(got.len() as u64, first + i as u64, "lines in order, once");
                got.push((first + i as u64, l.text.clone()));
            }
        }
        fn end(&self) {
            *self.ended.lock().unwrap() = true;
        }
    }

    const SECRET: &str = "hunter2-correct-horse";

    fn sink(register: bool) -> (LogSink, Arc<Collect>) {
        let redactor = Arc::new(Redactor::new());
        if register {
            assert!(redactor.register("PW", SECRET));
        }
        let tap = Arc::new(Collect::default());
        (LogSink::new(1 << 20, redactor).with_live(tap.clone()), tap)
    }

    fn texts(tap: &Collect) -> Vec<String> {
        tap.lines
            .lock()
            .unwrap()
            .iter()
            .map(|l| l.1.clone())
            .collect()
    }

    #[test]
    fn text_may_continue_into_a_value_only_when_its_end_could_start_one() {
        let redactor = Redactor::new();
        assert!(!redactor.may_continue("hunter2-c"), "nothing registered");
        assert!(redactor.register("PW", SECRET));
        assert!(redactor.may_continue("x hunter2-c"));
        assert!(redactor.may_continue("x h"));
        // Its base64 and hex forms count too.
        assert!(redactor.may_continue("x 68756e74"));
        assert!(!redactor.may_continue("x [REDACTED:PW]."));
        assert!(!redactor.may_continue(""));
        // An escape near the end: a decoded view may match across it.
        assert!(redactor.may_continue("x \\u0068. done"));
        assert!(redactor.may_continue("x %68 done"));
    }

    #[test]
    fn without_secrets_every_line_goes_at_once() {
        let (sink, tap) = sink(false);
        sink.push_line(Source::Log(LogLevel::Info), "one".into())
            .unwrap();
        sink.write_stream(StdStream::Stdout, b"two\nthr").unwrap();
        assert_eq!(texts(&tap), ["one", "two"]);
        let stored: Vec<String> = sink.finish().into_iter().map(|l| l.text).collect();
        assert_eq!(texts(&tap), stored);
        assert!(*tap.ended.lock().unwrap());
    }

    #[test]
    fn a_value_split_across_entries_is_masked_live_as_when_stored() {
        let (a, b) = SECRET.split_at(9);
        let (sink, tap) = sink(true);
        sink.push_line(Source::Log(LogLevel::Info), format!("one {a}"))
            .unwrap();
        // Not yet: the next entry may complete a value.
        assert!(texts(&tap).is_empty());
        sink.push_line(Source::Log(LogLevel::Warn), format!("{b} two"))
            .unwrap();
        // Text that cannot start the value makes them final.
        sink.push_line(Source::Log(LogLevel::Info), "x".repeat(2000))
            .unwrap();
        assert_eq!(
            texts(&tap)[..2],
            ["one [REDACTED:PW]", "[REDACTED:PW] two"],
            "sent before the run ended, masked across entries"
        );
        sink.push_line(Source::Log(LogLevel::Info), format!("end {SECRET}"))
            .unwrap();
        let stored: Vec<String> = sink.finish().into_iter().map(|l| l.text).collect();
        assert_eq!(texts(&tap), stored, "the live feed is the stored log");
        let all = texts(&tap).concat();
        assert!(!all.contains("hunter2") && !all.contains("horse"), "{all}");
    }

    #[test]
    fn a_line_that_may_start_a_value_waits_and_one_that_cannot_goes_at_once() {
        let (sink, tap) = sink(true);
        sink.push_line(Source::Log(LogLevel::Info), format!("masked {SECRET}."))
            .unwrap();
        assert_eq!(texts(&tap), ["masked [REDACTED:PW]."], "sent at once");
        sink.push_line(Source::Log(LogLevel::Info), "maybe hunter".into())
            .unwrap();
        assert_eq!(texts(&tap).len(), 1, "held: it may start the value");
        sink.push_line(Source::Log(LogLevel::Info), "2-correct-horse!".into())
            .unwrap();
        assert_eq!(
            texts(&tap),
            [
                "masked [REDACTED:PW].",
                "maybe [REDACTED:PW]",
                "[REDACTED:PW]!"
            ]
        );
    }

    #[test]
    fn every_split_of_a_value_over_many_small_entries_is_masked_live() {
        for pieces in [2, 3, 7, SECRET.len()] {
            let (sink, tap) = sink(true);
            let step = SECRET.len().div_ceil(pieces);
            for chunk in SECRET.as_bytes().chunks(step) {
                let text = String::from_utf8(chunk.to_vec()).unwrap();
                sink.push_line(Source::Log(LogLevel::Info), text).unwrap();
                sink.push_line(Source::Log(LogLevel::Info), String::new())
                    .unwrap();
            }
            for _ in 0..50 {
                sink.push_line(Source::Log(LogLevel::Info), "y".repeat(40))
                    .unwrap();
            }
            let live_before_end = texts(&tap);
            assert!(!live_before_end.is_empty(), "{pieces}: nothing sent live");
            let stored: Vec<String> = sink.finish().into_iter().map(|l| l.text).collect();
            assert_eq!(texts(&tap), stored, "{pieces} pieces");
            let joined = live_before_end.concat();
            for w in SECRET.as_bytes().windows(6) {
                let w = std::str::from_utf8(w).unwrap();
                assert!(!joined.contains(w), "{pieces}: {w:?} sent live");
            }
        }
    }
}
