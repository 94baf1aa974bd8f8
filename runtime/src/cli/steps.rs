//! `airlock steps [list|show|current|rm]`.

use clap::{Args, Subcommand};

use crate::cli::output::{Table, escape, escape_lines, print_json, short_digest, when, when_both};
use airlock_client::StepVersion;

use crate::cli::remote::{
    CliResult, Failure, OutputArgs, ProjectArgs, ServerArgs, finish, or_hint,
};

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
    /// Make a stored version current: a rollback, or forward again. Runs
    /// started after it use that version; pinned triggers keep theirs.
    Current {
        step: String,
        /// The version's digest as `steps show` lists it, or a prefix of its
        /// hex digits that only one version of the step has.
        digest: String,
    },
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
        StepsCommand::Current { step, digest } => {
            let digest = if crate::store::steps::is_version_digest(&digest) {
                digest
            } else {
                let detail = or_hint(client.get_step(project, &step).await, url, LIST_HINT)?;
                resolve_digest(&step, &digest, &detail.versions)?
            };
            let detail = or_hint(
                client.set_current_step(project, &step, &digest).await,
                url,
                &format!("`airlock steps show {}` lists its versions", escape(&step)),
            )?;
            if out.json {
                return print_json(&detail);
            }
            println!(
                "step {} now runs {}",
                escape(&detail.step),
                escape(&detail.current_digest)
            );
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

/// The one version of `step` whose digest starts with `prefix` (with or
/// without `sha256:`).
fn resolve_digest(step: &str, prefix: &str, versions: &[StepVersion]) -> CliResult<String> {
    let hex = prefix.strip_prefix("sha256:").unwrap_or(prefix);
    let show = format!("`airlock steps show {}` lists its versions", escape(step));
    if hex.is_empty() || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Failure::usage(format!(
            "{} is not a version digest (`sha256:` and hex digits, or a prefix of them); {show}",
            escape(prefix)
        )));
    }
    let hex = hex.to_ascii_lowercase();
    let matching: Vec<&StepVersion> = versions
        .iter()
        .filter(|v| {
            v.digest
                .strip_prefix("sha256:")
                .is_some_and(|d| d.starts_with(&hex))
        })
        .collect();
    match matching.as_slice() {
        [one] => Ok(one.digest.clone()),
        [] => Err(Failure::usage(format!(
            "step {} has no version starting with {}; {show}",
            escape(step),
            escape(prefix)
        ))),
        many => Err(Failure::usage(format!(
            "{} matches {} versions of step {}: give more digits; {show}",
            escape(prefix),
            many.len(),
            escape(step)
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(hex: &str) -> StepVersion {
        StepVersion {
            digest: format!("sha256:{hex}"),
            component_digest: String::new(),
            created_at: chrono::DateTime::UNIX_EPOCH,
            current: false,
        }
    }

    #[test]
    fn a_digest_prefix_names_one_version_or_fails_with_a_usage_error() {
        let versions = [version("ab12"), version("ab34"), version("cd56")];
        assert_eq!(resolve_digest("s", "cd", &versions).unwrap(), "sha256:cd56");
        assert_eq!(
            resolve_digest("s", "sha256:AB1", &versions).unwrap(),
            "sha256:ab12"
        );
        for bad in ["ab", "ef", "", "sha256:", "zz", "v1"] {
            let f = resolve_digest("s", bad, &versions).unwrap_err();
            assert_eq!(f.code, crate::cli::exit::USAGE, "{bad}");
            assert!(f.message.contains("airlock steps show s"), "{}", f.message);
        }
    }
}
