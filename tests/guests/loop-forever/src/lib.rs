use airlock_sdk::Error;
use serde_json::Value;

fn run(_: Value) -> Result<Value, Error> {
    let mut n: u64 = 0;
    loop {
        n = std::hint::black_box(n.wrapping_add(1));
    }
}

airlock_sdk::step!(run);
