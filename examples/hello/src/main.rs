//! The smallest useful step: `{"name":"Ada"}` in, a greeting out. Behind an
//! HTTP trigger it reads the name from the request's JSON body instead.

use airlock_sdk::{Error, log};
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
#[serde(untagged)]
enum Input {
    /// A direct run: `{"name": "Ada"}`.
    Direct { name: String },
    /// An HTTP trigger's request whose JSON body is `{"name": "Ada"}`.
    Trigger { json: Named },
}

#[derive(Deserialize)]
struct Named {
    name: String,
}

#[derive(Serialize)]
struct Output {
    greeting: String,
}

fn run(input: Input) -> Result<Output, Error> {
    let name = match &input {
        Input::Direct { name }
        | Input::Trigger {
            json: Named { name },
        } => name.trim(),
    };
    if name.is_empty() {
        return Err(Error::new("`name` must not be empty").with_code("empty_name"));
    }
    log::info(format!("greeting {name}"));
    Ok(Output {
        greeting: format!("Hello, {name}!"),
    })
}

airlock_sdk::step!(run);

// Built as a binary only so Cargo names the component `<crate>.wasm` (library
// outputs get underscores). Airlock calls the `run` export; `main` never runs.
fn main() {}
