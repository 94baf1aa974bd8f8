//! An operator's backend with `airlock-client`: a connect link for an end
//! user, their accounts, a proxy call as them, and a run with its log.
//!
//! ```sh
//! AIRLOCK_SERVER=http://127.0.0.1:8080 AIRLOCK_CLIENT_ID=oc_… AIRLOCK_CLIENT_SECRET=cs_… \
//!   cargo run -p airlock-client --example backend -- alpha user-123 https://api.github.com/user hello
//! ```

use airlock_client::{Client, LogEvent, NewConnectToken, ProxyRequest, RunRequest};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [project, user, url, step] = <[String; 4]>::try_from(args)
        .map_err(|_| "usage: backend PROJECT EXTERNAL_USER_ID PROXY_URL STEP")?;
    let env = |name: &str| std::env::var(name).map_err(|_| format!("set {name}"));
    // OAuth client credentials: the token is fetched and refreshed by the client.
    let client = Client::builder(env("AIRLOCK_SERVER")?)
        .client_credentials(env("AIRLOCK_CLIENT_ID")?, env("AIRLOCK_CLIENT_SECRET")?)
        .build()?;

    // 1. A connect token: send the end user to its link.
    let token = client
        .create_connect_token(&project, &NewConnectToken::new(&user))
        .await?;
    println!("connect link: {}", token.connect_link_url);

    // 2. The end user's accounts.
    let query = airlock_client::AccountQuery {
        external_user_id: Some(user.clone()),
        ..Default::default()
    };
    let accounts = client.list_accounts(&project, &query).await?;
    for a in &accounts {
        println!("account {} ({}, {})", a.id, a.app, a.health.as_str());
    }

    // 3. The proxy as that user, with their first account: a plain URL.
    if let Some(account) = accounts.first() {
        let answer = client
            .proxy(&project, &ProxyRequest::get(&url, &user, &account.id))
            .await?;
        println!("proxy: {} {}", answer.status, answer.text());
    }

    // 4. A run, and its log as it is written.
    let queued = client
        .queue_run(
            &project,
            &step,
            &RunRequest::new(serde_json::json!({ "name": user })),
            None,
        )
        .await?;
    let mut logs = client.stream_logs(&project, &queued.id);
    while let Some(event) = logs.next().await? {
        match event {
            LogEvent::Line { line, .. } => println!("{:>6}ms {}", line.elapsed_ms, line.text),
            LogEvent::End { status } => println!("run {} {status}", queued.id),
        }
    }
    Ok(())
}
