use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE};

use super::*;

fn redactor(name: &str, value: &str) -> Redactor {
    let r = Redactor::new();
    assert!(r.register(name, value));
    r
}

/// Redacts `text` whole and via a stream split at `split`, checks that both
/// agree, and returns the result.
fn both_ways(r: &Redactor, text: &str, split: usize) -> String {
    let whole = r.redact(text).into_owned();
    let mut s = StreamRedactor::new();
    let mut streamed = s.push(r, &text[..split]);
    streamed += &s.push(r, &text[split..]);
    streamed += &s.finish(r);
    assert_eq!(streamed, whole, "split at {split} of {text:?}");
    whole
}

fn char_boundaries(s: &str) -> impl Iterator<Item = usize> + '_ {
    (0..=s.len()).filter(|&i| s.is_char_boundary(i))
}

#[test]
fn redactor_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Redactor>();
    check::<StreamRedactor>();
}

#[test]
fn raw_value_is_masked_with_its_name() {
    let r = redactor("API_KEY", "sk-live-0123456789");
    let out = r.redact("calling with key=sk-live-0123456789; done");
    assert_eq!(out, "calling with key=[REDACTED:API_KEY]; done");
}

#[test]
fn value_is_trimmed_before_registration() {
    let r = redactor("TOKEN", "  tok-abcdef-123\n");
    assert_eq!(r.redact("x tok-abcdef-123 y"), "x [REDACTED:TOKEN] y");
    // The surrounding whitespace is not part of any pattern.
    assert_eq!(r.max_pattern_len(), 2 * "tok-abcdef-123".len());
}

#[test]
fn text_without_a_match_is_borrowed() {
    let r = redactor("K", "hunter2-secret");
    assert!(matches!(r.redact("nothing to see here"), Cow::Borrowed(_)));
    assert!(matches!(
        Redactor::new().redact("anything"),
        Cow::Borrowed(_)
    ));
    assert!(matches!(r.redact("hunter2-secret"), Cow::Owned(_)));
}

#[test]
fn short_values_are_not_registered() {
    let r = Redactor::new();
    assert!(!r.register("SHORT", "abcde"));
    assert!(!r.register("PADDED", "   abcde \n"));
    assert!(!r.register("EMPTY", ""));
    assert!(r.is_empty());
    assert_eq!(r.max_pattern_len(), 0);
    assert_eq!(r.redact("abcde is fine"), "abcde is fine");
    assert!(r.register("OK", "abcdef"));
    assert!(!r.is_empty());
    assert_eq!(r.redact("abcdef"), "[REDACTED:OK]");
}

#[test]
fn max_pattern_len_is_the_longest_form() {
    let r = redactor("K", "abcdefgh");
    // Hex doubles the length.
    assert_eq!(r.max_pattern_len(), 16);
}

/// The base64 characters of `enc` (the encoding of `prefix_len` bytes and
/// then the secret) that depend only on the secret.
fn determined(enc: &str, prefix_len: usize, secret_len: usize) -> &str {
    let start = (8 * prefix_len).div_ceil(6);
    let end = 8 * (prefix_len + secret_len) / 6;
    &enc[start..end]
}

#[test]
fn base64_at_every_offset_and_both_alphabets() {
    // `??>>` encode to `/` and `+` in the standard alphabet and `_` and `-`
    // in the URL-safe one, so the alphabets really differ.
    let secret = "s3cr3t??>>pass~~word";
    let r = redactor("PW", secret);
    for prefix in ["", "x", "xy", "user:", "admin:"] {
        for (alphabet, engine) in [("std", &STANDARD), ("url", &URL_SAFE)] {
            let enc = engine.encode(format!("{prefix}{secret}"));
            let text = format!("Authorization: Basic {enc}\n");
            let out = r.redact(&text);
            assert!(
                out.contains("[REDACTED:PW]"),
                "{alphabet} {prefix:?}: {out}"
            );
            let core = determined(&enc, prefix.len(), secret.len());
            assert!(core.len() >= 24);
            for i in 0..=core.len() - 12 {
                let window = &core[i..i + 12];
                assert!(
                    !out.contains(window),
                    "{alphabet} {prefix:?}: {window:?} survived in {out}"
                );
            }
        }
    }
    // The alphabets really differ for this secret.
    assert_ne!(STANDARD.encode(secret), URL_SAFE.encode(secret));
}

#[test]
fn url_encoded_forms() {
    let secret = "p@ss w0rd/&=?+~x";
    let r = redactor("DB", secret);
    for encoded in [
        "p%40ss%20w0rd%2F%26%3D%3F%2B~x", // percent-encoding, RFC 3986
        "p%40ss+w0rd%2F%26%3D%3F%2B%7Ex", // form encoding
    ] {
        let text = format!("GET /login?user=bob&password={encoded}&next=1");
        let out = r.redact(&text);
        assert_eq!(out, "GET /login?user=bob&password=[REDACTED:DB]&next=1");
    }
}

#[test]
fn json_escaped_forms() {
    let secret = "he said \"hi\"\\ and\nthen-bye";
    let r = redactor("QUOTE", secret);
    let text = serde_json::json!({ "note": secret, "n": 1 }).to_string();
    assert!(text.contains(r#"he said \"hi\"\\ and\nthen-bye"#));
    let out = r.redact(&text);
    assert_eq!(out, r#"{"n":1,"note":"[REDACTED:QUOTE]"}"#);
}

#[test]
fn hex_lower_and_upper() {
    let r = redactor("HEX", "secret!");
    let lower = "73656372657421";
    let upper = "73656372657421".to_uppercase();
    assert_eq!(
        r.redact(&format!("bytes: {lower}")),
        "bytes: [REDACTED:HEX]"
    );
    assert_eq!(
        r.redact(&format!("BYTES={upper}.")),
        "BYTES=[REDACTED:HEX]."
    );
    let r = redactor("HEX", "zz\u{ff}zzzz");
    assert_eq!(r.redact("7a7ac3bf7a7a7a7a"), "[REDACTED:HEX]");
    assert_eq!(r.redact("7A7AC3BF7A7A7A7A"), "[REDACTED:HEX]");
}

#[test]
fn each_line_of_a_multi_line_value_is_masked_on_its_own() {
    let key =
        "-----BEGIN KEY-----\r\nMIIEvQIBADANBgkq\r\nhkiG9w0BAQEFAASC\r\nab\r\n-----END KEY-----\n";
    let r = redactor("PEM", key);
    assert_eq!(r.redact("line: hkiG9w0BAQEFAASC"), "line: [REDACTED:PEM]");
    assert_eq!(r.redact("MIIEvQIBADANBgkq!"), "[REDACTED:PEM]!");
    assert_eq!(r.redact("-----END KEY-----"), "[REDACTED:PEM]");
    // A short line is not masked on its own...
    assert_eq!(r.redact("ab"), "ab");
    // ... but the whole value is, as are its lines' encodings.
    assert_eq!(r.redact(key.trim()), "[REDACTED:PEM]");
    let b64 = STANDARD.encode("xMIIEvQIBADANBgkq");
    assert!(r.redact(&b64).contains("[REDACTED:PEM]"), "{b64}");
    let json = serde_json::to_string(key.trim()).unwrap();
    assert_eq!(r.redact(&json), "\"[REDACTED:PEM]\"");
}

#[test]
fn value_split_across_two_pushes_at_every_point() {
    let secret = "correct-horse-battery";
    let r = redactor("HORSE", secret);
    let b64 = STANDARD.encode(format!("user:{secret}"));
    for text in [
        format!("before {secret} after"),
        secret.to_string(),
        format!("{secret}{secret}"),
        format!("Basic {b64}\n"),
        format!("q=correct-horse-battery%20x and {}", hex_of(secret)),
    ] {
        for split in char_boundaries(&text) {
            let out = both_ways(&r, &text, split);
            assert!(!out.contains(secret), "{out}");
            assert!(out.contains("[REDACTED:HORSE]"));
        }
    }
}

fn hex_of(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn stream_holds_back_only_a_possible_prefix() {
    let r = redactor("K", "abcdefghij");
    let mut s = StreamRedactor::new();
    let max = r.max_pattern_len();
    let text = "x".repeat(100);
    let out = s.push(&r, &text);
    assert_eq!(out.len(), 100 - (max - 1));
    assert_eq!(s.push(&r, "abcde"), "xxxxx");
    let mut rest = s.push(&r, "fghij tail");
    rest += &s.finish(&r);
    assert!(rest.ends_with("[REDACTED:K] tail"), "{rest}");
    assert!(!rest.contains("abcde"));
    // No secrets: everything passes straight through.
    let empty = Redactor::new();
    assert_eq!(StreamRedactor::new().push(&empty, "abc"), "abc");
}

#[test]
fn stream_over_many_small_chunks() {
    let secret = "s3cr3t-v@lue-w1th-stuff";
    let r = redactor("S", secret);
    let text = format!("start {secret} middle {} end", STANDARD.encode(secret));
    for size in 1..8 {
        let mut s = StreamRedactor::new();
        let mut out = String::new();
        for chunk in text.as_bytes().chunks(size) {
            out += &s.push(&r, std::str::from_utf8(chunk).unwrap());
        }
        out += &s.finish(&r);
        assert_eq!(out, r.redact(&text));
        assert_eq!(out.matches("[REDACTED:S]").count(), 2, "{out}");
    }
}

#[test]
fn overlapping_secrets_are_both_masked() {
    let r = Redactor::new();
    assert!(r.register("A", "alpha-beta-gamma"));
    assert!(r.register("B", "gamma-delta-epsilon"));
    assert!(r.register("OUTER", "supersecretvalue"));
    assert!(r.register("INNER", "secretval"));
    // Partial overlap: the union is masked, so no part of B survives.
    let text = "xx alpha-beta-gamma-delta-epsilon yy";
    for split in char_boundaries(text) {
        let out = both_ways(&r, text, split);
        assert_eq!(out, "xx [REDACTED:A] yy");
    }
    assert_eq!(r.redact("gamma-delta-epsilon"), "[REDACTED:B]");
    // The same overlap in hex is longer than the stream's hold-back, so a
    // stream must hold the first match back until it knows where the
    // region ends, or it would emit B's tail.
    let text = format!("pre {} post", hex_of("alpha-beta-gamma-delta-epsilon"));
    assert!(hex_of("alpha-beta-gamma").len() < r.max_pattern_len());
    for split in char_boundaries(&text) {
        assert_eq!(both_ways(&r, &text, split), "pre [REDACTED:A] post");
    }
    // Containment: the longest match wins, the inner one alone is masked.
    assert_eq!(r.redact("a supersecretvalue."), "a [REDACTED:OUTER].");
    assert_eq!(r.redact("a secretval."), "a [REDACTED:INNER].");
    assert_eq!(
        r.redact("secretval supersecretvalue"),
        "[REDACTED:INNER] [REDACTED:OUTER]"
    );
}

#[test]
fn non_ascii_values_and_text() {
    let secret = "pässwörd-日本語-🔑";
    let r = redactor("UNI", secret);
    let text = format!("ünïcödé → {secret} ← ok");
    for split in char_boundaries(&text) {
        assert_eq!(both_ways(&r, &text, split), "ünïcödé → [REDACTED:UNI] ← ok");
    }
    // URL encoding of the UTF-8 bytes.
    let url = "p%C3%A4ssw%C3%B6rd-%E6%97%A5%E6%9C%AC%E8%AA%9E-%F0%9F%94%91";
    assert_eq!(r.redact(&format!("?k={url}")), "?k=[REDACTED:UNI]");
    // JSON: serde_json keeps UTF-8; ASCII-only serializers escape it.
    let ascii = r"p\u00e4ssw\u00f6rd-\u65e5\u672c\u8a9e-\ud83d\udd11";
    assert_eq!(r.redact(&format!("\"{ascii}\"")), "\"[REDACTED:UNI]\"");
    assert_eq!(r.redact(&hex_of(secret)), "[REDACTED:UNI]");
    let b64 = URL_SAFE.encode(format!("ab{secret}"));
    assert!(!r.redact(&b64).contains(&URL_SAFE.encode(secret)[..12]));
}

#[test]
fn the_same_name_can_hold_several_values() {
    let r = Redactor::new();
    assert!(r.register("ROTATED", "old-value-1234"));
    assert!(r.register("ROTATED", "new-value-5678"));
    assert_eq!(
        r.redact("old-value-1234 new-value-5678"),
        "[REDACTED:ROTATED] [REDACTED:ROTATED]"
    );
}

#[test]
fn registration_after_redaction_takes_effect() {
    let r = Redactor::new();
    assert!(r.register("A", "first-secret"));
    assert_eq!(r.redact("second-secret"), "second-secret");
    assert!(r.register("B", "second-secret"));
    assert_eq!(r.redact("second-secret"), "[REDACTED:B]");
}

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn string(&mut self, alphabet: &[char], len: usize) -> String {
        (0..len)
            .map(|_| alphabet[self.below(alphabet.len())])
            .collect()
    }
}

#[test]
fn random_values_and_splits_never_leak_through_a_stream() {
    let alphabet: Vec<char> = "abcdefxyzABC0123456789 -_/+=:\"\\\n%é日🔑"
        .chars()
        .collect();
    let filler: Vec<char> = "abcdef xyz 012\n{}\":,é".chars().collect();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for _ in 0..300 {
        let r = Redactor::new();
        let mut secrets = Vec::new();
        for i in 0..1 + rng.below(3) {
            let len = MIN_MASKED_LEN + rng.below(30);
            let secret = rng.string(&alphabet, len);
            if r.register(&format!("S{i}"), &secret) {
                secrets.push(secret.trim().to_string());
            }
        }
        let mut text = String::new();
        for _ in 0..1 + rng.below(6) {
            let n = rng.below(40);
            text += &rng.string(&filler, n);
            if !secrets.is_empty() {
                text += &secrets[rng.below(secrets.len())];
            }
        }
        let mut s = StreamRedactor::new();
        let mut out = String::new();
        let mut rest = text.as_str();
        while !rest.is_empty() {
            let mut n = (1 + rng.below(20)).min(rest.len());
            while !rest.is_char_boundary(n) {
                n += 1;
            }
            out += &s.push(&r, &rest[..n]);
            rest = &rest[n..];
        }
        out += &s.finish(&r);
        assert_eq!(out, r.redact(&text), "text {text:?}");
        for secret in &secrets {
            assert!(
                !out.contains(secret.as_str()),
                "{secret:?} leaked in {out:?}"
            );
        }
    }
}

#[test]
fn many_secrets_use_the_prefilter_and_find_everything_it_would() {
    let alnum: Vec<char> = ('a'..='z').chain('A'..='Z').chain('0'..='9').collect();
    let mut rng = Rng(42);
    let r = Redactor::new();
    let mut secrets = Vec::new();
    for i in 0..40 {
        // Lengths from the minimum up, so the filter's q and stride vary
        // with the shortest pattern.
        let len = MIN_MASKED_LEN + i % 30;
        let secret = rng.string(&alnum, len);
        assert!(r.register(&format!("S{i}"), &secret));
        secrets.push(secret);
    }
    let compiled = r.compiled();
    assert!(compiled.filter.is_some());
    let filler: Vec<char> = "abc xyz 0123456789abcdef\n{}\":,é".chars().collect();
    for round in 0..300 {
        let mut text = String::new();
        for _ in 0..rng.below(8) {
            let n = rng.below(200);
            text += &rng.string(&filler, n);
            let secret = &secrets[rng.below(secrets.len())];
            text += &match rng.below(4) {
                0 => secret.clone(),
                1 => hex_of(secret),
                2 => STANDARD.encode(format!("{}{secret}", "u:".repeat(round % 3))),
                _ => secret[..secret.len() - 1].to_string(),
            };
        }
        assert_eq!(
            compiled.regions(text.as_bytes()),
            compiled.regions_unfiltered(&text),
            "{text:?}"
        );
        let out = r.redact(&text);
        for secret in &secrets {
            assert!(!out.contains(secret.as_str()));
        }
    }
}

#[test]
fn json_escaped_twice_is_masked() {
    let r = Redactor::new();
    let secret = "pa\"ss\\word-123";
    assert!(r.register("PW", secret));
    let once = serde_json::to_string(secret).unwrap();
    let twice = serde_json::to_string(&once).unwrap();
    let out = r.redact(&twice);
    assert!(!out.contains("word-123"), "{out}");
    assert!(out.contains("[REDACTED:PW]"), "{out}");
}

#[test]
fn lowercase_percent_encoding_is_masked() {
    let r = Redactor::new();
    assert!(r.register("K", "a/b c+d=e&f"));
    let out = r.redact("url?k=a%2fb%20c%2bd%3de%26f");
    assert!(out.contains("[REDACTED:K]"), "{out}");
    assert!(!out.contains("%2fb"), "{out}");
}

/// `secret` with the character at each position written as `\uXXXX`.
fn unicode_escaped_at(secret: &str, at: usize) -> String {
    secret
        .chars()
        .enumerate()
        .map(|(i, c)| {
            if i == at {
                let mut units = [0u16; 2];
                c.encode_utf16(&mut units)
                    .iter()
                    .map(|u| format!("\\u{u:04x}"))
                    .collect()
            } else {
                c.to_string()
            }
        })
        .collect()
}

#[test]
fn a_value_with_some_characters_unicode_escaped_is_masked() {
    let secret = "hunter2-correct-hörse";
    let r = redactor("PW", secret);
    for at in 0..secret.chars().count() {
        let text = format!("{{\"v\":\"{}\"}}", unicode_escaped_at(secret, at));
        let out = r.redact(&text);
        assert_eq!(out, "{\"v\":\"[REDACTED:PW]\"}", "escaped at {at}");
    }
}

#[test]
fn percent_and_hex_escapes_of_some_characters_are_masked() {
    let r = redactor("PW", "hunter2-correct");
    for text in [
        "%68unter2-correct",
        "hunter2%2Dcorrect",
        r"\x68unter2-correct",
    ] {
        let out = r.redact(text);
        assert_eq!(out, "[REDACTED:PW]", "{text}");
    }
}

#[test]
fn a_value_json_escaped_three_times_is_masked() {
    let secret = "pa\"ss\\word-123";
    let r = redactor("PW", secret);
    let mut text = secret.to_string();
    for _ in 0..3 {
        let quoted = serde_json::to_string(&text).unwrap();
        text = quoted[1..quoted.len() - 1].to_string();
    }
    let out = r.redact(&text);
    assert!(!out.contains("word-123"), "{out}");
    assert!(out.contains("[REDACTED:PW]"), "{out}");
}

#[test]
fn escaped_text_without_a_value_is_left_alone() {
    let r = redactor("PW", "hunter2-correct");
    let text = r#"{"path":"C:\\dir","pct":"100%","u":"\u0041"}"#;
    assert!(matches!(r.redact(text), Cow::Borrowed(_)));
}

#[test]
fn a_value_split_across_pieces_is_masked_in_each() {
    let secret = "hunter2-correct-horse";
    let r = redactor("PW", secret);
    for split in 1..secret.len() {
        let mut pieces = vec![
            "before".to_string(),
            format!("x {}", &secret[..split]),
            format!("{} y", &secret[split..]),
            "after".to_string(),
        ];
        r.redact_pieces(&mut pieces);
        assert_eq!(
            pieces,
            ["before", "x [REDACTED:PW]", "[REDACTED:PW] y", "after"],
            "split at {split}"
        );
    }
    // Also over three pieces, the middle one all secret.
    let mut pieces = vec!["hunter2".to_string(), "-correct".into(), "-horse!".into()];
    r.redact_pieces(&mut pieces);
    assert_eq!(pieces, ["[REDACTED:PW]", "[REDACTED:PW]", "[REDACTED:PW]!"]);
}

#[test]
fn few_patterns_scanned_by_finders_give_the_automatons_regions() {
    // Overlapping and self-overlapping occurrences, encodings, a value
    // inside another, runs of one pattern: the finder path must name and
    // cover exactly what the leftmost-longest automaton does.
    let r = Redactor::new();
    assert!(r.register("A", "aaaaaaa"));
    assert!(r.register("B", "aaaabbbbbb"));
    assert!(r.register("C", "tok_0123456789"));
    let compiled = r.compiled();
    assert!(compiled.finders.is_some());
    let mut rng = Rng(0x5eed);
    let pieces = [
        "a",
        "aaaa",
        "aaaaaaa",
        "aaaabbbbbb",
        "b",
        "tok_0123456789",
        "x",
        " ",
        "tok_01",
        "dG9rXzAxMjM0NTY3ODk=",
        "746f6b5f30313233343536373839",
        "é",
    ];
    for _ in 0..500 {
        let mut text = String::new();
        for _ in 0..rng.below(12) {
            text += pieces[rng.below(pieces.len())];
        }
        assert_eq!(
            compiled.regions(text.as_bytes()),
            compiled.regions_unfiltered(&text),
            "{text:?}"
        );
    }
    // A small text builds no automaton; past the scan budget the automaton
    // is built once and takes over.
    let r = Redactor::new();
    assert!(r.register("C", "tok_0123456789"));
    assert!(r.register("A", "aaaaaaa"));
    let compiled = r.compiled();
    assert_eq!(r.redact("x tok_0123456789 y"), "x [REDACTED:C] y");
    assert!(compiled.matcher.get().is_none());
    let big = "aaaaaaab tok_0123456789 ".repeat(1 << 16);
    let masked = r.redact(&big);
    assert!(compiled.matcher.get().is_some());
    assert!(!masked.contains("tok_0123456789") && !masked.contains("aaaaaaa"));
}
