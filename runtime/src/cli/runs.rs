//! `airlock runs [list|show|start|rerun|cancel]`.

use std::io::Read as _;
use std::path::PathBuf;

use airlock_client::{
    FailureKind, RerunRequest, RerunVersion, Run, RunQuery, RunRequest, RunResult, RunStatus,
};
use clap::{Args, Subcommand, ValueEnum};

use crate::cli::exit;
use crate::cli::logs::{RUN_HINT, print_lines};
use crate::cli::output::{
    Palette, Table, compact_json, escape, print_json, short_digest, when, when_both,
};
use crate::cli::remote::{
    CliResult, Failure, OutputArgs, ProjectArgs, ServerArgs, finish, or_hint,
};

#[derive(Debug, Args)]
#[command(
    after_help = "Exit status: 0 success; 1 the run failed (the step's error); 2 bad \
                        usage or a 4xx answer; 3 a limit stopped the run; 4 the server cannot \
                        be reached or failed."
)]
pub struct RunsArgs {
    #[command(flatten)]
    server: ServerArgs,
    #[command(flatten)]
    project: ProjectArgs,
    #[command(flatten)]
    output: OutputArgs,
    #[command(subcommand)]
    command: Option<RunsCommand>,
}

#[derive(Debug, Subcommand)]
enum RunsCommand {
    /// The project's runs, newest first (the default).
    List(ListArgs),
    /// One run: status, output or error, stats, outbound calls and logs.
    Show {
        #[arg(allow_hyphen_values = true)]
        run: String,
    },
    /// Run a step's current version once on the server and print its output
    /// (with --async: queue it and print its id).
    Start(StartArgs),
    /// Run a recorded run's input again, for the same end user, on the
    /// step's current version (--same-version: the version it ran).
    Rerun(RerunArgs),
    /// Cancel a queued run: at once if it waits, within a tick if it runs.
    Cancel {
        #[arg(allow_hyphen_values = true)]
        run: String,
    },
}

#[derive(Debug, Default, Args)]
struct ListArgs {
    /// Only runs of this step.
    #[arg(long)]
    step: Option<String>,
    /// Only runs with this outcome.
    #[arg(long, value_enum)]
    status: Option<StatusArg>,
    /// How many (1 to 100; the server's default is 20).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=100))]
    limit: Option<u32>,
    /// Continue after a previous page (its `next_cursor`).
    #[arg(long)]
    cursor: Option<String>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum StatusArg {
    Queued,
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

#[derive(Debug, Args)]
struct StartArgs {
    /// The step to run.
    step: String,
    /// The input, as JSON text. Without it and --input-file, stdin is read.
    #[arg(long, conflicts_with = "input_file")]
    input: Option<String>,
    /// Read the input JSON from this file.
    #[arg(long, value_name = "FILE")]
    input_file: Option<PathBuf>,
    /// The end user the run acts for (their connected accounts).
    #[arg(long, value_name = "ID")]
    external_user: Option<String>,
    /// Keep metadata only in the run record (no input, output, error or logs).
    #[arg(long)]
    nostore: bool,
    /// Queue the run (`Prefer: respond-async`) and print its id at once;
    /// `airlock runs show ID` follows it.
    #[arg(long = "async")]
    queued: bool,
    /// With --async: a retry with the same key returns the same run.
    #[arg(long, value_name = "KEY", requires = "queued")]
    idempotency_key: Option<String>,
}

#[derive(Debug, Args)]
struct RerunArgs {
    /// The run to re-run.
    #[arg(allow_hyphen_values = true)]
    run: String,
    /// Run the version the recorded run ran instead of the current one.
    #[arg(long)]
    same_version: bool,
    /// Keep metadata only in the new run's record.
    #[arg(long)]
    nostore: bool,
    /// Queue the re-run and print its id at once.
    #[arg(long = "async")]
    queued: bool,
    /// With --async: a retry with the same key returns the same run.
    #[arg(long, value_name = "KEY", requires = "queued")]
    idempotency_key: Option<String>,
}

pub async fn run(args: RunsArgs) -> u8 {
    finish(execute(args).await)
}

async fn execute(args: RunsArgs) -> CliResult<()> {
    let client = args.server.client()?;
    let project = args.project.require()?;
    let url = args.server.url();
    let out = args.output;
    match args
        .command
        .unwrap_or(RunsCommand::List(ListArgs::default()))
    {
        RunsCommand::List(list) => {
            let query = RunQuery {
                step: list.step,
                status: list.status.map(|s| match s {
                    StatusArg::Queued => RunStatus::Queued,
                    StatusArg::Running => RunStatus::Running,
                    StatusArg::Succeeded => RunStatus::Succeeded,
                    StatusArg::Failed => RunStatus::Failed,
                    StatusArg::Cancelled => RunStatus::Cancelled,
                }),
                limit: list.limit,
                cursor: list.cursor,
            };
            let page = or_hint(
                client.list_runs(project, &query).await,
                url,
                "`airlock projects list` shows the projects",
            )?;
            if out.json {
                return print_json(&page);
            }
            let mut table = Table::new(&["ID", "STEP", "STATUS", "DURATION", "CREATED"]);
            for r in &page.runs {
                table.row(vec![
                    r.id.clone(),
                    r.step.clone(),
                    r.status.as_str().to_owned(),
                    format!("{} ms", r.stats.duration_ms),
                    when(r.created_at, out.absolute),
                ]);
            }
            table.print_or(&format!(
                "no runs in project {}: start one with `airlock runs start STEP`",
                escape(project)
            ));
            if let Some(cursor) = &page.next_cursor {
                eprintln!("more runs: airlock runs list --cursor {}", escape(cursor));
            }
            Ok(())
        }
        RunsCommand::Cancel { run } => {
            let cancelled = or_hint(client.cancel_run(project, &run).await, url, RUN_HINT)?;
            if out.json {
                return print_json(&cancelled);
            }
            match cancelled.status.as_str() {
                "cancelled" => eprintln!("run {} cancelled", escape(&cancelled.id)),
                _ => eprintln!(
                    "run {} is being stopped (airlock runs show {})",
                    escape(&cancelled.id),
                    escape(&cancelled.id)
                ),
            }
            Ok(())
        }
        RunsCommand::Rerun(rerun) => {
            let request = RerunRequest {
                version: if rerun.same_version {
                    RerunVersion::Same
                } else {
                    RerunVersion::Current
                },
                nostore: rerun.nostore,
            };
            if rerun.queued {
                let queued = or_hint(
                    client
                        .queue_rerun(
                            project,
                            &rerun.run,
                            &request,
                            rerun.idempotency_key.as_deref(),
                        )
                        .await,
                    url,
                    RUN_HINT,
                )?;
                if out.json {
                    return print_json(&queued);
                }
                println!("{}", queued.id);
                eprintln!(
                    "run {} {} (follow it: airlock runs show {})",
                    escape(&queued.id),
                    escape(&queued.status),
                    escape(&queued.id)
                );
                return Ok(());
            }
            let result = or_hint(
                client.rerun(project, &rerun.run, &request).await,
                url,
                RUN_HINT,
            )?;
            if out.json {
                print_json(&result)?;
            } else {
                if let Some(output) = &result.output {
                    println!("{}", compact_json(output));
                }
                eprintln!("new run {}", escape(&result.id));
            }
            outcome(&result)
        }
        RunsCommand::Show { run } => {
            let run = or_hint(client.get_run(project, &run).await, url, RUN_HINT)?;
            if out.json {
                return print_json(&run);
            }
            show(&run);
            Ok(())
        }
        RunsCommand::Start(start) => {
            let input = read_input(&start)?;
            let request = RunRequest {
                input,
                external_user_id: start.external_user,
                nostore: start.nostore,
            };
            if start.queued {
                let queued = or_hint(
                    client
                        .queue_run(
                            project,
                            &start.step,
                            &request,
                            start.idempotency_key.as_deref(),
                        )
                        .await,
                    url,
                    "`airlock steps list` shows the project's steps",
                )?;
                if out.json {
                    return print_json(&queued);
                }
                println!("{}", queued.id);
                eprintln!(
                    "run {} {} (follow it: airlock runs show {})",
                    escape(&queued.id),
                    escape(&queued.status),
                    escape(&queued.id)
                );
                return Ok(());
            }
            let result = or_hint(
                client.start_run(project, &start.step, &request).await,
                url,
                "`airlock steps list` shows the project's steps",
            )?;
            if out.json {
                print_json(&result)?;
            } else if let Some(output) = &result.output {
                println!("{}", compact_json(output));
            }
            outcome(&result)
        }
    }
}

/// Success, or the failure of a run: its kind, the step's code and the
/// message, with the exit status `airlock run` uses for it.
fn outcome(result: &RunResult) -> CliResult<()> {
    let Some(error) = &result.error else {
        eprintln!(
            "run {} {} in {} ms (its logs: airlock logs {})",
            escape(&result.id),
            result.status.as_str(),
            result.duration_ms,
            escape(&result.id)
        );
        return Ok(());
    };
    let code = match error.failure() {
        FailureKind::StepError | FailureKind::InvalidOutput => exit::STEP_ERROR,
        FailureKind::Limit(_) => exit::LIMIT,
        FailureKind::Internal | FailureKind::Other(_) => exit::INTERNAL,
    };
    let step_code = error
        .code
        .as_deref()
        .map(|c| format!(" (code {c})"))
        .unwrap_or_default();
    Err(Failure::new(
        code,
        format!(
            "run {} failed: {}{step_code}: {} (its logs: airlock logs {})",
            result.id, error.kind, error.message, result.id
        ),
    ))
}

fn read_input(args: &StartArgs) -> CliResult<serde_json::Value> {
    let text = match (&args.input, &args.input_file) {
        (Some(text), _) => text.clone(),
        (None, Some(path)) => std::fs::read_to_string(path).map_err(|e| {
            Failure::usage(format!("cannot read input file {}: {e}", path.display()))
        })?,
        (None, None) => {
            let mut s = String::new();
            std::io::stdin()
                .read_to_string(&mut s)
                .map_err(|e| Failure::usage(format!("cannot read the input from stdin: {e}")))?;
            s
        }
    };
    serde_json::from_str(&text)
        .map_err(|e| Failure::usage(format!("the input is not valid JSON: {e}")))
}

fn show(run: &Run) {
    let mut fields = Table::fields();
    fields.field("run", run.id.clone());
    fields.field("step", run.step.clone());
    fields.field("digest", short_digest(&run.digest));
    fields.field("status", run.status.as_str());
    if run.attempts != 1 {
        fields.field("attempts", run.attempts.to_string());
    }
    fields.field("created", when_both(run.created_at));
    if let Some(started) = run.started_at
        && started != run.created_at
    {
        let waited = (started - run.created_at).num_milliseconds();
        fields.field(
            "started",
            format!("{} (queued {waited} ms)", when_both(started)),
        );
    }
    if let Some(user) = &run.external_user_id {
        fields.field("end user", user.clone());
    }
    if let Some(of) = &run.rerun_of {
        fields.field("re-run of", of.clone());
    }
    fields.field("duration", format!("{} ms", run.stats.duration_ms));
    fields.field("cpu ticks", run.stats.cpu_ticks.to_string());
    fields.field(
        "memory peak",
        format!("{} KiB", run.stats.memory_peak_bytes / 1024),
    );
    fields.field("log bytes", run.stats.log_bytes.to_string());
    if let Some(input) = &run.input {
        fields.field("input", compact_json(input));
    }
    if let Some(output) = &run.output {
        fields.field("output", compact_json(output));
    }
    if let Some(error) = &run.error {
        fields.field("error", error.kind.clone());
        if let Some(code) = &error.code {
            fields.field("code", code.clone());
        }
        fields.field("message", error.message.clone());
        if let Some(details) = &error.details {
            fields.field("details", compact_json(details));
        }
    }
    print!("{}", fields.render());
    if let Some(calls) = run.http_calls.as_ref().filter(|c| !c.is_empty()) {
        println!("\noutbound calls:");
        let mut table = Table::new(&["METHOD", "URL", "STATUS", "DURATION", "BYTES", "ACCOUNT"]);
        for c in calls {
            table.row(vec![
                c.method.clone(),
                c.url.clone(),
                c.status.map_or_else(|| "-".to_owned(), |s| s.to_string()),
                format!("{} ms", c.duration_ms),
                c.response_bytes.to_string(),
                c.account_id.clone().unwrap_or_else(|| "-".to_owned()),
            ]);
        }
        print!("{}", table.render());
    }
    match &run.logs {
        Some(lines) if !lines.is_empty() => {
            println!("\nlogs:");
            print_lines(lines, Palette::stdout());
        }
        Some(_) => println!("\nlogs: none"),
        None => println!("\nlogs: not kept (nostore)"),
    }
}
