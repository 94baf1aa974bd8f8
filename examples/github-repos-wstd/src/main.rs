//! Lists the repositories of the run user's connected GitHub account with
//! a standard HTTP client: `wstd`'s, over `wasi:http/outgoing-handler`.
//!
//! The request names the credential with the host-only header
//! `x-airlock-account: github` and goes to `github.airlock.internal`, which
//! the host reads as "relative to the GitHub app's base URL". The host
//! removes the header, inserts the account's token and masks it out of
//! the response; the step never holds it.

use airlock_sdk::{Error, log};
use serde::{Deserialize, Serialize};
use wstd::http::{Body, Client, Request};

#[derive(Deserialize)]
struct Input {
    /// Most repositories to return (default 30).
    #[serde(default)]
    limit: Option<usize>,
}

#[derive(Deserialize)]
struct Repo {
    full_name: String,
    private: bool,
    #[serde(default)]
    stargazers_count: u64,
}

#[derive(Serialize)]
struct Output {
    count: usize,
    repositories: Vec<RepoOut>,
}

#[derive(Serialize)]
struct RepoOut {
    name: String,
    private: bool,
    stars: u64,
}

fn run(input: Input) -> Result<Output, Error> {
    wstd::runtime::block_on(list(input))
}

async fn list(input: Input) -> Result<Output, Error> {
    let limit = input.limit.unwrap_or(30).min(100);
    let request = Request::get(format!(
        "https://github.airlock.internal/user/repos?per_page={limit}&sort=updated"
    ))
    .header("x-airlock-account", "github")
    .header("accept", "application/vnd.github+json")
    .header("x-github-api-version", "2022-11-28")
    .body(Body::empty())
    .map_err(|e| Error::new(format!("building the request: {e}")))?;
    let response = Client::new()
        .send(request)
        .await
        .map_err(|e| Error::new(format!("calling GitHub: {e:#}")).with_code("http"))?;
    let status = response.status().as_u16();
    let mut body = response.into_body();
    let bytes = body
        .contents()
        .await
        .map_err(|e| Error::new(format!("reading GitHub's answer: {e:#}")).with_code("http"))?;
    if status != 200 {
        return Err(Error::new(format!("GitHub answered {status}"))
            .with_code("upstream_error")
            .with_details(serde_json::json!({ "body": String::from_utf8_lossy(bytes) })));
    }
    let repos: Vec<Repo> = serde_json::from_slice(bytes)
        .map_err(|e| Error::new(format!("GitHub's answer is not a repository list: {e}")))?;
    log::info(format!("listed {} repositories", repos.len()));
    Ok(Output {
        count: repos.len(),
        repositories: repos
            .into_iter()
            .map(|r| RepoOut {
                name: r.full_name,
                private: r.private,
                stars: r.stargazers_count,
            })
            .collect(),
    })
}

airlock_sdk::step!(run);

// Built as a binary only so Cargo names the component `<crate>.wasm` (library
// outputs get underscores). Airlock calls the `run` export; `main` never runs.
fn main() {}
