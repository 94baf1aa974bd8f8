//! Throughput of `Redactor::redact` over 64 MiB of log text with 1,000
//! registered secrets (32 random alphanumeric chars each, ~10 patterns each),
//! a few of which occur in the text. Also: the same through a
//! `StreamRedactor` in 64 KiB chunks, log text without any occurrence (the
//! scan alone), the same with JSON escapes and percent signs throughout
//! (the decoded views), and a redactor with no secrets.
//!
//! `CARGO_TARGET_DIR=/work/main/target cargo bench --workspace --bench redact -- --sample-size 10`

use std::hint::black_box;
use std::time::Instant;

use airlock_host_api::redact::{Redactor, StreamRedactor};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const TEXT_LEN: usize = 64 << 20;
const SECRETS: usize = 1_000;

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
}

const WORDS: &[&str] = &[
    "request",
    "processed",
    "items",
    "user",
    "order",
    "payment",
    "retry",
    "cache",
    "miss",
    "hit",
    "connection",
    "established",
    "timeout",
    "upstream",
    "response",
    "status",
    "handler",
    "worker",
    "queue",
    "batch",
    "completed",
    "started",
    "failed",
    "token",
    "refresh",
    "the",
    "a",
    "of",
    "to",
    "in",
    "for",
    "with",
    "from",
    "after",
    "database",
    "query",
    "rows",
];
const LEVELS: &[&str] = &["INFO", "DEBUG", "WARN", "ERROR", "TRACE"];
const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

fn secret(rng: &mut Rng) -> String {
    (0..32)
        .map(|_| ALNUM[rng.below(ALNUM.len())] as char)
        .collect()
}

fn log_text(rng: &mut Rng, secrets: &[String], plant: bool) -> String {
    let mut text = String::with_capacity(TEXT_LEN + 1024);
    let mut line = 0u64;
    while text.len() < TEXT_LEN {
        line += 1;
        let ms = line * 7 % 1000;
        let level = LEVELS[rng.below(LEVELS.len())];
        text += &format!(
            "2026-04-14T12:{:02}:{:02}.{ms:03}Z {level} worker-{} ",
            line / 60 % 60,
            line % 60,
            rng.below(8)
        );
        for _ in 0..4 + rng.below(8) {
            text += WORDS[rng.below(WORDS.len())];
            text.push(' ');
        }
        match rng.below(4) {
            0 => text += &format!("in {}ms", rng.below(5000)),
            1 => {
                text += &format!(
                    r#"{{"request_id":"req-{:08x}","user":"u{}","status":{},"count":{},"ok":true}}"#,
                    rng.next() as u32,
                    rng.below(100_000),
                    [200, 201, 404, 500][rng.below(4)],
                    rng.below(1000)
                )
            }
            2 => text += &format!("id={:016x} bytes={}", rng.next(), rng.below(1 << 20)),
            _ => text += "done",
        }
        // A few secrets really occur: one line in ~200,000.
        if rng.below(200_000) == 0 && plant {
            text += " key=";
            text += &secrets[rng.below(secrets.len())];
        }
        text.push('\n');
    }
    text
}

fn bench(c: &mut Criterion) {
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let secrets: Vec<String> = (0..SECRETS).map(|_| secret(&mut rng)).collect();
    let text = log_text(&mut rng, &secrets, true);
    let clean = log_text(&mut rng, &secrets, false);
    let redactor = Redactor::new();
    for (i, s) in secrets.iter().enumerate() {
        assert!(redactor.register(&format!("SECRET_{i}"), s));
    }
    let started = Instant::now();
    let masked = redactor.redact(&text);
    eprintln!(
        "first redact (builds the automaton): {:?}; {} matches; longest pattern {} bytes",
        started.elapsed(),
        masked.matches("[REDACTED:").count(),
        redactor.max_pattern_len()
    );
    assert!(masked.contains("[REDACTED:SECRET_"));
    drop(masked);

    let mut group = c.benchmark_group("redact");
    group.throughput(Throughput::Bytes(text.len() as u64));
    group.bench_function("64MiB_1000_secrets", |b| {
        b.iter(|| redactor.redact(black_box(&text)).len())
    });
    group.bench_function("64MiB_1000_secrets_stream_64KiB_chunks", |b| {
        b.iter(|| {
            let mut stream = StreamRedactor::new();
            let mut total = 0;
            let mut rest = text.as_str();
            while !rest.is_empty() {
                let mut n = rest.len().min(64 << 10);
                while !rest.is_char_boundary(n) {
                    n += 1;
                }
                total += stream.push(&redactor, &rest[..n]).len();
                rest = &rest[n..];
            }
            total + stream.finish(&redactor).len()
        })
    });
    // No occurrence: the borrowed path, so this is the scan alone, without
    // building a 64 MiB output string.
    group.bench_function("64MiB_1000_secrets_no_occurrence", |b| {
        b.iter(|| {
            let out = redactor.redact(black_box(&clean));
            assert!(matches!(out, std::borrow::Cow::Borrowed(_)));
            out.len()
        })
    });
    // The same text with every JSON record escaped once more (JSON logged
    // inside JSON) and a percent-encoded path per record: the decoded views
    // are searched around each escape. Compare with the case above.
    let escaped = clean
        .replace('"', "\\\"")
        .replace("status", "/api%2Fstatus");
    group.throughput(Throughput::Bytes(escaped.len() as u64));
    group.bench_function("64MiB_1000_secrets_escaped_no_occurrence", |b| {
        b.iter(|| {
            let out = redactor.redact(black_box(&escaped));
            assert!(matches!(out, std::borrow::Cow::Borrowed(_)));
            out.len()
        })
    });
    group.throughput(Throughput::Bytes(text.len() as u64));
    // What a proxy request or a run with two secrets has: a redactor built,
    // used once on a small body, dropped. The build is the cost here.
    let body = &clean[..16 * 1024];
    group.throughput(Throughput::Bytes(body.len() as u64));
    group.bench_function("fresh_redactor_2_secrets_16KiB", |b| {
        b.iter(|| {
            let r = Redactor::new();
            r.register("A", &secrets[0]);
            r.register("B", &secrets[1]);
            r.redact(black_box(body)).len()
        })
    });
    let two = Redactor::new();
    two.register("A", &secrets[0]);
    two.register("B", &secrets[1]);
    group.throughput(Throughput::Bytes(clean.len() as u64));
    group.bench_function("64MiB_2_secrets_no_occurrence", |b| {
        b.iter(|| two.redact(black_box(&clean)).len())
    });
    group.throughput(Throughput::Bytes(text.len() as u64));
    let none = Redactor::new();
    group.bench_function("64MiB_no_secrets", |b| {
        b.iter(|| none.redact(black_box(&text)).len())
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
