//! Reports what `secrets.get(name)` and `reveal` answer, without failing.
use airlock_sdk::{Error, secrets};
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Deserialize)]
struct Input {
    name: String,
}

fn run(input: Input) -> Result<Value, Error> {
    match secrets::get(&input.name) {
        Err(e) => Ok(json!({ "get": format!("{e:?}"), "message": e.to_string() })),
        Ok(secret) => {
            let name = secret.name();
            match secret.reveal() {
                Ok(v) => Ok(json!({ "get": "ok", "name": name, "reveal": "ok", "len": v.len() })),
                Err(e) => Ok(json!({
                    "get": "ok", "name": name,
                    "reveal": format!("{e:?}"), "message": e.to_string()
                })),
            }
        }
    }
}

airlock_sdk::step!(run);
