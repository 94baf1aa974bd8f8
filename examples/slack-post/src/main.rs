//! Posts `text` to `channel` with Slack's `chat.postMessage`, as the run
//! user's connected Slack account (the host inserts the OAuth token).

use airlock_sdk::{Error, http};
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
struct Input {
    channel: String,
    text: String,
}

#[derive(Deserialize)]
struct SlackReply {
    ok: bool,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    ts: Option<String>,
}

#[derive(Serialize)]
struct Output {
    posted: bool,
    ts: String,
}

fn run(input: Input) -> Result<Output, Error> {
    let reply: SlackReply = http::post("/chat.postMessage")
        .json(&serde_json::json!({ "channel": input.channel, "text": input.text }))
        .account("slack")
        .send()?
        .json()?;
    // Slack answers 200 with `ok: false` for API errors.
    if !reply.ok {
        let code = reply.error.unwrap_or_else(|| "unknown_error".into());
        return Err(Error::new(format!("Slack refused the message: {code}")).with_code(code));
    }
    Ok(Output {
        posted: true,
        ts: reply.ts.unwrap_or_default(),
    })
}

airlock_sdk::step!(run);

// Built as a binary only so Cargo names the component `<crate>.wasm`.
fn main() {}
