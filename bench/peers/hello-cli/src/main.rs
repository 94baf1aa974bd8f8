//! examples/hello as a command: `hello-cli '{"name":"Ada"}'` prints
//! `{"greeting":"Hello, Ada!"}` and logs one line to stderr — the work
//! `airlock run hello.wasm --input '{"name":"Ada"}'` does, so
//! `wasmtime run` of this (precompiled) is the peer of a cached `airlock run`.

use std::process::ExitCode;

use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
struct Named {
    name: String,
}

#[derive(Serialize)]
struct Output {
    greeting: String,
}

fn main() -> ExitCode {
    let input = std::env::args().nth(1).unwrap_or_default();
    let named: Named = match serde_json::from_str(&input) {
        Ok(n) => n,
        Err(e) => {
            eprintln!("input is not {{\"name\": …}}: {e}");
            return ExitCode::from(2);
        }
    };
    let name = named.name.trim();
    if name.is_empty() {
        eprintln!("`name` must not be empty");
        return ExitCode::from(1);
    }
    eprintln!("[INFO] greeting {name}");
    let out = Output {
        greeting: format!("Hello, {name}!"),
    };
    println!(
        "{}",
        serde_json::to_string(&out).expect("a struct of strings serialises")
    );
    ExitCode::SUCCESS
}
