//! Leaks its secret on purpose, three ways: stdout, the log, the output.
//! Run it to see Airlock mask every one of them as `[REDACTED:TOKEN]`.

use airlock_sdk::{Error, log, secrets};
use serde::Serialize;
use serde_json::Value;

#[derive(Serialize)]
struct Output {
    token: String,
}

fn run(_: Value) -> Result<Output, Error> {
    let token = secrets::get("TOKEN")?.reveal()?;
    println!("stdout sees the token: {token}");
    log::info(format!("the log sees the token: {token}"));
    Ok(Output { token })
}

airlock_sdk::step!(run);

// Built as a binary only so Cargo names the component `<crate>.wasm` (library
// outputs get underscores). Airlock calls the `run` export; `main` never runs.
fn main() {}
