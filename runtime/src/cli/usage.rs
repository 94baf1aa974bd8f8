//! `airlock usage --from T [--to T]`: a project's usage per step over a time
//! range (`GET .../usage`), the numbers a billing system reads.

use airlock_client::UsageTotals;
use chrono::{DateTime, Utc};
use clap::Args;

use crate::cli::output::{Table, absolute, escape, print_json};
use crate::cli::remote::{
    CliResult, Failure, OutputArgs, ProjectArgs, ServerArgs, finish, or_hint,
};

#[derive(Debug, Args)]
pub struct UsageArgs {
    #[command(flatten)]
    server: ServerArgs,
    #[command(flatten)]
    project: ProjectArgs,
    #[command(flatten)]
    output: OutputArgs,
    /// Start of the range, included: RFC 3339 (`2026-12-01T00:00:00Z`) or
    /// Unix milliseconds.
    #[arg(long, value_name = "TIME")]
    from: String,
    /// End of the range, excluded; the same forms [default: now].
    #[arg(long, value_name = "TIME")]
    to: Option<String>,
}

pub async fn run(args: UsageArgs) -> u8 {
    finish(execute(args).await)
}

/// `text` as an instant: digits are Unix milliseconds, anything else RFC 3339.
fn instant(flag: &str, text: &str) -> CliResult<DateTime<Utc>> {
    let text = text.trim();
    let parsed = if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        text.parse::<i64>()
            .ok()
            .and_then(DateTime::from_timestamp_millis)
    } else {
        DateTime::parse_from_rfc3339(text)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    };
    parsed.ok_or_else(|| {
        Failure::usage(format!(
            "{flag} {}: expected an RFC 3339 time (2026-12-01T00:00:00Z) or Unix milliseconds",
            escape(text)
        ))
    })
}

fn outcomes(u: &UsageTotals) -> String {
    let parts: Vec<String> = u.outcomes.iter().map(|(s, n)| format!("{s} {n}")).collect();
    parts.join(", ")
}

fn row(name: &str, u: &UsageTotals) -> Vec<String> {
    vec![
        name.to_owned(),
        u.runs.to_string(),
        outcomes(u),
        u.duration_ms.to_string(),
        u.cpu_ticks.to_string(),
        u.memory_kib_ms.to_string(),
        u.log_bytes.to_string(),
        u.http_response_bytes.to_string(),
    ]
}

async fn execute(args: UsageArgs) -> CliResult<()> {
    let from = instant("--from", &args.from)?;
    let to = match &args.to {
        Some(t) => instant("--to", t)?,
        None => Utc::now(),
    };
    if from >= to {
        return Err(Failure::usage(format!(
            "the range is empty: --to ({}) must be after --from ({})",
            absolute(to),
            absolute(from)
        )));
    }
    let client = args.server.client()?;
    let project = args.project.require()?;
    let url = args.server.url();
    let usage = or_hint(
        client.usage(project, from, to).await,
        url,
        "`airlock projects list` shows the projects",
    )?;
    if args.output.json {
        return print_json(&usage);
    }
    eprintln!(
        "usage of project {} from {} to {} (excluded)",
        escape(project),
        absolute(usage.from),
        absolute(usage.to)
    );
    let mut table = Table::new(&[
        "STEP",
        "RUNS",
        "OUTCOMES",
        "WALL_MS",
        "CPU_TICKS",
        "MEMORY_KIB_MS",
        "LOG_BYTES",
        "HTTP_RESPONSE_BYTES",
    ]);
    for s in &usage.steps {
        table.row(row(&s.step, &s.usage));
    }
    if usage.steps.len() > 1 {
        table.row(row("(total)", &usage.total));
    }
    table.print_or("no runs in this range");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_rfc_3339_or_unix_millis_and_bad_ones_are_usage_errors() {
        let t = instant("--from", "1796083200000").unwrap();
        assert_eq!(t, instant("--from", "2026-12-01T00:00:00Z").unwrap());
        assert_eq!(t, instant("--from", "2026-12-01T01:00:00+01:00").unwrap());
        for bad in ["", "yesterday", "-1", "2026-12-01"] {
            let f = instant("--from", bad).unwrap_err();
            assert_eq!(f.code, crate::cli::exit::USAGE, "{bad}");
            assert!(f.message.starts_with("--from"), "{}", f.message);
        }
    }
}
