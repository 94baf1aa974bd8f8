//! Redaction of text that arrives in chunks (stdout, stderr, streamed bodies).

use super::{Redactor, floor_char_boundary};

/// Past this many pending bytes a match that straddles the cut is emitted
/// (masked) instead of held back, so a guest writing an endless run of
/// overlapping secrets cannot grow the buffer without bound.
const HOLD_LIMIT: usize = 64 * 1024;

/// Redacts a stream that arrives in arbitrary chunks, so a value split across
/// two writes is still caught.
///
/// [`push`](Self::push) returns the redacted text that is safe to emit now
/// and holds back only what could still be the start of a match;
/// [`finish`](Self::finish) flushes the rest. The concatenated output equals
/// [`Redactor::redact`] of the concatenated input.
#[derive(Debug, Default)]
pub struct StreamRedactor {
    pending: String,
}

impl StreamRedactor {
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends `chunk` and returns the redacted text that no later chunk can
    /// change.
    ///
    /// Everything before `len - (max_pattern_len - 1)` is final: a pattern
    /// starting there would have to be longer than the longest pattern to
    /// reach past the end. If a masked region of the pending text straddles
    /// that cut, the cut moves back to the region's start, because a pattern
    /// that starts inside the region may still be completed by a later
    /// chunk, and the merged region must be masked whole.
    pub fn push(&mut self, redactor: &Redactor, chunk: &str) -> String {
        self.pending.push_str(chunk);
        let compiled = redactor.compiled();
        if compiled.is_empty() {
            return std::mem::take(&mut self.pending);
        }
        let keep = compiled.max_len - 1;
        if self.pending.len() <= keep {
            return String::new();
        }
        let mut cut = floor_char_boundary(&self.pending, self.pending.len() - keep);
        let regions = compiled.regions_decoded(&self.pending);
        if let Some(r) = regions.iter().find(|r| r.start < cut && cut < r.end) {
            cut = if self.pending.len() <= HOLD_LIMIT.max(4 * compiled.max_len) {
                r.start
            } else {
                r.end
            };
        }
        let done = regions.iter().take_while(|r| r.end <= cut);
        let out = compiled.apply(&self.pending[..cut], done);
        self.pending.drain(..cut);
        out
    }

    /// The text held back so far (not yet masked).
    pub fn pending(&self) -> &str {
        &self.pending
    }

    /// Whether no text is held back.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Returns the redacted remainder and empties the buffer.
    pub fn finish(&mut self, redactor: &Redactor) -> String {
        let pending = std::mem::take(&mut self.pending);
        redactor.redact(&pending).into_owned()
    }
}
