//! `airlock logs RUN`: a run's log lines, readable, levels coloured on a
//! terminal. With `--follow`, the lines of a queued run as they are
//! written (from whichever node runs it), until it ends; the exit code is
//! then the run's: 0 when it succeeded, non-zero otherwise.
//!
//! Following reads the server's Server-Sent Events stream
//! (`GET …/runs/{id}/logs?follow=1`). A stream that breaks before the end
//! (a proxy's timeout, a server restart) is opened again with
//! `Last-Event-ID`, so no line is printed twice.

use std::time::Duration;

use airlock_client::{LogLevel, LogLine, LogSource};
use anstyle::{AnsiColor, Style};
use clap::Args;

use crate::cli::exit;
use crate::cli::output::{Palette, escape, print_json};
use crate::cli::remote::{
    CliResult, Failure, OutputArgs, ProjectArgs, ServerArgs, finish, or_hint,
};

/// Times a broken stream is opened again before giving up.
const REOPEN: u32 = 5;
/// Longest event accepted from the server, in bytes (a line is bounded by
/// the server's log cap; this bounds what a broken server can make the CLI
/// hold).
const MAX_EVENT: usize = 4 << 20;

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

/// One server-sent event.
#[derive(Debug, Default, PartialEq, Eq)]
struct Event {
    event: String,
    id: Option<String>,
    data: String,
}

/// Splits complete events off the front of `buf` (the SSE wire format:
/// `field: value` lines, a blank line ends an event, `:` lines are
/// comments).
fn take_events(buf: &mut String) -> Vec<Event> {
    let mut events = Vec::new();
    loop {
        let normalized = buf.replace("\r\n", "\n");
        if normalized.len() != buf.len() {
            *buf = normalized;
        }
        let Some(end) = buf.find("\n\n") else {
            return events;
        };
        let block: String = buf.drain(..end + 2).collect();
        let mut event = Event::default();
        let mut data = Vec::new();
        for line in block.lines() {
            let (field, value) = line.split_once(':').unwrap_or((line, ""));
            let value = value.strip_prefix(' ').unwrap_or(value);
            match field {
                "event" => event.event = value.to_owned(),
                "id" => event.id = Some(value.to_owned()),
                "data" => data.push(value),
                _ => {}
            }
        }
        if data.is_empty() && event.event.is_empty() {
            continue; // a keep-alive comment
        }
        event.data = data.join("\n");
        events.push(event);
    }
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
    let mut last: Option<String> = None;
    let mut reopened = 0;
    loop {
        let mut response = or_hint(
            client
                .follow_logs(project, &args.run, last.as_deref())
                .await,
            args.server.url(),
            RUN_HINT,
        )?;
        let mut buf = String::new();
        // Bytes after the last newline: a chunk may end inside a character.
        let mut bytes: Vec<u8> = Vec::new();
        loop {
            let chunk = match response.chunk().await {
                Ok(Some(chunk)) => chunk,
                Ok(None) | Err(_) => break,
            };
            bytes.extend_from_slice(&chunk);
            if let Some(nl) = bytes.iter().rposition(|&b| b == b'\n') {
                let rest = bytes.split_off(nl + 1);
                buf.push_str(&String::from_utf8_lossy(&bytes));
                bytes = rest;
            }
            let events = take_events(&mut buf);
            if buf.len() + bytes.len() > MAX_EVENT {
                return Err(Failure::new(
                    exit::INTERNAL,
                    "the server sent an event larger than 4 MiB",
                ));
            }
            for event in events {
                match event.event.as_str() {
                    "log" => {
                        if let Some(id) = event.id {
                            last = Some(id);
                        }
                        let line: LogLine = serde_json::from_str(&event.data).map_err(|e| {
                            Failure::new(exit::INTERNAL, format!("unreadable log event: {e}"))
                        })?;
                        if args.output.json {
                            println!("{}", event.data);
                        } else {
                            println!("{}", format_line(&line, palette));
                        }
                    }
                    "end" => {
                        let end: serde_json::Value =
                            serde_json::from_str(&event.data).unwrap_or_default();
                        let status = end["status"].as_str().unwrap_or("unknown").to_owned();
                        let code = exit_code(&status);
                        if code == exit::OK {
                            return Ok(());
                        }
                        return Err(Failure::new(
                            code,
                            format!("run {} {status}", escape(&args.run)),
                        ));
                    }
                    _ => {}
                }
            }
        }
        reopened += 1;
        if reopened > REOPEN {
            return Err(Failure::new(
                exit::INTERNAL,
                format!(
                    "the log stream of run {} kept breaking before the run ended",
                    escape(&args.run)
                ),
            ));
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
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
    fn events_are_split_at_blank_lines_across_chunks() {
        let mut buf = String::from(": keep-alive\n\nevent: log\nid: 4294967296\ndata: {\"a\":1}\n");
        assert!(take_events(&mut buf).is_empty());
        buf.push_str("\r\nevent: end\r\ndata: {\"status\":\"failed\"}\r\n\r\n");
        let events = take_events(&mut buf);
        assert_eq!(
            events,
            [
                Event {
                    event: "log".into(),
                    id: Some("4294967296".into()),
                    data: "{\"a\":1}".into()
                },
                Event {
                    event: "end".into(),
                    id: None,
                    data: "{\"status\":\"failed\"}".into()
                },
            ]
        );
        assert!(buf.is_empty());
    }

    #[test]
    fn only_a_succeeded_run_exits_zero() {
        assert_eq!(exit_code("succeeded"), 0);
        assert_ne!(exit_code("failed"), 0);
        assert_ne!(exit_code("cancelled"), 0);
    }
}
