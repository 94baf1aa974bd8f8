use airlock_sdk::{Error, context, log};
use serde_json::{Value, json};

fn run(input: Value) -> Result<Value, Error> {
    let c = context::get();
    log::trace("t");
    log::debug("d");
    log::info("i");
    log::warn("w");
    log::error("e");
    println!("to stdout");
    eprintln!("to stderr");
    Ok(json!({
        "run_id": c.run_id,
        "step": c.step,
        "project": c.project,
        "external_user_id": c.external_user_id,
        "trigger": format!("{:?}", c.trigger),
        "input": input,
    }))
}

airlock_sdk::step!(run);
