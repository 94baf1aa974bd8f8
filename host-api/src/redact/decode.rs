//! What escaped text *means*: a decoded view of a text with a map back to
//! the bytes each decoded byte came from.
//!
//! Why: the registered forms of a value (see [`super`]) are the encodings a
//! library writes *whole*. A writer may also escape only some characters —
//! `sec\u0072et`, `%73ecret`, `\x73ecret` — and whoever reads that text
//! (a JSON parser, a browser, a person) sees the value. So the redactor
//! also searches the decoded view and masks the escaped source bytes of
//! every match. Decoding is repeated (up to [`MAX_LEVELS`]) for text escaped
//! several times over, as JSON kept as a string inside JSON is.
//!
//! Decoded: JSON string escapes (`\" \\ \/ \b \f \n \r \t \uXXXX`, with
//! surrogate pairs), `\xNN`, and percent escapes `%NN`. A malformed escape
//! stays as it is.

/// How many times text is decoded at most.
pub(super) const MAX_LEVELS: usize = 3;

/// Most source bytes one decoded byte takes, over [`MAX_LEVELS`] levels
/// (`\\\\u0073` is 9; a surrogate pair is 12 bytes for 4).
pub(super) const MAX_EXPANSION: usize = 12;

/// Largest window decoded at once; longer runs of escapes are cut into
/// windows that overlap by the reach, so no match is lost at a cut.
const MAX_WINDOW: usize = 64 * 1024;

/// The byte ranges of `text` worth decoding: `reach` bytes on each side of
/// every escape byte, merged, each at most [`MAX_WINDOW`] plus the overlap.
pub(super) fn windows(text: &[u8], reach: usize) -> Vec<std::ops::Range<usize>> {
    let mut out: Vec<std::ops::Range<usize>> = Vec::new();
    for pos in memchr::memchr2_iter(b'\\', b'%', text) {
        let start = pos.saturating_sub(reach);
        let end = (pos + reach).min(text.len());
        match out.last_mut() {
            Some(last) if start <= last.end && last.end - last.start < MAX_WINDOW => {
                last.end = last.end.max(end);
            }
            Some(last) if start <= last.end => {
                // Cut: the next window starts `reach` before this one ends.
                let next = last.end.saturating_sub(2 * reach).max(last.start);
                out.push(next..end);
            }
            _ => out.push(start..end),
        }
    }
    out
}

/// Whether `text` holds a byte that starts an escape this module decodes.
pub(super) fn has_escapes(text: &[u8]) -> bool {
    memchr::memchr2(b'\\', b'%', text).is_some()
}

/// A decoded view of a source text: its bytes, and where each escape sat.
/// Bytes between escapes were copied as they are.
#[derive(Debug, Default)]
pub(super) struct Decoded {
    pub bytes: Vec<u8>,
    /// Sorted by `dec`: each decoded escape and its source.
    escapes: Vec<Escape>,
    /// The view this one decoded, for a second or third level.
    parent: Option<Box<Decoded>>,
}

#[derive(Debug, Clone, Copy)]
struct Escape {
    /// Where its decoded bytes start, and how many.
    dec: usize,
    dec_len: usize,
    /// Where its source starts, and how long it is.
    src: usize,
    src_len: usize,
}

impl Decoded {
    /// The range of the original text that decoded bytes `start..end`
    /// (non-empty) came from.
    pub fn source_range(&self, start: usize, end: usize) -> (usize, usize) {
        let (s, e) = (self.source_of(start).0, self.source_of(end - 1).1);
        match &self.parent {
            Some(parent) => (
                parent.source_range(s, s + 1).0,
                parent.source_range(e - 1, e).1,
            ),
            None => (s, e),
        }
    }

    /// The source bytes (in the view this one decoded) of decoded byte `i`.
    fn source_of(&self, i: usize) -> (usize, usize) {
        let k = self.escapes.partition_point(|e| e.dec <= i);
        let Some(e) = k.checked_sub(1).map(|k| self.escapes[k]) else {
            return (i, i + 1);
        };
        if i < e.dec + e.dec_len {
            return (e.src, e.src + e.src_len);
        }
        let src = e.src + e.src_len + (i - e.dec - e.dec_len);
        (src, src + 1)
    }

    /// This view decoded once more (its source maps to the original text);
    /// `None` when there is nothing left to decode.
    pub fn decode_again(self) -> Option<Decoded> {
        let mut next = decode(&self.bytes)?;
        next.parent = Some(Box::new(self));
        Some(next)
    }
}

/// One level of decoding of `text`; `None` when no escape was decoded.
pub(super) fn decode(text: &[u8]) -> Option<Decoded> {
    if !has_escapes(text) {
        return None;
    }
    let mut out = Decoded {
        bytes: Vec::with_capacity(text.len()),
        ..Decoded::default()
    };
    let mut copied = 0;
    for i in memchr::memchr2_iter(b'\\', b'%', text) {
        if i < copied {
            continue;
        }
        let Some((len, decoded)) = escape_at(text, i) else {
            continue;
        };
        out.bytes.extend_from_slice(&text[copied..i]);
        out.escapes.push(Escape {
            dec: out.bytes.len(),
            dec_len: decoded.len,
            src: i,
            src_len: len,
        });
        out.bytes.extend_from_slice(decoded.as_slice());
        copied = i + len;
    }
    if out.escapes.is_empty() {
        return None;
    }
    out.bytes.extend_from_slice(&text[copied..]);
    Some(out)
}

/// Up to four decoded bytes (one UTF-8 character at most).
struct Bytes {
    buf: [u8; 4],
    len: usize,
}

impl Bytes {
    fn one(b: u8) -> Self {
        Self {
            buf: [b, 0, 0, 0],
            len: 1,
        }
    }

    fn char(c: char) -> Self {
        let mut buf = [0; 4];
        let len = c.encode_utf8(&mut buf).len();
        Self { buf, len }
    }

    fn as_slice(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

/// The escape starting at `text[i]`, if any: its length and what it means.
fn escape_at(text: &[u8], i: usize) -> Option<(usize, Bytes)> {
    match text[i] {
        b'%' => Some((3, Bytes::one(hex_byte(text.get(i + 1..i + 3)?)?))),
        b'\\' => {
            let simple = match *text.get(i + 1)? {
                b'"' => b'"',
                b'\\' => b'\\',
                b'/' => b'/',
                b'b' => 0x08,
                b'f' => 0x0c,
                b'n' => b'\n',
                b'r' => b'\r',
                b't' => b'\t',
                b'x' => return Some((4, Bytes::one(hex_byte(text.get(i + 2..i + 4)?)?))),
                b'u' => return unicode_escape(text, i),
                _ => return None,
            };
            Some((2, Bytes::one(simple)))
        }
        _ => None,
    }
}

/// `\uXXXX`, or a surrogate pair `\uD8XX\uDCXX`. A lone surrogate is not
/// decoded.
fn unicode_escape(text: &[u8], i: usize) -> Option<(usize, Bytes)> {
    let first = hex_u16(text.get(i + 2..i + 6)?)?;
    if (0xD800..0xDC00).contains(&first) {
        if text.get(i + 6..i + 8)? != b"\\u" {
            return None;
        }
        let second = hex_u16(text.get(i + 8..i + 12)?)?;
        if !(0xDC00..0xE000).contains(&second) {
            return None;
        }
        let c = char::decode_utf16([first, second]).next()?.ok()?;
        return Some((12, Bytes::char(c)));
    }
    let c = char::from_u32(u32::from(first))?;
    Some((6, Bytes::char(c)))
}

fn hex_digit(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn hex_byte(two: &[u8]) -> Option<u8> {
    Some(hex_digit(two[0])? << 4 | hex_digit(two[1])?)
}

fn hex_u16(four: &[u8]) -> Option<u16> {
    four.iter()
        .try_fold(0u16, |acc, &b| Some(acc << 4 | u16::from(hex_digit(b)?)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decoded(text: &str) -> String {
        String::from_utf8(decode(text.as_bytes()).unwrap().bytes).unwrap()
    }

    #[test]
    fn every_escape_kind_decodes() {
        assert_eq!(decoded(r#"a\u0073b\"c\\d\/e\nf\tg"#), "asb\"c\\d/e\nf\tg");
        assert_eq!(decoded("%73ecret%2F"), "secret/");
        assert_eq!(decoded(r"\x73ecret"), "secret");
        assert_eq!(decoded(r"\u00dc\ud83d\ude00"), "Ü😀");
    }

    #[test]
    fn malformed_escapes_stay() {
        assert!(decode(b"100% sure, C:\\path").is_none());
        assert_eq!(decoded(r"\ud83d alone \u0041"), r"\ud83d alone A");
        assert_eq!(decoded("%zz%41"), "%zzA");
    }

    #[test]
    fn decoded_bytes_map_back_to_their_source() {
        let text = r#"x\u0073ec%72et!"#;
        let d = decode(text.as_bytes()).unwrap();
        assert_eq!(d.bytes, b"xsecret!");
        // "secret" is decoded bytes 1..7.
        assert_eq!(d.source_range(1, 7), (1, text.len() - 1));
    }

    #[test]
    fn windows_cover_each_escape_and_stay_bounded() {
        let mut text = vec![b'a'; 1 << 20];
        text[1000] = b'%';
        text[500_000] = b'\\';
        let w = windows(&text, 100);
        assert_eq!(w, vec![900..1100, 499_900..500_100]);
        let dense = vec![b'%'; 1 << 20];
        let w = windows(&dense, 100);
        assert!(w.iter().all(|r| r.len() <= MAX_WINDOW + 400), "{w:?}");
        // Consecutive windows overlap by at least the reach.
        for pair in w.windows(2) {
            assert!(pair[1].start + 100 <= pair[0].end, "{pair:?}");
        }
        assert_eq!(w.first().unwrap().start, 0);
        assert_eq!(w.last().unwrap().end, dense.len());
    }

    #[test]
    fn a_second_level_maps_to_the_original() {
        // `\\u0073` decodes to `\u0073`, which decodes to `s`.
        let text = r"a\\u0073b";
        let once = decode(text.as_bytes()).unwrap();
        assert_eq!(once.bytes, br"a\u0073b");
        let twice = once.decode_again().unwrap();
        assert_eq!(twice.bytes, b"asb");
        assert_eq!(twice.source_range(1, 2), (1, text.len() - 1));
    }
}
