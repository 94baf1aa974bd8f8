//! Leaks its secret on purpose, three ways: stdout, the log, the output.
//! Run it to see Airlock mask every one of them as `[REDACTED:TOKEN]`.

use airlock_sdk::{Error, log, secrets};
use serde::Serialize;
use serde_json::Value;

#[derive(Serialize)]
struct Output {
    token: String,
}

fn run(_: Value) -> Result<Output, Error> {
    let token = secrets::get("TOKEN")?.reveal()?;
    println!("stdout sees the token: {token}");
    log::info(format!("the log sees the token: {token}"));
    Ok(Output { token })
}

airlock_sdk::step!(run);

// Built as a binary only so Cargo names the component `<crate>.wasm` (library
// outputs get underscores). Airlock calls the `run` export; `main` never runs.
fn main() {}

/// Natively, with the SDK's mock host: `cargo test -p echo-secret`.
#[cfg(test)]
mod tests {
    use super::*;
    use airlock_sdk::testing::MockHost;

    #[test]
    fn reveals_the_token_and_the_log_masks_it() {
        let host = MockHost::new().revealable_secret("TOKEN", "tok_example_1");
        let out = host.run(|| run(Value::Null)).unwrap();
        assert_eq!(out.token, "tok_example_1");
        assert_eq!(
            host.logs()[0].message,
            "the log sees the token: [REDACTED:TOKEN]"
        );
    }

    #[test]
    fn without_the_reveal_grant_it_fails() {
        let host = MockHost::new().secret("TOKEN", "tok_example_1");
        let err = host.run_json(run, "{}").unwrap_err();
        assert!(err.contains("reveal-not-granted"), "{err}");
    }
}
