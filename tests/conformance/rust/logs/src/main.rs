//! Conformance case `logs`.

use airlock_sdk::{Error, log};
use serde_json::Value;

fn run(_: Value) -> Result<Value, Error> {
    log::trace("one");
    log::debug("two");
    log::info("three");
    log::warn("four");
    log::error("five");
    println!("six");
    eprintln!("seven");
    Ok(Value::Null)
}

airlock_sdk::step!(run);

// A binary only so Cargo names the component `<case>.wasm`; `main` never runs.
fn main() {}
