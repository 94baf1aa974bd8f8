use airlock_sdk::Error;
use serde_json::{Value, json};

fn run(_: Value) -> Result<Value, Error> {
    let vars: Vec<String> = std::env::vars().map(|(k, _)| k).collect();
    let args: Vec<String> = std::env::args().collect();
    let home = std::env::var("HOME").ok();
    if vars.is_empty() && args.is_empty() && home.is_none() {
        Err(Error::new(
            "denied: no environment variables and no arguments",
        ))
    } else {
        Ok(json!({ "leaked": { "vars": vars, "args": args } }))
    }
}

airlock_sdk::step!(run);
