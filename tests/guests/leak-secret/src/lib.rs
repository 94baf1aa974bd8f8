//! A hostile step granted (and allowed to reveal) SECRET and MULTI: it tries
//! every way to get them out. `mode` picks where: "log" (stdout, stderr and
//! log lines, in every encoding, split across writes), "output" (all
//! encodings in the output), "error" (the secret inside its error),
//! "escaped-output" / "escaped-error" (the secret with characters written
//! as JSON `\u` escapes, in raw JSON text the host parses: values, keys,
//! error message and details), "escaped-log" (`\u`-escaped and three times
//! JSON-escaped in log lines), "split-log" (halves in two `log` calls, and
//! stdout then stderr), "deep" (an output nested 100,000 levels).
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
        "escaped-log" => {
            let e = escaped(&secret);
            log::info(format!("escaped: {e}"));
            println!("escaped: {e}");
            let mut thrice = secret.clone();
            for _ in 0..3 {
                let q = serde_json::to_string(&thrice).unwrap();
                thrice = q[1..q.len() - 1].to_string();
            }
            log::info(format!("thrice: {thrice}"));
            Ok(json!({"done": true}))
        }
        "split-log" => {
            let (a, b) = secret.split_at(secret.len() / 2);
            log::info(format!("first {a}"));
            log::info(format!("{b} second"));
            print!("third {a}");
            std::io::Write::flush(&mut std::io::stdout()).unwrap();
            eprintln!("{b} fourth");
            Ok(json!({"done": true}))
        }
        other => Err(Error::new(format!("unknown mode {other}"))),
    }
}

/// `s` with every ASCII letter written as a JSON `\u` escape (the rest JSON
/// escaped as usual): the same string to any JSON reader.
fn escaped(s: &str) -> String {
    let json = serde_json::to_string(s).unwrap();
    json[1..json.len() - 1]
        .chars()
        .map(|c| {
            if c.is_ascii_alphabetic() {
                format!("\\u{:04x}", c as u32)
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// The modes whose output or error is raw JSON text the host must parse:
/// written by hand, past the SDK's serializer.
fn raw(mode: &str, secret: &str) -> Option<Result<String, String>> {
    let e = escaped(secret);
    Some(match mode {
        "escaped-output" => Ok(format!(
            r#"{{"value":"{e}","{e}":"as a key","list":["x{e}y"]}}"#
        )),
        "escaped-error" => Err(format!(
            r#"{{"message":"failed with {e}","code":"leak","details":{{"k":"{e}"}}}}"#
        )),
        "deep" => Ok(format!("{}{}", "[".repeat(100_000), "]".repeat(100_000))),
        _ => return None,
    })
}

struct Step;

impl airlock_sdk::__bindings::Guest for Step {
    fn run(input: String) -> Result<String, String> {
        if let Ok(parsed) = serde_json::from_str::<Input>(&input)
            && let Ok(secret) = secrets::get("SECRET").and_then(|s| s.reveal())
            && let Some(result) = raw(&parsed.mode, &secret)
        {
            return result;
        }
        airlock_sdk::__private::run_json(&input, run)
    }
}

airlock_sdk::__bindings::__export_step_world!(Step with_types_in airlock_sdk::__bindings);
