//! The Python and JavaScript examples (`examples/python/`, `examples/js/`),
//! built with their SDKs' build scripts and run with `airlock run` as the
//! README says: output, log lines, errors and exit codes; secrets masked
//! everywhere the step leaked them; and github-repos calling a local fake
//! of GitHub as the run user's connected account, whose token reaches the
//! fake and nothing the step sees or emits — both with the SDK's `http`
//! builder and with the language's standard client (`github-repos-fetch`:
//! `fetch`; `github-repos-urllib`: `urllib.request`), over wasi:http.

use std::path::{Path, PathBuf};

use airlock_tests::cli::LocalCli;
use airlock_tests::fakes;
use airlock_tests::sdk_builds::{self, Lang};

fn example(lang: Lang, name: &str) -> (PathBuf, String) {
    let dir = sdk_builds::repo()
        .join("examples")
        .join(lang.name())
        .join(name);
    let source = match lang {
        Lang::Python => dir.join("app.py"),
        Lang::Js => dir.join("step.js"),
    };
    let wasm = sdk_builds::build(lang, &source, &format!("examples-{}", lang.name()), name);
    let manifest = dir.join("airlock.toml").display().to_string();
    (wasm, manifest)
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn hello(lang: Lang) {
    let (wasm, manifest) = example(lang, "hello");
    let cli = LocalCli::new(env!("CARGO_BIN_EXE_airlock-under-test"));
    let args = |input: &'static str| {
        vec![
            "run".to_string(),
            path(&wasm).to_string(),
            "--manifest".into(),
            manifest.clone(),
            "--input".into(),
            input.to_string(),
        ]
    };
    let run = |input| {
        let a = args(input);
        cli.airlock(&a.iter().map(String::as_str).collect::<Vec<_>>())
    };
    let out = run(r#"{"name":"Ada"}"#);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let output: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(output, serde_json::json!({"greeting": "Hello, Ada!"}));
    assert_eq!(text(&out.stderr), "[INFO] greeting Ada\n");

    // Behind an HTTP trigger the name is in the request's JSON body.
    let out = run(r#"{"method":"POST","json":{"name":"Grace"}}"#);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("Hello, Grace!"));

    let out = run(r#"{"name":"  "}"#);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(out.stdout.is_empty());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("empty_name") && stderr.contains("`name` must not be empty"),
        "{stderr}"
    );
}

fn echo_secret(lang: Lang) {
    let (wasm, manifest) = example(lang, "echo-secret");
    let value = "tok_live_9Rq4Xc2Vb7Np";
    let cli = LocalCli::new(env!("CARGO_BIN_EXE_airlock-under-test"));
    let secret = format!("TOKEN={value}");
    let out = cli.airlock(&[
        "run",
        path(&wasm),
        "--manifest",
        &manifest,
        "--secret",
        &secret,
        "--input",
        "{}",
    ]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(stdout.trim(), r#"{"token":"[REDACTED:TOKEN]"}"#);
    assert!(
        stderr.contains("[stdout] stdout sees the token: [REDACTED:TOKEN]"),
        "{stderr}"
    );
    assert!(
        stderr.contains("[INFO] the log sees the token: [REDACTED:TOKEN]"),
        "{stderr}"
    );
    assert!(!stdout.contains(value) && !stderr.contains(value));

    // Without the manifest nothing is granted: the SDK's error, exit 1.
    let out = cli.airlock(&["run", path(&wasm), "--secret", &secret, "--input", "{}"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("not_granted"), "{stderr}");
    assert!(!stderr.contains(value));
}

async fn github_repos(lang: Lang, name: &str) {
    let (wasm, manifest) = example(lang, name);
    let token = "gho_4Fd81bA0e2C9d7E6f5A4b3C2d1E0f9A8b7C6";
    let github = fakes::github(token).await;
    let cli = LocalCli::new(env!("CARGO_BIN_EXE_airlock-under-test"));
    // The operator points the github app at the fake (same auth as the real one).
    std::fs::write(
        cli.apps.path().join("github.toml"),
        format!(
            "slug = \"github\"\nname = \"GitHub (local fake)\"\nauth = \"oauth2\"\n\
             base_url = \"http://{a}\"\nallowed_domains = [\"127.0.0.1\"]\n\
             [credential]\nheader = \"Authorization\"\ntemplate = \"Bearer {{{{access_token}}}}\"\n\
             [oauth]\nauthorize_url = \"http://{a}/login/oauth/authorize\"\n\
             token_url = \"http://{a}/login/oauth/access_token\"\nscopes = [\"repo\"]\n",
            a = github.addr
        ),
    )
    .unwrap();
    let add = cli.airlock(&[
        "accounts",
        "add",
        "--app",
        "github",
        "--external-user",
        "ada",
        "--access-token",
        token,
    ]);
    assert!(add.status.success(), "{}", text(&add.stderr));

    let run = cli.airlock(&[
        "run",
        path(&wasm),
        "--manifest",
        &manifest,
        "--external-user",
        "ada",
        "--allow-range",
        "127.0.0.0/8",
        "--input",
        r#"{"limit": 5}"#,
    ]);
    let (stdout, stderr) = (text(&run.stdout), text(&run.stderr));
    assert_eq!(run.status.code(), Some(0), "{stderr}");
    let out: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(out["count"], 3);
    assert_eq!(
        out["repositories"][0],
        serde_json::json!({"name": "ada/analytical-engine", "private": false, "stars": 1843})
    );
    assert_eq!(out["repositories"][1]["private"], true);
    assert!(stderr.contains("[INFO] listed 3 repositories"), "{stderr}");
    assert!(!stdout.contains(token) && !stderr.contains(token));
    // The fake saw the token, inserted by the host, and the step's headers.
    let seen = github.requests();
    assert_eq!(seen.len(), 1);
    assert_eq!(
        seen[0]["headers"]["authorization"],
        format!("Bearer {token}")
    );
    assert_eq!(seen[0]["headers"]["x-github-api-version"], "2022-11-28");
    assert_eq!(seen[0]["path"], "/user/repos");

    // Without the external user there is no account to use.
    let run = cli.airlock(&[
        "run",
        path(&wasm),
        "--manifest",
        &manifest,
        "--allow-range",
        "127.0.0.0/8",
        "--input",
        "{}",
    ]);
    let stderr = text(&run.stderr);
    assert_eq!(run.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("no external user"), "{stderr}");
    assert_eq!(github.requests().len(), 1, "nothing more reached GitHub");
}

#[test]
fn python_hello() {
    hello(Lang::Python);
}

#[test]
fn js_hello() {
    hello(Lang::Js);
}

#[test]
fn python_echo_secret_is_masked_everywhere() {
    echo_secret(Lang::Python);
}

#[test]
fn js_echo_secret_is_masked_everywhere() {
    echo_secret(Lang::Js);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_github_repos_calls_as_the_connected_account() {
    github_repos(Lang::Python, "github-repos").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn js_github_repos_calls_as_the_connected_account() {
    github_repos(Lang::Js, "github-repos").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_urllib_example_calls_as_the_connected_account() {
    github_repos(Lang::Python, "github-repos-urllib").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn js_fetch_example_calls_as_the_connected_account() {
    github_repos(Lang::Js, "github-repos-fetch").await;
}
