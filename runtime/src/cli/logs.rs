//! `airlock logs RUN`: a run's log lines, readable, levels coloured on a
//! terminal. With `--follow`, the lines of a queued run as they are
//! written (from whichever node runs it), until it ends; the exit code is
//! then the run's: 0 when it succeeded, non-zero otherwise.
//!
//! Following reads the server's Server-Sent Events stream
//! (`GET …/runs/{id}/logs?follow=1`). A stream that breaks before the end
//! (a proxy's timeout, a server restart) is opened again with
//! `Last-Event-ID`, so no line is printed twice.

use airlock_client::{LogEvent, LogLevel, LogLine, LogSource};
use anstyle::{AnsiColor, Style};
use clap::Args;

use crate::cli::exit;
use crate::cli::output::{Palette, escape, print_json};
use crate::cli::remote::{
    CliResult, Failure, OutputArgs, ProjectArgs, ServerArgs, finish, or_hint,
};

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// The run's id (`airlock runs list` shows them).
    #[arg(allow_hyphen_values = true)]
    run: String,
    /// Print lines as they are written until the run ends, then exit with
    /// its status (0 succeeded, 1 failed, 3 cancelled).
    #[arg(long, short = 'f')]
    follow: bool,
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
    if args.follow {
        return follow(&args).await;
    }
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

/// The exit code of a run that ended with `status`.
fn exit_code(status: &str) -> u8 {
    match status {
        "succeeded" => exit::OK,
        "cancelled" => exit::LIMIT,
        _ => exit::STEP_ERROR,
    }
}

async fn follow(args: &LogsArgs) -> CliResult<()> {
    let client = args.server.client()?;
    let project = args.project.require()?;
    let palette = Palette::stdout();
    let mut stream = client.stream_logs(project, &args.run);
    loop {
        let event = or_hint(stream.next().await, args.server.url(), RUN_HINT)?;
        match event {
            Some(LogEvent::Line { line, raw }) => {
                if args.output.json {
                    println!("{raw}");
                } else {
                    println!("{}", format_line(&line, palette));
                }
            }
            Some(LogEvent::End { status }) => {
                let code = exit_code(&status);
                if code == exit::OK {
                    return Ok(());
                }
                return Err(Failure::new(
                    code,
                    format!("run {} {status}", escape(&args.run)),
                ));
            }
            None => return Ok(()),
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_succeeded_run_exits_zero() {
        assert_eq!(exit_code("succeeded"), 0);
        assert_ne!(exit_code("failed"), 0);
        assert_ne!(exit_code("cancelled"), 0);
    }
}
