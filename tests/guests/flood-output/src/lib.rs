use airlock_sdk::Error;
use serde_json::Value;

fn run(_: Value) -> Result<Value, Error> {
    let mut i: u64 = 0;
    loop {
        println!("flood line {i} ........................................................");
        i += 1;
    }
}

airlock_sdk::step!(run);
