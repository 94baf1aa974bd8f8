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

/// Whether `text` holds a byte that starts an escape this module decodes.
pub(super) fn has_escapes(text: &[u8]) -> bool {
    memchr::memchr2(b'\\', b'%', text).is_some()
}

/// A decoded view: `bytes[i]` came from `source[starts[i]..ends[i]]`.
#[derive(Debug, Default)]
pub(super) struct Decoded {
    pub bytes: Vec<u8>,
    starts: Vec<usize>,
    ends: Vec<usize>,
}

impl Decoded {
    /// The source range that decoded bytes `start..end` (non-empty) came from.
    pub fn source_range(&self, start: usize, end: usize) -> (usize, usize) {
        (self.starts[start], self.ends[end - 1])
    }

    /// This view decoded once more, mapped to the original source; `None`
    /// when there is nothing left to decode.
    pub fn decode_again(&self) -> Option<Decoded> {
        let next = decode(&self.bytes)?;
        let starts = next.starts.iter().map(|&s| self.starts[s]).collect();
        let ends = next.ends.iter().map(|&e| self.ends[e - 1]).collect();
        Some(Decoded {
            bytes: next.bytes,
            starts,
            ends,
        })
    }
}

/// One level of decoding of `text`; `None` when no escape was decoded.
pub(super) fn decode(text: &[u8]) -> Option<Decoded> {
    if !has_escapes(text) {
        return None;
    }
    let mut out = Decoded {
        bytes: Vec::with_capacity(text.len()),
        starts: Vec::with_capacity(text.len()),
        ends: Vec::with_capacity(text.len()),
    };
    let mut changed = false;
    let mut i = 0;
    while i < text.len() {
        match escape_at(text, i) {
            Some((len, decoded)) => {
                for b in decoded.as_slice() {
                    out.bytes.push(*b);
                    out.starts.push(i);
                    out.ends.push(i + len);
                }
                changed = true;
                i += len;
            }
            None => {
                out.bytes.push(text[i]);
                out.starts.push(i);
                out.ends.push(i + 1);
                i += 1;
            }
        }
    }
    changed.then_some(out)
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
