//! `airlock logs RUN`: a run's log lines, readable, levels coloured on a
//! terminal.
//!
//! No `--follow`: a run's record (and so its log) is written when the run
//! ends, and the API has no running state or stream to follow yet.

use airlock_client::{LogLevel, LogLine, LogSource};
use anstyle::{AnsiColor, Style};
use clap::Args;

use crate::cli::output::{Palette, escape, print_json};
use crate::cli::remote::{CliResult, OutputArgs, ProjectArgs, ServerArgs, finish, or_hint};

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// The run's id (`airlock runs list` shows them).
    #[arg(allow_hyphen_values = true)]
    run: String,
    #[command(flatten)]
    server: ServerArgs,
    #[command(flatten)]
    project: ProjectArgs,
    #[command(flatten)]
    output: OutputArgs,
}

pub async fn run(args: LogsArgs) -> u8 {
    finish(execute(args).await)
}

pub const RUN_HINT: &str = "`airlock runs list` shows the project's runs";

async fn execute(args: LogsArgs) -> CliResult<()> {
    let client = args.server.client()?;
    let project = args.project.require()?;
    let run = or_hint(
        client.get_run(project, &args.run).await,
        args.server.url(),
        RUN_HINT,
    )?;
    if args.output.json {
        return print_json(&serde_json::json!({ "logs": run.logs }));
    }
    match &run.logs {
        Some(lines) => print_lines(lines, Palette::stdout()),
        None => eprintln!("run {} kept no logs (it ran with nostore)", escape(&run.id)),
    }
    Ok(())
}

/// Each line as `   12ms INFO   text`; the label coloured by level.
pub fn print_lines(lines: &[LogLine], palette: Palette) {
    for line in lines {
        println!("{}", format_line(line, palette));
    }
}

fn format_line(line: &LogLine, palette: Palette) -> String {
    let (label, style) = label(line);
    let elapsed = format!("{:>6}ms", line.elapsed_ms);
    format!(
        "{} {} {}",
        palette.paint(Style::new().dimmed(), &elapsed),
        palette.paint(style, &format!("{label:<6}")),
        escape(&line.text)
    )
}

fn label(line: &LogLine) -> (&'static str, Style) {
    let fg = |c: AnsiColor| Style::new().fg_color(Some(c.into()));
    match (line.source, line.level) {
        (LogSource::Stdout, _) => ("stdout", Style::new().dimmed()),
        (LogSource::Stderr, _) => ("stderr", Style::new().dimmed()),
        (_, Some(LogLevel::Error)) => ("ERROR", fg(AnsiColor::Red).bold()),
        (_, Some(LogLevel::Warn)) => ("WARN", fg(AnsiColor::Yellow)),
        (_, Some(LogLevel::Info)) => ("INFO", fg(AnsiColor::Green)),
        (_, Some(LogLevel::Debug)) => ("DEBUG", fg(AnsiColor::Blue)),
        (_, Some(LogLevel::Trace)) => ("TRACE", Style::new().dimmed()),
        _ => ("LOG", Style::new()),
    }
}
