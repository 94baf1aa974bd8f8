//! `airlock keys [list|create|rotate|revoke]`: API keys (an admin key).

use airlock_client::NewCredential;
use clap::{Args, Subcommand};

use crate::cli::output::{Table, escape, print_json, when};
use crate::cli::remote::{CliResult, OutputArgs, ServerArgs, api, finish, or_hint};

#[derive(Debug, Args)]
pub struct KeysArgs {
    #[command(flatten)]
    server: ServerArgs,
    #[command(flatten)]
    output: OutputArgs,
    #[command(subcommand)]
    command: Option<KeysCommand>,
}

/// What a new key or OAuth client may do.
#[derive(Debug, Args)]
pub struct NewCredentialArgs {
    /// A label for people.
    pub name: String,
    /// A scope (repeatable): steps:read steps:write runs:read runs:write
    /// secrets:write accounts:read accounts:write accounts:credentials proxy
    /// metrics admin.
    #[arg(long = "scope", value_name = "SCOPE", required = true)]
    pub scopes: Vec<String>,
    /// Restrict it to this project.
    #[arg(long, value_name = "PROJECT")]
    pub project: Option<String>,
}

impl NewCredentialArgs {
    pub fn into_request(self) -> NewCredential {
        NewCredential {
            name: self.name,
            scopes: self.scopes,
            project: self.project,
        }
    }
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Key metadata, never keys (the default).
    List,
    /// Create a key and print it on stdout (shown once).
    Create(NewCredentialArgs),
    /// Give a key a new secret and print it on stdout (shown once); the old
    /// key stops working at once. Id, name, scopes and project stay.
    Rotate {
        #[arg(allow_hyphen_values = true)]
        id: String,
    },
    /// Revoke a key; it stops working at once.
    Revoke {
        #[arg(allow_hyphen_values = true)]
        id: String,
    },
}

pub async fn run(args: KeysArgs) -> u8 {
    finish(execute(args).await)
}

/// A list's `SCOPES` and `PROJECT` cells.
pub fn scopes_and_project(scopes: &[String], project: &Option<String>) -> [String; 2] {
    [
        scopes.join(","),
        project.clone().unwrap_or_else(|| "(all)".to_owned()),
    ]
}

async fn execute(args: KeysArgs) -> CliResult<()> {
    let client = args.server.client()?;
    let url = args.server.url();
    let out = args.output;
    match args.command.unwrap_or(KeysCommand::List) {
        KeysCommand::List => {
            let keys = api(client.list_keys().await, url)?;
            if out.json {
                return print_json(&serde_json::json!({ "keys": keys }));
            }
            let mut table = Table::new(&["ID", "NAME", "SCOPES", "PROJECT", "CREATED"]);
            for k in &keys {
                let [scopes, project] = scopes_and_project(&k.scopes, &k.project);
                table.row(vec![
                    k.id.clone(),
                    k.name.clone(),
                    scopes,
                    project,
                    when(k.created_at, out.absolute),
                ]);
            }
            table.print_or("no API keys");
        }
        KeysCommand::Create(new) => {
            let created = api(client.create_key(&new.into_request()).await, url)?;
            if out.json {
                return print_json(&created);
            }
            println!("{}", escape(created.key.expose()));
            eprintln!(
                "created API key {} (shown once; store it now)",
                escape(&created.meta.id)
            );
        }
        KeysCommand::Rotate { id } => {
            let rotated = or_hint(
                client.rotate_key(&id).await,
                url,
                "`airlock keys list` shows the keys",
            )?;
            if out.json {
                return print_json(&rotated);
            }
            println!("{}", escape(rotated.key.expose()));
            eprintln!(
                "rotated API key {} (the old key no longer works; the new one is shown once)",
                escape(&rotated.meta.id)
            );
        }
        KeysCommand::Revoke { id } => {
            or_hint(
                client.revoke_key(&id).await,
                url,
                "`airlock keys list` shows the keys",
            )?;
            if out.json {
                return print_json(&serde_json::json!({ "revoked": id }));
            }
            println!("revoked API key {}", escape(&id));
        }
    }
    Ok(())
}
