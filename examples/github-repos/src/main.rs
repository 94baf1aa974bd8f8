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

/// Natively, with the SDK's mock host: `cargo test -p github-repos`.
#[cfg(test)]
mod tests {
    use super::*;
    use airlock_sdk::testing::{MockHost, MockResponse};

    #[test]
    fn lists_the_accounts_repositories() {
        let host = MockHost::new().account("github", |req| {
            assert_eq!(req.url, "/user/repos?per_page=2&sort=updated");
            MockResponse::json(
                200,
                &serde_json::json!([
                    {"full_name": "ada/engine", "private": false, "stargazers_count": 7},
                    {"full_name": "ada/notes", "private": true}
                ]),
            )
        });
        let out = host.run(|| run(Input { limit: Some(2) })).unwrap();
        assert_eq!(out.count, 2);
        assert_eq!(out.repositories[0].name, "ada/engine");
        assert!(out.repositories[1].private);
        assert_eq!(host.logs()[0].message, "listed 2 repositories");
    }

    #[test]
    fn an_upstream_error_is_reported() {
        let host = MockHost::new().account("github", |_| {
            MockResponse::json(401, &serde_json::json!({"message": "Bad credentials"}))
        });
        let err = host.run_json(run, "{}").unwrap_err();
        assert!(err.contains("upstream_error"), "{err}");
        assert!(err.contains("GitHub answered 401"), "{err}");
    }
}
