use airlock_sdk::Error;
use serde_json::Value;

fn run(_: Value) -> Result<Value, Error> {
    let mut hoard: Vec<Vec<u8>> = Vec::new();
    loop {
        hoard.push(std::hint::black_box(vec![1u8; 1024 * 1024]));
    }
}

airlock_sdk::step!(run);
