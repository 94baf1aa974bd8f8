use airlock_sdk::{Error, log};
use serde_json::Value;

fn run(_: Value) -> Result<Value, Error> {
    log::info("x".repeat(1024 * 1024));
    Ok(Value::Null)
}

airlock_sdk::step!(run);
