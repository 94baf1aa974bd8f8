//! Fails or succeeds as its input says, by attempt, so tests can drive a
//! queued run's retries. Input (every field optional):
//! `{"fail_until": N, "retryable": bool, "retry_after_ms": n, "url": "…"}`.
//! With `url` it first GETs it and fails (a plain error) when the answer is
//! 400 or more. Then, while `context` attempt() is below `fail_until`, it
//! returns the error `{"message", "retryable"?, "retry_after_ms"?}` (raw
//! JSON, as any SDK could send). Otherwise its output is `{"attempt"}`.
use airlock_sdk::__bindings::airlock::step::context;
use airlock_sdk::http;
use serde::Deserialize;
use serde_json::json;

#[derive(Deserialize, Default)]
struct Input {
    #[serde(default)]
    fail_until: u32,
    #[serde(default)]
    retryable: Option<bool>,
    #[serde(default)]
    retry_after_ms: Option<u64>,
    #[serde(default)]
    url: Option<String>,
}

struct Probe;

impl airlock_sdk::__bindings::Guest for Probe {
    fn run(input: String) -> Result<String, String> {
        let input: Input = serde_json::from_str(&input).map_err(|e| e.to_string())?;
        let attempt = context::attempt();
        if let Some(url) = input.url {
            let status = http::get(url)
                .send()
                .map_err(|e| json!({"message": e.to_string()}).to_string())?
                .status();
            if status >= 400 {
                return Err(json!({"message": format!("upstream answered {status}")}).to_string());
            }
        }
        if attempt < input.fail_until {
            let mut error = json!({"message": format!("attempt {attempt} fails")});
            if let Some(r) = input.retryable {
                error["retryable"] = r.into();
            }
            if let Some(ms) = input.retry_after_ms {
                error["retry_after_ms"] = ms.into();
            }
            return Err(error.to_string());
        }
        Ok(json!({ "attempt": attempt }).to_string())
    }
}

airlock_sdk::__bindings::__export_step_world!(Probe with_types_in airlock_sdk::__bindings);
