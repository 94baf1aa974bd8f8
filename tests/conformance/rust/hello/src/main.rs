//! Conformance case `hello`.

use airlock_sdk::{Error, log};
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
struct Input {
    name: String,
}

#[derive(Serialize)]
struct Output {
    greeting: String,
}

fn run(input: Input) -> Result<Output, Error> {
    if input.name.is_empty() {
        return Err(Error::new("name must not be empty").with_code("empty_name"));
    }
    log::info(format!("greeting {}", input.name));
    Ok(Output {
        greeting: format!("Hello, {}!", input.name),
    })
}

airlock_sdk::step!(run);

// A binary only so Cargo names the component `<case>.wasm`; `main` never runs.
fn main() {}
