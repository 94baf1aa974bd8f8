//! `airlock accounts add|list|rm` with `--server`: end users' accounts on
//! the server through the API. Credentials go in and are never printed.

use airlock_client::{AccountQuery, NewAccount, SecretString};

use crate::cli::accounts::{AccountsCommand, credential_map, now, pairs};
use crate::cli::output::{Table, escape, print_json, when};
use crate::cli::remote::{CliResult, Failure, OutputArgs, ServerArgs, api, finish, or_hint};

pub async fn run(
    server: &ServerArgs,
    project: Option<&str>,
    out: OutputArgs,
    command: AccountsCommand,
) -> u8 {
    finish(execute(server, project, out, command).await)
}

fn local(e: (u8, String)) -> Failure {
    Failure::new(e.0, e.1)
}

async fn execute(
    server: &ServerArgs,
    project: Option<&str>,
    out: OutputArgs,
    command: AccountsCommand,
) -> CliResult<()> {
    let url = server.url();
    let client = server.client_for_flag("--server-key")?;
    let project = project.ok_or_else(|| {
        Failure::usage(
            "no project: pass --project NAME or set AIRLOCK_PROJECT \
             (`airlock projects list` shows them)",
        )
    })?;
    match command {
        AccountsCommand::Add(add) => {
            let mut credentials: std::collections::BTreeMap<String, SecretString> =
                credential_map(&add)
                    .map_err(local)?
                    .into_iter()
                    .map(|(k, v)| (k, SecretString::new(v.as_str())))
                    .collect();
            if let Some(secs) = add.expires_in {
                credentials.insert(
                    "expires_at".to_owned(),
                    SecretString::new((now() + secs).to_string()),
                );
            }
            let new = NewAccount {
                app: add.app.clone(),
                external_user_id: add.external_user.clone(),
                credentials,
                custom_fields: pairs("--field", &add.fields).map_err(local)?,
            };
            let account = api(client.create_account(project, &new).await, url)?;
            if out.json {
                return print_json(&account);
            }
            println!("{}", escape(&account.id));
            eprintln!(
                "connected {} account {} for external user {:?} in project {} on {url}",
                escape(&account.app),
                escape(&account.id),
                escape(&account.external_user_id),
                escape(project)
            );
        }
        AccountsCommand::List { app, external_user } => {
            let query = AccountQuery {
                app,
                external_user_id: external_user,
            };
            let accounts = or_hint(
                client.list_accounts(project, &query).await,
                url,
                "`airlock projects list` shows the projects",
            )?;
            if out.json {
                return print_json(&serde_json::json!({ "accounts": accounts }));
            }
            let mut table =
                Table::new(&["ID", "APP", "EXTERNAL USER", "HEALTH", "FIELDS", "CREATED"]);
            for a in &accounts {
                let fields: Vec<String> = a
                    .custom_fields
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect();
                table.row(vec![
                    a.id.clone(),
                    a.app.clone(),
                    a.external_user_id.clone(),
                    a.health.as_str().to_owned(),
                    fields.join(","),
                    when(a.created_at, out.absolute),
                ]);
            }
            table.print_or(&format!("no accounts in project `{}`", escape(project)));
        }
        AccountsCommand::Rm { id } => {
            or_hint(
                client.delete_account(project, &id).await,
                url,
                "`airlock accounts list --server URL` shows the project's accounts",
            )?;
            if out.json {
                return print_json(&serde_json::json!({ "deleted": id }));
            }
            println!("deleted account {}", escape(&id));
        }
    }
    Ok(())
}
