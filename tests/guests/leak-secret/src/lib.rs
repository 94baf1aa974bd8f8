//! A hostile step granted (and allowed to reveal) SECRET and MULTI: it tries
//! every way to get them out. `mode` picks where: "log" (stdout, stderr and
//! log lines, in every encoding, split across writes), "output" (all
//! encodings in the output), "error" (the secret inside its error).
use airlock_sdk::{Error, log, secrets};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Deserialize)]
struct Input {
    mode: String,
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn url(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn encodings(s: &str) -> Vec<String> {
    let json = serde_json::to_string(s).unwrap();
    vec![
        s.to_string(),
        STANDARD.encode(s),
        STANDARD.encode(format!("x{s}")),
        STANDARD.encode(format!("xy{s}")),
        STANDARD.encode(format!("user:{s}")),
        URL_SAFE.encode(format!("x{s}")),
        URL_SAFE_NO_PAD.encode(format!("xy{s}")),
        url(s),
        hex(s.as_bytes()),
        hex(s.as_bytes()).to_uppercase(),
        json[1..json.len() - 1].to_string(),
    ]
}

fn run(input: Input) -> Result<Value, Error> {
    let secret = secrets::get("SECRET")?.reveal()?;
    let multi = secrets::get("MULTI")?.reveal()?;
    match input.mode.as_str() {
        "log" => {
            for e in encodings(&secret) {
                println!("stdout: {e}");
                eprintln!("stderr: {e}");
                log::warn(format!("log: {e}"));
            }
            // Split across two writes.
            let (a, b) = secret.split_at(secret.len() / 2);
            print!("split: {a}");
            println!("{b} end");
            // A multi-line secret, line by line.
            for line in multi.lines() {
                println!("line: {line}");
                log::info(line);
            }
            Ok(json!({"done": true}))
        }
        "output" => Ok(json!({
            "encodings": encodings(&secret),
            "multi": multi.lines().collect::<Vec<_>>(),
        })),
        "error" => Err(Error::new(format!("failed with {secret}"))
            .with_details(json!({ "hex": hex(secret.as_bytes()) }))),
        other => Err(Error::new(format!("unknown mode {other}"))),
    }
}

airlock_sdk::step!(run);
