//! `airlock steps [list|show|rm]`.

use clap::{Args, Subcommand};

use crate::cli::output::{Table, escape, escape_lines, print_json, short_digest, when, when_both};
use crate::cli::remote::{CliResult, OutputArgs, ProjectArgs, ServerArgs, finish, or_hint};

#[derive(Debug, Args)]
pub struct StepsArgs {
    #[command(flatten)]
    server: ServerArgs,
    #[command(flatten)]
    project: ProjectArgs,
    #[command(flatten)]
    output: OutputArgs,
    #[command(subcommand)]
    command: Option<StepsCommand>,
}

#[derive(Debug, Subcommand)]
enum StepsCommand {
    /// List the project's steps (the default).
    List,
    /// A step's current manifest and every stored version.
    Show { step: String },
    /// Delete a step, all its versions and its triggers; its runs stay.
    Rm { step: String },
}

pub async fn run(args: StepsArgs) -> u8 {
    finish(execute(args).await)
}

const LIST_HINT: &str = "`airlock steps list` shows the project's steps";

async fn execute(args: StepsArgs) -> CliResult<()> {
    let client = args.server.client()?;
    let project = args.project.require()?;
    let url = args.server.url();
    let out = args.output;
    match args.command.unwrap_or(StepsCommand::List) {
        StepsCommand::List => {
            let steps = or_hint(
                client.list_steps(project).await,
                url,
                "`airlock projects list` shows the projects",
            )?;
            if out.json {
                return print_json(&serde_json::json!({ "steps": steps }));
            }
            let mut table = Table::new(&["STEP", "DIGEST", "UPDATED"]);
            for s in &steps {
                table.row(vec![
                    s.step.clone(),
                    short_digest(&s.current_digest),
                    when(s.updated_at, out.absolute),
                ]);
            }
            table.print_or(&format!(
                "no steps in project {}: upload one with `airlock push STEP.wasm`",
                escape(project)
            ));
        }
        StepsCommand::Show { step } => {
            let detail = or_hint(client.get_step(project, &step).await, url, LIST_HINT)?;
            if out.json {
                return print_json(&detail);
            }
            let mut fields = Table::fields();
            fields.field("step", detail.step.clone());
            fields.field("digest", detail.current_digest.clone());
            fields.field("updated", when_both(detail.updated_at));
            print!("{}", fields.render());
            println!("\nversions (newest first):");
            let mut table = Table::new(&["DIGEST", "COMPONENT", "CREATED"]);
            for v in &detail.versions {
                let current = if v.digest == detail.current_digest {
                    " (current)"
                } else {
                    ""
                };
                table.row(vec![
                    format!("{}{current}", v.digest),
                    short_digest(&v.component_digest),
                    when(v.created_at, out.absolute),
                ]);
            }
            print!("{}", table.render());
            println!("\nmanifest (airlock.toml):");
            for line in escape_lines(detail.manifest.trim_end()).lines() {
                println!("  {line}");
            }
        }
        StepsCommand::Rm { step } => {
            or_hint(client.delete_step(project, &step).await, url, LIST_HINT)?;
            if out.json {
                return print_json(&serde_json::json!({ "deleted": step }));
            }
            println!(
                "deleted step {} with its versions and triggers (its runs stay)",
                escape(&step)
            );
        }
    }
    Ok(())
}
