//! Logs a line holding the secret SECRET (granted and revealed), then
//! waits for an HTTP GET of `url` to answer (a loopback server the test
//! releases), then logs more and returns what it got: a run whose first
//! lines exist while it still runs, for live-log tests. `fail: true` makes
//! it fail after the wait.
use airlock_sdk::{Error, http, log, secrets};
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Deserialize)]
struct Input {
    url: String,
    #[serde(default)]
    fail: bool,
}

fn run(input: Input) -> Result<Value, Error> {
    let secret = secrets::get("SECRET")?.reveal()?;
    log::info(format!("first: the secret is {secret}"));
    println!("stdout before the wait");
    let r = http::get(input.url).send()?;
    log::warn(format!("released with {}", r.status()));
    eprintln!("stderr after the wait, {secret}");
    if input.fail {
        return Err(Error::new(format!("failed on purpose near {secret}")).with_code("on_purpose"));
    }
    Ok(json!({ "released": r.status(), "echo": format!("out {secret}") }))
}

airlock_sdk::step!(run);
