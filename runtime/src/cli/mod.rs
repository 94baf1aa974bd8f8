//! The `airlock` command line.
//!
//! Exit status, for every command: 0 success; 1 the step returned an error;
//! 2 bad usage, input that is not JSON, or an invalid component (and, for
//! the client commands, a 4xx answer); 3 a limit stopped the guest; 4 an
//! internal error of the host (for the client commands, the server cannot
//! be reached or failed).
//!
//! The client commands (`projects`, `steps`, `runs`, `logs`, `triggers`,
//! `keys`, `clients`, `push`, and `secrets`/`accounts` with `--server`)
//! speak to a server only through `airlock-client`; [`remote`] holds what
//! they share and [`output`] how they print.

mod accounts;
mod accounts_remote;
mod admin;
mod clients;
mod completions;
mod conformance;
mod keys;
mod logs;
mod new;
mod output;
mod projects;
mod push;
mod remote;
mod run;
mod runs;
mod schedules;
mod secrets;
mod secrets_remote;
mod serve;
mod steps;
mod triggers;
mod usage;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Exit statuses of the `airlock` command.
pub mod exit {
    pub const OK: u8 = 0;
    pub const STEP_ERROR: u8 = 1;
    pub const USAGE: u8 = 2;
    pub const LIMIT: u8 = 3;
    pub const INTERNAL: u8 = 4;
}

#[derive(Debug, Parser)]
#[command(
    name = "airlock",
    version,
    about = "Run untrusted workflow steps (WebAssembly components) in a sandbox.",
    after_help = "Exit status: 0 success, 1 the step returned an error, 2 bad usage or invalid \
                  input/component (or a 4xx answer), 3 a limit stopped the step, 4 internal \
                  error (or the server cannot be reached or failed).\n\
                  Client commands read AIRLOCK_SERVER (default http://127.0.0.1:8080), \
                  AIRLOCK_API_KEY and AIRLOCK_PROJECT; each takes --json."
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a step component once, locally.
    Run(run::RunArgs),
    /// Print a fresh master key (base64 of 32 random bytes) on stdout.
    Keygen,
    /// Manage the encrypted local secret store.
    Secrets(secrets::SecretsArgs),
    /// Manage end users' connected accounts (credentials encrypted in the store).
    Accounts(accounts::AccountsArgs),
    /// Serve the REST API (needs the master key).
    Serve(crate::server::ServeArgs),
    /// Platform administration without a server: bootstrap API keys.
    Admin(admin::AdminArgs),
    /// Upload a step (component and manifest) to an `airlock serve` server.
    Push(push::PushArgs),
    /// Projects on the server.
    Projects(projects::ProjectsArgs),
    /// Steps of a project on the server.
    Steps(steps::StepsArgs),
    /// Runs of a project: list, show, start one.
    Runs(runs::RunsArgs),
    /// A run's log lines.
    Logs(logs::LogsArgs),
    /// A project's usage per step over a time range.
    Usage(usage::UsageArgs),
    /// HTTP triggers of a project's steps.
    Triggers(triggers::TriggersArgs),
    /// Cron schedules of a project's steps.
    Schedules(schedules::SchedulesArgs),
    /// API keys of the server (an admin key).
    Keys(keys::KeysArgs),
    /// OAuth clients of the server (an admin key).
    Clients(clients::ClientsArgs),
    /// Check a guest SDK: run its builds of the conformance steps against their expected results.
    Conformance(conformance::ConformanceArgs),
    /// Create a step project (Rust, Python or JavaScript) that builds and runs as written.
    New(new::NewArgs),
    /// Print a shell completion script.
    Completions(completions::CompletionsArgs),
}

/// Where compiled artifacts are cached when no `--cache-dir` is given.
pub(crate) fn default_cache_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME") {
        return Some(PathBuf::from(dir).join("airlock"));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache").join("airlock"))
}

/// Logs on stderr, filtered by `AIRLOCK_LOG` (default `warn`), as text or,
/// for `airlock serve --log-format json`, one JSON object per line.
fn init_tracing(format: crate::server::config::LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("AIRLOCK_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    // Colours only for a terminal: a log file or collector gets plain text.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    let _ = match format {
        crate::server::config::LogFormat::Text => builder.try_init(),
        crate::server::config::LogFormat::Json => builder.json().try_init(),
    };
}

/// Entry point of the `airlock` binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(match &cli.command {
        Command::Serve(args) => args.log_format_hint(),
        _ => crate::server::config::LogFormat::Text,
    });
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(exit::INTERNAL);
        }
    };
    let code = runtime.block_on(async {
        match cli.command {
            Command::Run(args) => run::run(args).await,
            Command::Keygen => secrets::keygen(),
            Command::Secrets(args) => secrets::run(args).await,
            Command::Accounts(args) => accounts::run(args).await,
            Command::Serve(args) => serve::run(args).await,
            Command::Admin(args) => admin::run(args).await,
            Command::Push(args) => push::run(args).await,
            Command::Projects(args) => projects::run(args).await,
            Command::Steps(args) => steps::run(args).await,
            Command::Runs(args) => runs::run(args).await,
            Command::Logs(args) => logs::run(args).await,
            Command::Usage(args) => usage::run(args).await,
            Command::Triggers(args) => triggers::run(args).await,
            Command::Schedules(args) => schedules::run(args).await,
            Command::Keys(args) => keys::run(args).await,
            Command::Clients(args) => clients::run(args).await,
            Command::Completions(args) => completions::run(args),
            Command::Conformance(args) => conformance::run(args).await,
            Command::New(args) => new::run(args),
        }
    });
    ExitCode::from(code)
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::Cli;

    /// Ids are base64url or hex: a random one may begin with `-` and must
    /// still be read as the id, not as an option.
    #[test]
    fn ids_that_begin_with_a_hyphen_are_ids() {
        for args in [
            &["airlock", "triggers", "rm", "hello", "-Gx2"][..],
            &["airlock", "runs", "show", "-abc"],
            &["airlock", "logs", "-abc"],
            &["airlock", "keys", "revoke", "-abc"],
            &["airlock", "clients", "rotate", "-abc"],
            &["airlock", "clients", "rm", "-abc"],
        ] {
            if let Err(e) = Cli::try_parse_from(args) {
                panic!("{args:?}: {e}");
            }
        }
    }
}
