use airlock_sdk::Error;
use serde_json::Value;

fn run(_: Value) -> Result<Value, Error> {
    panic!("deliberate panic from the panic guest");
}

airlock_sdk::step!(run);
