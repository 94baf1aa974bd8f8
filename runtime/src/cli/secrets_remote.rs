//! `airlock secrets set|list|rm` with `--server`: the server's store through
//! the API (scope `secrets:write`). Values go in, never out.

use airlock_client::{SecretString, SetOutcome};

use crate::cli::output::{Table, escape, print_json, when};
use crate::cli::remote::{CliResult, Failure, OutputArgs, ServerArgs, api, finish, or_hint};
use crate::cli::secrets::{ProjectArg, SecretsCommand, value_of};

pub async fn run(server: &ServerArgs, out: OutputArgs, command: SecretsCommand) -> u8 {
    finish(execute(server, out, command).await)
}

fn project(p: &ProjectArg) -> CliResult<&str> {
    p.project.as_deref().ok_or_else(|| {
        Failure::usage(
            "no project: pass --project NAME or set AIRLOCK_PROJECT \
             (`airlock projects list` shows them)",
        )
    })
}

async fn execute(server: &ServerArgs, out: OutputArgs, command: SecretsCommand) -> CliResult<()> {
    let url = server.url();
    match command {
        SecretsCommand::Set(set) => {
            let client = server.client()?;
            let project = project(&set.project)?;
            let value = SecretString::new(value_of(&set).map_err(Failure::usage)?.as_str());
            let outcome = api(client.put_secret(project, &set.name, &value).await, url)?;
            drop(value);
            if out.json {
                return print_json(&outcome);
            }
            let verb = match outcome.outcome {
                SetOutcome::Created => "created",
                SetOutcome::Updated => "updated",
            };
            println!(
                "{verb} secret `{}` in project `{}` on {url}",
                escape(&outcome.name),
                escape(project)
            );
        }
        SecretsCommand::List(p) => {
            let client = server.client()?;
            let project = project(&p)?;
            let secrets = or_hint(
                client.list_secrets(project).await,
                url,
                "`airlock projects list` shows the projects",
            )?;
            if out.json {
                return print_json(&serde_json::json!({ "secrets": secrets }));
            }
            let mut table = Table::new(&["NAME", "CREATED", "UPDATED"]);
            for s in &secrets {
                table.row(vec![
                    s.name.clone(),
                    when(s.created_at, out.absolute),
                    when(s.updated_at, out.absolute),
                ]);
            }
            table.print_or(&format!("no secrets in project `{}`", escape(project)));
        }
        SecretsCommand::Rm(rm) => {
            let client = server.client()?;
            let project = project(&rm.project)?;
            or_hint(
                client.delete_secret(project, &rm.name).await,
                url,
                "`airlock secrets list` shows the project's secrets",
            )?;
            if out.json {
                return print_json(&serde_json::json!({ "deleted": rm.name }));
            }
            println!(
                "deleted secret `{}` from project `{}` on {url}",
                escape(&rm.name),
                escape(project)
            );
        }
        SecretsCommand::RotateKey(_) => {
            return Err(Failure::usage(
                "rotate-key re-encrypts a local store and needs its master key; run it where \
                 the store is, without --server (unset AIRLOCK_SERVER)",
            ));
        }
    }
    Ok(())
}
