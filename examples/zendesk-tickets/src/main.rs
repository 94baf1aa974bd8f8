//! Lists recent tickets from the run user's Zendesk. Zendesk is a
//! dynamic-domain app: the URL is relative, and the host fills in the
//! account's subdomain (checked against the app's pattern).

use airlock_sdk::{Error, http};
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
struct Input {
    #[serde(default)]
    status: Option<String>,
}

#[derive(Deserialize)]
struct Page {
    tickets: Vec<Ticket>,
}

#[derive(Deserialize, Serialize)]
struct Ticket {
    id: u64,
    subject: String,
    status: String,
}

#[derive(Serialize)]
struct Output {
    tickets: Vec<Ticket>,
}

fn run(input: Input) -> Result<Output, Error> {
    let response = http::get("/tickets.json?sort_by=updated_at&sort_order=desc")
        .account("zendesk")
        .send()?;
    if response.status() != 200 {
        return Err(Error::new(format!(
            "Zendesk answered {}",
            response.status()
        )));
    }
    let page: Page = response.json()?;
    let tickets = page
        .tickets
        .into_iter()
        .filter(|t| input.status.as_ref().is_none_or(|s| &t.status == s))
        .collect();
    Ok(Output { tickets })
}

airlock_sdk::step!(run);

// Built as a binary only so Cargo names the component `<crate>.wasm`.
fn main() {}
