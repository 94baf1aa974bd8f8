//! A sampling q-gram prefilter in front of the Aho-Corasick automaton.
//!
//! With hundreds of secrets there are thousands of patterns, the
//! automaton's own prefilters give up, and its DFA has to look at every
//! byte of text (about 300 MB/s). But every pattern is at least `m` bytes
//! long (`m` being the shortest pattern), so an occurrence of any pattern
//! contains a q-gram starting at a multiple of `stride = m - q + 1`. The
//! filter holds every q-gram of every pattern in a small Bloom filter (two
//! bits in one word) and probes only every `stride`-th q-gram of the text;
//! where a probe hits, the automaton searches the window around it that an
//! occurrence containing it could span. A miss proves no occurrence covers
//! the probe, so nothing is skipped that the plain search would find.

use std::ops::Range;

#[derive(Debug)]
pub(super) struct QgramFilter {
    q: usize,
    stride: usize,
    words: Vec<u64>,
    /// `64 - log2(words.len())`: the hash's top bits pick the word.
    shift: u32,
    /// How far before a hit the window starts: `stride - 1`. Every q-gram
    /// of an occurrence hits, so its first probe, at most `stride - 1`
    /// bytes after its start, opens a window that covers all of it.
    back: usize,
    /// How far after a hit the window ends: `max_len`.
    ahead: usize,
}

const MUL: u64 = 0x9e37_79b9_7f4a_7c15;
const MAX_WORDS: usize = 1 << 21; // 16 MiB

impl QgramFilter {
    pub(super) fn new<P: AsRef<[u8]>>(patterns: &[P], min_len: usize, max_len: usize) -> Self {
        let q = (min_len / 2).clamp(4, 8).min(min_len);
        let qgrams: usize = patterns.iter().map(|p| p.as_ref().len() - q + 1).sum();
        // About 32 bits per q-gram: ~0.4% false positives.
        let words = (qgrams / 2).next_power_of_two().clamp(64, MAX_WORDS);
        let mut filter = Self {
            q,
            stride: min_len - q + 1,
            words: vec![0; words],
            shift: 64 - words.trailing_zeros(),
            back: min_len - q,
            ahead: max_len,
        };
        for p in patterns {
            let p = p.as_ref();
            for i in 0..=p.len() - q {
                let (word, bits) = filter.slot(load(p, i, q));
                filter.words[word] |= bits;
            }
        }
        filter
    }

    fn slot(&self, gram: u64) -> (usize, u64) {
        let h = gram.wrapping_mul(MUL);
        let word = (h >> self.shift) as usize;
        let bits = (1 << (h & 63)) | (1 << ((h >> 6) & 63));
        (word, bits)
    }

    /// Calls `f` with the disjoint, increasing windows of `text` that can
    /// hold an occurrence of a pattern. Occurrences that overlap each other
    /// always fall into the same window.
    pub(super) fn windows(&self, text: &[u8], mut f: impl FnMut(Range<usize>)) {
        if text.len() < self.q {
            return;
        }
        let last = text.len() - self.q;
        let mut current: Option<Range<usize>> = None;
        let mut p = 0;
        while p <= last {
            let (word, bits) = self.slot(load(text, p, self.q));
            if self.words[word] & bits == bits {
                let start = p.saturating_sub(self.back);
                let end = (p + self.ahead).min(text.len());
                match &mut current {
                    Some(w) if start <= w.end => w.end = end,
                    _ => {
                        if let Some(w) = current.take() {
                            f(w);
                        }
                        current = Some(start..end);
                    }
                }
            }
            p += self.stride;
        }
        if let Some(w) = current {
            f(w);
        }
    }
}

/// The `q` bytes at `at` as a little-endian integer.
#[inline]
fn load(bytes: &[u8], at: usize, q: usize) -> u64 {
    let mask = if q == 8 { u64::MAX } else { (1 << (8 * q)) - 1 };
    match bytes.get(at..at + 8) {
        Some(b) => u64::from_le_bytes(b.try_into().expect("8 bytes")) & mask,
        None => {
            let mut buf = [0u8; 8];
            buf[..q].copy_from_slice(&bytes[at..at + q]);
            u64::from_le_bytes(buf)
        }
    }
}
