//! Lists the repositories of the run user's connected GitHub account.
//! The host inserts the account's token; the step never sees it.

use airlock_sdk::{Error, http, log};
use serde::{Deserialize, Serialize};

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
    let limit = input.limit.unwrap_or(30).min(100);
    let response = http::get(format!("/user/repos?per_page={limit}&sort=updated"))
        .header("accept", "application/vnd.github+json")
        .header("x-github-api-version", "2022-11-28")
        .account("github")
        .send()?;
    if response.status() != 200 {
        return Err(Error::new(format!("GitHub answered {}", response.status()))
            .with_code("upstream_error")
            .with_details(serde_json::json!({ "body": response.text() })));
    }
    let repos: Vec<Repo> = response.json()?;
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
