//! Conformance case `context`.

use airlock_sdk::Error;
use airlock_sdk::context::{self, Trigger};
use serde_json::{Value, json};

fn run(_: Value) -> Result<Value, Error> {
    let c = context::get();
    let trigger = match c.trigger {
        Trigger::Cli => "cli",
        Trigger::Api => "api",
        Trigger::Http => "http",
    };
    Ok(json!({
        "run_id": c.run_id,
        "step": c.step,
        "project": c.project,
        "external_user_id": c.external_user_id,
        "trigger": trigger,
        "attempt": context::attempt(),
        "idempotency_key": context::idempotency_key(),
    }))
}

airlock_sdk::step!(run);

// A binary only so Cargo names the component `<case>.wasm`; `main` never runs.
fn main() {}
