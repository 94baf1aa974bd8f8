//! Benchmark guest: sends `n` GET requests to `url` one after another and
//! returns how long each took, measured inside the guest.
use std::time::Instant;

use airlock_sdk::{Error, http};
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Deserialize)]
struct Input {
    url: String,
    n: usize,
}

fn run(input: Input) -> Result<Value, Error> {
    let mut nanos = Vec::with_capacity(input.n);
    for _ in 0..input.n {
        let started = Instant::now();
        let r = http::get(input.url.clone()).send()?;
        nanos.push(started.elapsed().as_nanos() as u64);
        if r.status() != 200 {
            return Err(Error::new(format!("status {}", r.status())));
        }
    }
    Ok(json!({ "nanos": nanos }))
}

airlock_sdk::step!(run);
