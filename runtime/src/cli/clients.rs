//! `airlock clients [list|create|rotate|rm]`: OAuth clients (an admin key).

use clap::{Args, Subcommand};

use crate::cli::keys::{NewCredentialArgs, scopes_and_project};
use crate::cli::output::{Table, escape, print_json, when};
use crate::cli::remote::{CliResult, OutputArgs, ServerArgs, api, finish, or_hint};

#[derive(Debug, Args)]
pub struct ClientsArgs {
    #[command(flatten)]
    server: ServerArgs,
    #[command(flatten)]
    output: OutputArgs,
    #[command(subcommand)]
    command: Option<ClientsCommand>,
}

#[derive(Debug, Subcommand)]
enum ClientsCommand {
    /// Client metadata, never secrets (the default).
    List,
    /// Create a client; its id and secret are printed (the secret once).
    Create(NewCredentialArgs),
    /// Give a client a new secret; the old one and its tokens die at once.
    Rotate {
        #[arg(allow_hyphen_values = true)]
        client_id: String,
    },
    /// Delete a client and revoke its tokens.
    Rm {
        #[arg(allow_hyphen_values = true)]
        client_id: String,
    },
}

pub async fn run(args: ClientsArgs) -> u8 {
    finish(execute(args).await)
}

const LIST_HINT: &str = "`airlock clients list` shows the clients";

async fn execute(args: ClientsArgs) -> CliResult<()> {
    let client = args.server.client()?;
    let url = args.server.url();
    let out = args.output;
    match args.command.unwrap_or(ClientsCommand::List) {
        ClientsCommand::List => {
            let clients = api(client.list_clients().await, url)?;
            if out.json {
                return print_json(&serde_json::json!({ "clients": clients }));
            }
            let mut table = Table::new(&["CLIENT ID", "NAME", "SCOPES", "PROJECT", "CREATED"]);
            for c in &clients {
                let [scopes, project] = scopes_and_project(&c.scopes, &c.project);
                table.row(vec![
                    c.client_id.clone(),
                    c.name.clone(),
                    scopes,
                    project,
                    when(c.created_at, out.absolute),
                ]);
            }
            table.print_or("no OAuth clients");
        }
        ClientsCommand::Create(new) => {
            let created = api(client.create_client(&new.into_request()).await, url)?;
            if out.json {
                return print_json(&created);
            }
            let mut fields = Table::fields();
            fields.field("client_id", created.client_id.clone());
            fields.field("client_secret", created.client_secret.expose().to_owned());
            print!("{}", fields.render());
            eprintln!("the secret is shown once; store it now");
        }
        ClientsCommand::Rotate { client_id } => {
            let rotated = or_hint(
                client.rotate_client_secret(&client_id).await,
                url,
                LIST_HINT,
            )?;
            if out.json {
                return print_json(&rotated);
            }
            let mut fields = Table::fields();
            fields.field("client_id", rotated.client_id.clone());
            fields.field("client_secret", rotated.client_secret.expose().to_owned());
            print!("{}", fields.render());
            eprintln!(
                "the old secret and every token issued with it stopped working; \
                 the new secret is shown once"
            );
        }
        ClientsCommand::Rm { client_id } => {
            or_hint(client.delete_client(&client_id).await, url, LIST_HINT)?;
            if out.json {
                return print_json(&serde_json::json!({ "deleted": client_id }));
            }
            println!("deleted OAuth client {} and its tokens", escape(&client_id));
        }
    }
    Ok(())
}
