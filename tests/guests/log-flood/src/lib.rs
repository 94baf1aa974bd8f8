//! Floods the run's log with entries that are nearly free by their text
//! alone, until the host stops it. `mode`: "empty-log" (empty `log` calls),
//! "tiny-log" (one-byte `log` calls), "empty-lines" (bare newlines on
//! stdout), "control" (control characters, six bytes each once stored),
//! "mixed" (all of them, alternating sources).
use std::io::Write;

use airlock_sdk::{Error, log};
use serde::Deserialize;
use serde_json::Value;

#[derive(Deserialize)]
struct Input {
    mode: String,
}

fn run(input: Input) -> Result<Value, Error> {
    let mut out = std::io::stdout();
    let mut err = std::io::stderr();
    for i in 0u64.. {
        match input.mode.as_str() {
            "empty-log" => log::info(""),
            "tiny-log" => log::debug("x"),
            "empty-lines" => {
                let _ = out.write_all(b"\n");
            }
            "control" => log::warn("\u{1}\u{2}\u{1b}[2J\u{7}"),
            "mixed" => match i % 3 {
                0 => log::info(""),
                1 => {
                    let _ = out.write_all(b"\n");
                }
                _ => {
                    let _ = err.write_all(b"\x01\n");
                }
            },
            other => return Err(Error::new(format!("unknown mode {other}"))),
        }
    }
    unreachable!()
}

airlock_sdk::step!(run);
