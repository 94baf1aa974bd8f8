//! Recurses without end on the wasm call stack (no address-taken locals, so
//! nothing lands on Rust's shadow stack in linear memory): must trap with
//! "call stack exhausted".
use airlock_sdk::Error;
use serde_json::Value;

#[inline(never)]
fn deeper(n: u64, stop: u64) -> u64 {
    if n == stop {
        return 0;
    }
    // Not a tail call, and not an accumulator LLVM can turn into a loop.
    deeper(n + 1, stop).rotate_left(1).wrapping_sub(n)
}

fn run(input: Value) -> Result<Value, Error> {
    // `stop` comes from the input so the compiler cannot see the end.
    let stop = input
        .get("stop")
        .and_then(Value::as_u64)
        .unwrap_or(u64::MAX);
    Ok(Value::from(deeper(0, stop)))
}

airlock_sdk::step!(run);
