//! The example steps that call third parties, run through `airlock run` as
//! a user would: an end user's account connected with `airlock accounts
//! add`, the app pointed at a local fake by an operator apps directory, and
//! loopback allowed with `--allow-range`. The token never reaches the step,
//! its output or anything printed.

use std::path::Path;

use airlock_tests::cli::LocalCli;
use airlock_tests::{examples, fakes};

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn manifest(step: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples")
        .join(step)
        .join("airlock.toml")
        .display()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn github_repos_lists_the_repositories_of_a_connected_account() {
    let token = "gho_16C7e42F292c6912E7710c838347Ae178B4a";
    let github = fakes::github(token).await;
    let cli = LocalCli::new(env!("CARGO_BIN_EXE_airlock-under-test"));
    // The operator points the github app at the fake (same auth as the real one).
    cli.app(
        "github",
        &format!(
            "slug = \"github\"\nname = \"GitHub (local fake)\"\nauth = \"oauth2\"\n\
             base_url = \"http://{a}\"\nallowed_domains = [\"127.0.0.1\"]\n\
             [credential]\nheader = \"Authorization\"\ntemplate = \"Bearer {{{{access_token}}}}\"\n\
             [oauth]\nauthorize_url = \"http://{a}/login/oauth/authorize\"\n\
             token_url = \"http://{a}/login/oauth/access_token\"\nscopes = [\"repo\"]\n",
            a = github.addr
        ),
    );
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
    let account_id = text(&add.stdout).trim().to_string();
    assert!(account_id.starts_with("acc_"), "{account_id}");
    assert!(!text(&add.stdout).contains(token) && !text(&add.stderr).contains(token));

    let list = cli.airlock(&["accounts", "list"]);
    assert!(text(&list.stdout).contains(&account_id));
    assert!(
        !text(&list.stdout).contains(token),
        "list never prints credentials"
    );

    let run = cli.airlock(&[
        "run",
        examples::GITHUB_REPOS,
        "--manifest",
        &manifest("github-repos"),
        "--external-user",
        "ada",
        "--allow-range",
        "127.0.0.0/8",
        "--input",
        "{}",
    ]);
    let (stdout, stderr) = (text(&run.stdout), text(&run.stderr));
    assert_eq!(run.status.code(), Some(0), "{stderr}");
    let out: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(out["count"], 3);
    assert_eq!(out["repositories"][0]["name"], "ada/analytical-engine");
    assert!(stderr.contains("listed 3 repositories"), "{stderr}");
    assert!(!stdout.contains(token) && !stderr.contains(token));
    // The fake saw the token, inserted by the host.
    let seen = github.requests();
    assert_eq!(seen.len(), 1);
    assert_eq!(
        seen[0]["headers"]["authorization"],
        format!("Bearer {token}")
    );

    // Without the external user there is no account to use.
    let run = cli.airlock(&[
        "run",
        examples::GITHUB_REPOS,
        "--manifest",
        &manifest("github-repos"),
        "--allow-range",
        "127.0.0.0/8",
        "--input",
        "{}",
    ]);
    assert_eq!(run.status.code(), Some(1));
    assert!(
        text(&run.stderr).contains("no external user"),
        "{}",
        text(&run.stderr)
    );

    // `accounts rm` removes it.
    let rm = cli.airlock(&["accounts", "rm", &account_id]);
    assert!(rm.status.success());
    let rm = cli.airlock(&["accounts", "rm", &account_id]);
    assert_eq!(rm.status.code(), Some(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slack_post_posts_as_the_connected_account() {
    let token = "xoxb-17653672481-19874698323-pdFZKVeTuE8sk7oOcBrzbqgy";
    let slack = fakes::slack(token).await;
    let cli = LocalCli::new(env!("CARGO_BIN_EXE_airlock-under-test"));
    cli.app(
        "slack",
        &format!(
            "slug = \"slack\"\nname = \"Slack (local fake)\"\nauth = \"oauth2\"\n\
             base_url = \"http://{a}/api\"\nallowed_domains = [\"127.0.0.1\"]\n\
             [credential]\nheader = \"Authorization\"\ntemplate = \"Bearer {{{{access_token}}}}\"\n\
             [oauth]\nauthorize_url = \"http://{a}/oauth/v2/authorize\"\n\
             token_url = \"http://{a}/api/oauth.v2.access\"\nscopes = [\"chat:write\"]\n",
            a = slack.addr
        ),
    );
    let add = cli.airlock(&[
        "accounts",
        "add",
        "--app",
        "slack",
        "--external-user",
        "u7",
        "--access-token",
        token,
    ]);
    assert!(add.status.success(), "{}", text(&add.stderr));
    let run = cli.airlock(&[
        "run",
        examples::SLACK_POST,
        "--manifest",
        &manifest("slack-post"),
        "--external-user",
        "u7",
        "--allow-range",
        "127.0.0.0/8",
        "--input",
        r##"{"channel":"#general","text":"deployed"}"##,
    ]);
    assert_eq!(run.status.code(), Some(0), "{}", text(&run.stderr));
    let out: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(out["posted"], true);
    let seen = slack.requests();
    assert_eq!(seen[0]["path"], "/api/chat.postMessage");
    assert!(seen[0]["body"].as_str().unwrap().contains("deployed"));
    // Slack's `ok: false` becomes the step's error.
    let run = cli.airlock(&[
        "run",
        examples::SLACK_POST,
        "--manifest",
        &manifest("slack-post"),
        "--external-user",
        "u7",
        "--allow-range",
        "127.0.0.0/8",
        "--input",
        r#"{"channel":"","text":"x"}"#,
    ]);
    assert_eq!(run.status.code(), Some(1));
    assert!(
        text(&run.stderr).contains("channel_not_found"),
        "{}",
        text(&run.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zendesk_tickets_uses_the_accounts_subdomain() {
    let (user, api_token) = (
        "agent@acme.example/token",
        "zd_6wiIBWbGkBMo1mRDMuVwkw1EPsNkeUj95PIz2akv",
    );
    let zendesk = fakes::zendesk(user, api_token).await;
    let cli = LocalCli::new(env!("CARGO_BIN_EXE_airlock-under-test"));
    let add = |sub: &str| {
        cli.airlock(&[
            "accounts",
            "add",
            "--app",
            "zendesk",
            "--external-user",
            "z1",
            "--username",
            user,
            "--password",
            api_token,
            "--field",
            &format!("subdomain={sub}"),
        ])
    };
    // The built-in app refuses a subdomain that is not a subdomain.
    let bad = add("evil.com/x");
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        text(&bad.stderr).contains("subdomain"),
        "{}",
        text(&bad.stderr)
    );
    // The operator's local copy keeps the subdomain field but serves from the fake.
    cli.app(
        "zendesk",
        &format!(
            "slug = \"zendesk\"\nname = \"Zendesk (local fake)\"\nauth = \"basic\"\n\
             base_url = \"http://{a}/api/v2\"\nallowed_domains = [\"127.0.0.1\"]\n\
             [credential]\nheader = \"Authorization\"\ntemplate = \"Basic {{{{basic}}}}\"\n\
             [[custom_fields]]\nname = \"subdomain\"\npattern = \"^[a-z0-9][a-z0-9-]{{0,62}}$\"\n",
            a = zendesk.addr
        ),
    );
    assert!(add("acme").status.success());
    let run = cli.airlock(&[
        "run",
        examples::ZENDESK_TICKETS,
        "--manifest",
        &manifest("zendesk-tickets"),
        "--external-user",
        "z1",
        "--allow-range",
        "127.0.0.0/8",
        "--input",
        r#"{"status":"open"}"#,
    ]);
    let stderr = text(&run.stderr);
    assert_eq!(run.status.code(), Some(0), "{stderr}");
    let out: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(out["tickets"].as_array().unwrap().len(), 1);
    assert_eq!(out["tickets"][0]["id"], 35436);
    assert!(!stderr.contains(api_token));
}
