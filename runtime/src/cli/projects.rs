//! `airlock projects [list|create|show]`.

use clap::{Args, Subcommand};

use crate::cli::output::{Table, print_json, when, when_both};
use crate::cli::remote::{CliResult, OutputArgs, ServerArgs, api, finish, or_hint};

#[derive(Debug, Args)]
pub struct ProjectsArgs {
    #[command(flatten)]
    server: ServerArgs,
    #[command(flatten)]
    output: OutputArgs,
    #[command(subcommand)]
    command: Option<ProjectsCommand>,
}

#[derive(Debug, Subcommand)]
enum ProjectsCommand {
    /// List the projects the key may see (the default).
    List,
    /// Create a project (an admin key restricted to no project).
    Create {
        /// Letters, digits, `_`, `-`, `.`, starting with a letter or `_`.
        name: String,
    },
    /// Show one project.
    Show { name: String },
}

pub async fn run(args: ProjectsArgs) -> u8 {
    finish(execute(args).await)
}

async fn execute(args: ProjectsArgs) -> CliResult<()> {
    let client = args.server.client()?;
    let url = args.server.url();
    let out = args.output;
    match args.command.unwrap_or(ProjectsCommand::List) {
        ProjectsCommand::List => {
            let projects = api(client.list_projects().await, url)?;
            if out.json {
                return print_json(&serde_json::json!({ "projects": projects }));
            }
            let mut table = Table::new(&["NAME", "CREATED"]);
            for p in &projects {
                table.row(vec![p.name.clone(), when(p.created_at, out.absolute)]);
            }
            table.print_or("no projects yet: create one with `airlock projects create NAME`");
        }
        ProjectsCommand::Create { name } => {
            let project = api(client.create_project(&name).await, url)?;
            if out.json {
                return print_json(&project);
            }
            println!(
                "created project {}",
                crate::cli::output::escape(&project.name)
            );
        }
        ProjectsCommand::Show { name } => {
            let project = or_hint(
                client.get_project(&name).await,
                url,
                "`airlock projects list` shows the projects this key may see",
            )?;
            if out.json {
                return print_json(&project);
            }
            let mut table = Table::fields();
            table.field("name", project.name.clone());
            table.field("created", when_both(project.created_at));
            print!("{}", table.render());
        }
    }
    Ok(())
}
