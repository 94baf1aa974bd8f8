//! Masks secret values out of everything that leaves a run.
//!
//! One [`Redactor`] exists per run. Every secret value (and every credential
//! the host inserts on the guest's behalf) is [registered](Redactor::register)
//! with it, and everything that leaves the run (log lines, stdout/stderr, the
//! output, error messages, stored records) passes through
//! [`Redactor::redact`] or, for text that arrives in pieces, a
//! [`StreamRedactor`]. This is security invariant 1 of the design.
//!
//! # What is masked, and why
//!
//! A step rarely prints a secret verbatim by accident; it prints the request
//! it built from it. So for each registered value (and each line of a
//! multi-line value, see below) these forms are masked, each replaced by
//! `[REDACTED:NAME]`:
//!
//! * **the raw value**, trimmed of surrounding whitespace (a secret read from
//!   a file usually carries a trailing newline that never shows up in use).
//! * **base64, standard and URL-safe alphabets, at byte offsets 0, 1 and 2.**
//!   Basic auth is `base64("user:" + password)`, JWTs and many APIs embed
//!   base64url. The bytes before the value shift its encoding, and because
//!   base64 maps 3 bytes to 4 characters there are exactly three shifts. For
//!   each, only the characters fully determined by the value's own bits are
//!   the pattern (characters `ceil(8k/6)..floor(8(k+len)/6)` for `k` leading
//!   bytes), so the pattern matches whatever precedes or follows the value.
//! * **URL encoding**: percent-encoding of every byte outside the RFC 3986
//!   unreserved set (uppercase hex), and the `application/x-www-form-urlencoded`
//!   variant (`+` for space). Secrets end up in query strings and form bodies,
//!   and an HTTP error message or log line echoes the URL.
//! * **JSON string escaping** as serde_json writes it, plus the ASCII-only
//!   variant (`\uXXXX`) when the value is not ASCII: secrets with quotes,
//!   backslashes or newlines (PEM keys) change shape inside a JSON document,
//!   and the step's output and most structured logs are JSON. Also the
//!   value escaped twice: JSON kept as a string inside JSON (an upstream body
//!   returned as a field of the output) is escaped again.
//! * **hex, lowercase and uppercase**: debug dumps of byte buffers.
//!
//! **Multi-line values** (PEM keys, service-account files): each line of at
//! least [`MIN_MASKED_LEN`] bytes is also registered on its own, with all the
//! forms above, because a line-oriented log splits such a value across lines
//! and the joined value never appears.
//!
//! **Minimum length**: a value, or a form of it, shorter than
//! [`MIN_MASKED_LEN`] bytes is not masked. Masking `"true"` or `"1234"` would
//! shred ordinary text and, worse, tell a reader which common word the secret
//! is. [`Redactor::register`] returns `false` for such values so the caller
//! can warn.
//!
//! # Matching
//!
//! All patterns of all values go into one Aho-Corasick automaton (a
//! contiguous NFA, cheap to build) with
//! leftmost-longest semantics, rebuilt lazily on the first redaction after a
//! registration (registration is rare, redaction is hot). With more than a
//! few dozen patterns the automaton's own prefilters give up; a sampling
//! q-gram Bloom filter (`filter.rs`) then picks the windows of text worth
//! searching, so text with no secret in it is mostly skipped. Where matches
//! overlap (two secrets sharing text) the union of all of them is masked as
//! one region, named after the leftmost match, so no part of either value
//! survives. Text with no match is returned borrowed, without a copy.
//!
//! **Escapes a reader decodes** (`decode.rs`): a writer may escape only some
//! characters of a value (`sec\u0072et`, `%73ecret`, `\x73ecret`), which
//! no whole-value form covers but every JSON parser, browser or person reads
//! as the value. Text holding `\` or `%` is also searched in its decoded
//! view (up to three levels, for text escaped several times over), and the
//! escaped source of each match is masked.
//!
//! **Across pieces**: [`Redactor::redact_pieces`] masks a value split over
//! consecutive pieces of one stream (the entries of a run's log), because a
//! reader of the whole sees it joined.
//!
//! This masks accidents and the encodings readers decode, not a hostile
//! guest determined to leak: a step that holds a secret can always print it
//! reversed, interleaved with other text, or encrypted.

mod decode;
mod encodings;
mod filter;
mod stream;

use std::borrow::Cow;
use std::collections::HashSet;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use aho_corasick::{AhoCorasick, AhoCorasickKind, Input, MatchKind};
use memchr::memmem::Finder;

use filter::QgramFilter;

pub use stream::StreamRedactor;

/// Values shorter than this many bytes are not masked: masking `"true"` or
/// `"1234"` would shred ordinary text. Storing such a secret prints a warning.
pub const MIN_MASKED_LEN: usize = 6;

/// Masks registered secret values, and their encodings, out of text.
///
/// `Send + Sync`; share one per run as `Arc<Redactor>`.
#[derive(Debug, Default)]
pub struct Redactor {
    /// The patterns registered so far; the source of truth.
    registry: Mutex<Registry>,
    /// The automaton over `registry`, as of the last rebuild.
    compiled: RwLock<Arc<Compiled>>,
    /// Set by `register` when `compiled` is behind `registry`.
    stale: AtomicBool,
}

#[derive(Debug, Default)]
struct Registry {
    patterns: Vec<String>,
    /// For each pattern, the index of its marker in `markers`.
    owners: Vec<usize>,
    /// `[REDACTED:NAME]`, one per registration.
    markers: Vec<Arc<str>>,
    seen: HashSet<String>,
    max_len: usize,
}

/// An immutable snapshot that redaction runs against.
#[derive(Debug, Default)]
struct Compiled {
    /// The registered patterns, for the automaton built on first need.
    patterns: Vec<String>,
    /// The automaton over `patterns`; with few patterns built only for a
    /// text too large for `finders`.
    matcher: OnceLock<AhoCorasick>,
    /// With few patterns, one substring finder each: built in well under a
    /// microsecond, where an automaton takes tens (the proxy's profile had
    /// ~12 % of its CPU building one per request for a single credential).
    finders: Option<Vec<Finder<'static>>>,
    /// In front of `matcher` when there are too many patterns for its own
    /// prefilters.
    filter: Option<QgramFilter>,
    /// For each pattern, its marker.
    markers: Vec<Arc<str>>,
    min_len: usize,
    max_len: usize,
}

/// Up to this many patterns the automaton's own prefilters (memchr, Teddy)
/// are fast and [`QgramFilter`] is not used.
const FILTER_MIN_PATTERNS: usize = 64;

/// Up to this many patterns (one or two secrets with their encodings), a
/// text is scanned with one [`Finder`] per pattern instead of an automaton...
const FINDER_MAX_PATTERNS: usize = 24;

/// ... as long as patterns × text length stays under this many bytes: past
/// it one automaton pass is cheaper than a pass per pattern, and the
/// automaton is built once for the snapshot.
const FINDER_MAX_SCAN_BYTES: usize = 1 << 20;

/// A masked byte range of a text and the pattern whose marker replaces it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Region {
    start: usize,
    end: usize,
    pattern: usize,
}

impl Redactor {
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers `value` under `name`. Returns false (and masks nothing) when
    /// the value is shorter than [`MIN_MASKED_LEN`] bytes after trimming.
    /// Multi-line values: each line of at least [`MIN_MASKED_LEN`] bytes is
    /// also registered on its own.
    pub fn register(&self, name: &str, value: &str) -> bool {
        let value = value.trim();
        if value.len() < MIN_MASKED_LEN {
            return false;
        }
        let mut registry = self.registry.lock().unwrap_or_else(|p| p.into_inner());
        let marker = registry.markers.len();
        registry.markers.push(format!("[REDACTED:{name}]").into());
        let lines = value
            .lines()
            .map(str::trim)
            .filter(|l| l.len() >= MIN_MASKED_LEN);
        for part in std::iter::once(value).chain(lines) {
            for form in encodings::forms(part) {
                registry.add(form, marker);
            }
        }
        self.stale.store(true, Ordering::Release);
        true
    }

    /// Returns `text` with every registered value and encoding replaced by
    /// `[REDACTED:NAME]`; borrowed when nothing matched.
    pub fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let compiled = self.compiled();
        if compiled.is_empty() || text.len() < compiled.min_len {
            return Cow::Borrowed(text);
        }
        let regions = compiled.regions_decoded(text);
        if regions.is_empty() {
            return Cow::Borrowed(text);
        }
        Cow::Owned(compiled.apply(text, regions.iter()))
    }

    /// Masks `pieces` as one text: a value split across consecutive pieces
    /// (a secret written in two log calls) is masked in each piece it
    /// touches, every piece's part replaced by the marker. Pieces are
    /// joined without a separator, as a reader would put them together.
    pub fn redact_pieces(&self, pieces: &mut [String]) {
        let compiled = self.compiled();
        if compiled.is_empty() || pieces.is_empty() {
            return;
        }
        let joined = pieces.concat();
        let regions = compiled.regions_decoded(&joined);
        if regions.is_empty() {
            return;
        }
        let mut offset = 0;
        let mut next = 0;
        for piece in pieces.iter_mut() {
            let (start, end) = (offset, offset + piece.len());
            offset = end;
            // Regions ending before this piece are done.
            while next < regions.len() && regions[next].end <= start {
                next += 1;
            }
            let clipped: Vec<Region> = regions[next..]
                .iter()
                .take_while(|r| r.start < end)
                .map(|r| Region {
                    start: r.start.max(start) - start,
                    end: r.end.min(end) - start,
                    pattern: r.pattern,
                })
                .collect();
            if !clipped.is_empty() {
                *piece = compiled.apply(piece, clipped.iter());
            }
        }
    }

    /// Length in bytes of the longest pattern (0 when nothing is registered).
    pub fn max_pattern_len(&self) -> usize {
        self.lock_registry().max_len
    }

    /// The longest span of text one masked region can take (a pattern, or
    /// its escaped source in a decoded view), plus slack: text more than
    /// this far from a piece's end cannot change how the piece is masked.
    /// 0 when nothing is registered. The live log feed holds lines back by
    /// this much (`crate::log::live`).
    pub fn reach(&self) -> usize {
        match self.max_pattern_len() {
            0 => 0,
            max => decode::MAX_EXPANSION * max + 16,
        }
    }

    /// Whether text appended to `text` could complete a match that starts
    /// in `text`: some suffix of it is a proper prefix of a pattern, or it
    /// has an escape within [`reach`](Self::reach) of its end (a decoded
    /// view could then match across the end). `false` means no later text
    /// changes how `text` is masked. With many patterns the answer is
    /// always `true` (the check would cost more than it saves).
    pub fn may_continue(&self, text: &str) -> bool {
        let compiled = self.compiled();
        if compiled.is_empty() || text.is_empty() {
            return false;
        }
        if compiled.patterns.len() > FINDER_MAX_PATTERNS {
            return true;
        }
        let reach = decode::MAX_EXPANSION * compiled.max_len + 16;
        let tail = &text.as_bytes()[text.len().saturating_sub(reach)..];
        if decode::has_escapes(tail) {
            return true;
        }
        let bytes = text.as_bytes();
        let last = bytes[bytes.len() - 1];
        compiled.patterns.iter().any(|p| {
            let p = p.as_bytes();
            // Only prefixes ending in the text's last byte can match.
            (1..p.len().min(bytes.len() + 1)).any(|k| p[k - 1] == last && bytes.ends_with(&p[..k]))
        })
    }

    /// Whether no pattern is registered.
    pub fn is_empty(&self) -> bool {
        self.lock_registry().patterns.is_empty()
    }

    fn lock_registry(&self) -> std::sync::MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The current snapshot, rebuilt first if a registration made it stale.
    fn compiled(&self) -> Arc<Compiled> {
        if self.stale.load(Ordering::Acquire) {
            let registry = self.lock_registry();
            // Another thread may have rebuilt while this one waited. `stale`
            // is only set and cleared under the registry lock.
            if self.stale.load(Ordering::Acquire) {
                let fresh = Arc::new(registry.compile());
                *self.compiled.write().unwrap_or_else(|p| p.into_inner()) = fresh;
                self.stale.store(false, Ordering::Release);
            }
        }
        self.compiled
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

impl Registry {
    fn add(&mut self, pattern: String, marker: usize) {
        if pattern.len() < MIN_MASKED_LEN || self.seen.contains(&pattern) {
            return;
        }
        self.max_len = self.max_len.max(pattern.len());
        self.seen.insert(pattern.clone());
        self.patterns.push(pattern);
        self.owners.push(marker);
    }

    fn compile(&self) -> Compiled {
        if self.patterns.is_empty() {
            return Compiled::default();
        }
        let min_len = self.patterns.iter().map(String::len).min().unwrap_or(0);
        // A redactor lives for one run or one proxied request, so with few
        // patterns (the usual case) nothing is compiled up front: finders
        // scan small texts, and the automaton is built only if a text is
        // too large for them. Many patterns: the automaton at once, behind
        // the q-gram filter.
        let filter = (self.patterns.len() > FILTER_MIN_PATTERNS)
            .then(|| QgramFilter::new(&self.patterns, min_len, self.max_len));
        let finders = (self.patterns.len() <= FINDER_MAX_PATTERNS).then(|| {
            self.patterns
                .iter()
                .map(|p| Finder::new(p.as_bytes()).into_owned())
                .collect()
        });
        let matcher = OnceLock::new();
        if finders.is_none() {
            matcher.get_or_init(|| automaton(&self.patterns));
        }
        Compiled {
            patterns: self.patterns.clone(),
            matcher,
            finders,
            filter,
            markers: self
                .owners
                .iter()
                .map(|&m| self.markers[m].clone())
                .collect(),
            min_len,
            max_len: self.max_len,
        }
    }
}

impl Compiled {
    fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    fn matcher(&self) -> &AhoCorasick {
        self.matcher.get_or_init(|| automaton(&self.patterns))
    }

    fn marker(&self, pattern: usize) -> &str {
        &self.markers[pattern]
    }

    /// The sorted, disjoint byte ranges of `text` covered by at least one
    /// occurrence of a pattern, each named after its leftmost match.
    ///
    /// A leftmost-longest search skips occurrences that start inside an
    /// earlier match, so after each match the search resumes one byte after
    /// its start, and matches that start inside the current region extend
    /// it. That re-reads only matched text, which is rare.
    fn regions(&self, text: &[u8]) -> Vec<Region> {
        let mut regions = Vec::new();
        if self.is_empty() {
            return regions;
        }
        if let Some(finders) = &self.finders
            && finders.len().saturating_mul(text.len()) <= FINDER_MAX_SCAN_BYTES
        {
            regions_by_finders(finders, text, &mut regions);
            return regions;
        }
        let matcher = self.matcher();
        match &self.filter {
            Some(filter) => filter.windows(text, |window| {
                regions_in(matcher, text, window, &mut regions)
            }),
            None => regions_in(matcher, text, 0..text.len(), &mut regions),
        }
        regions
    }

    /// [`Self::regions`] of `text` and of its decoded views (see
    /// `decode.rs`), mapped back to `text` and merged; every region starts
    /// and ends on a character boundary.
    ///
    /// A match only the decoded view has must contain a decoded escape, and
    /// its source is at most [`decode::MAX_EXPANSION`] bytes per decoded
    /// byte. So only windows around escapes are decoded, each bounded in
    /// size (overlapping where a long run of escapes is cut), and text
    /// without an escape costs one `memchr` pass.
    fn regions_decoded(&self, text: &str) -> Vec<Region> {
        let mut regions = self.regions(text.as_bytes());
        if !decode::has_escapes(text.as_bytes()) {
            return regions;
        }
        let reach = decode::MAX_EXPANSION * self.max_len + 16;
        let mut found = false;
        for window in decode::windows(text.as_bytes(), reach) {
            let start = floor_char_boundary(text, window.start);
            let end = ceil_char_boundary(text, window.end);
            let slice = &text.as_bytes()[start..end];
            let mut view = decode::decode(slice);
            let mut level = 0;
            while let Some(decoded) = view {
                for r in self.regions(&decoded.bytes) {
                    let (s, e) = decoded.source_range(r.start, r.end);
                    regions.push(Region {
                        start: floor_char_boundary(text, start + s),
                        end: ceil_char_boundary(text, start + e),
                        pattern: r.pattern,
                    });
                    found = true;
                }
                level += 1;
                if level == decode::MAX_LEVELS {
                    break;
                }
                view = decoded.decode_again();
            }
        }
        if found {
            merge(&mut regions);
        }
        regions
    }

    /// `text` with `regions` (sorted, disjoint, inside `text`) replaced by
    /// their markers.
    fn apply<'r>(&self, text: &str, regions: impl Iterator<Item = &'r Region>) -> String {
        let mut out = String::with_capacity(text.len());
        let mut last = 0;
        for r in regions {
            out.push_str(&text[last..r.start]);
            out.push_str(self.marker(r.pattern));
            last = r.end;
        }
        out.push_str(&text[last..]);
        out
    }

    /// [`Self::regions`] without the prefilter, to check it against.
    #[cfg(test)]
    fn regions_unfiltered(&self, text: &str) -> Vec<Region> {
        let mut regions = Vec::new();
        if !self.is_empty() {
            regions_in(self.matcher(), text.as_bytes(), 0..text.len(), &mut regions);
        }
        regions
    }
}

/// The automaton over `patterns` (not empty).
///
/// A contiguous NFA with the automaton's own prefilters (memchr, Teddy),
/// which do nearly all the scanning. Not a DFA: building one took ~250 µs
/// for two secrets, while scanning was no faster. With many patterns the
/// q-gram filter skips most text, and the contiguous NFA checks the short
/// windows it leaves, at a fraction of a DFA's memory (1,000 secrets:
/// ~140 MB as a DFA).
fn automaton(patterns: &[String]) -> AhoCorasick {
    AhoCorasick::builder()
        .match_kind(MatchKind::LeftmostLongest)
        .kind(Some(AhoCorasickKind::ContiguousNFA))
        .build(patterns)
        .or_else(|_| {
            AhoCorasick::builder()
                .match_kind(MatchKind::LeftmostLongest)
                .build(patterns)
        })
        .expect("an automaton without a size limit always builds")
}

/// The same regions as [`regions_in`] over the whole text, from every
/// occurrence of every pattern (overlapping ones included, each pattern's
/// runs coalesced as they are found), merged and named after the leftmost
/// (the longest at one start), as a leftmost-longest search names them.
fn regions_by_finders(finders: &[Finder<'static>], text: &[u8], regions: &mut Vec<Region>) {
    for (pattern, finder) in finders.iter().enumerate() {
        let len = finder.needle().len();
        let mut current: Option<Region> = None;
        let mut pos = 0;
        while let Some(at) = finder.find(&text[pos..]) {
            let start = pos + at;
            match &mut current {
                Some(r) if start < r.end => r.end = start + len,
                _ => {
                    regions.extend(current.take());
                    current = Some(Region {
                        start,
                        end: start + len,
                        pattern,
                    });
                }
            }
            pos = start + 1;
        }
        regions.extend(current);
    }
    merge(regions);
}

/// Appends the regions of `text[span]` to `regions`; see [`Compiled::regions`].
fn regions_in(matcher: &AhoCorasick, text: &[u8], span: Range<usize>, regions: &mut Vec<Region>) {
    let mut current: Option<Region> = None;
    let mut pos = span.start;
    while pos < span.end {
        let Some(m) = matcher.find(Input::new(text).span(pos..span.end)) else {
            break;
        };
        match &mut current {
            Some(r) if m.start() < r.end => r.end = r.end.max(m.end()),
            _ => {
                regions.extend(current.take());
                current = Some(Region {
                    start: m.start(),
                    end: m.end(),
                    pattern: m.pattern().as_usize(),
                });
            }
        }
        pos = m.start() + 1;
    }
    regions.extend(current);
}

/// Sorts `regions` and merges those that overlap or touch-overlap into one,
/// named after the leftmost.
fn merge(regions: &mut Vec<Region>) {
    regions.sort_by_key(|r| (r.start, std::cmp::Reverse(r.end)));
    let mut merged: Vec<Region> = Vec::with_capacity(regions.len());
    for r in regions.drain(..) {
        match merged.last_mut() {
            Some(last) if r.start < last.end => last.end = last.end.max(r.end),
            _ => merged.push(r),
        }
    }
    *regions = merged;
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn ceil_char_boundary(s: &str, mut i: usize) -> usize {
    while i < s.len() && !s.is_char_boundary(i) {
        i += 1;
    }
    i
}

#[cfg(test)]
mod tests;
