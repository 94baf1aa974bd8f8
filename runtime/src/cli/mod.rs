//! The `airlock` command line.
//!
//! Exit status, for every command: 0 success; 1 the step returned an error;
//! 2 bad usage, input that is not JSON, or an invalid component; 3 a limit
//! stopped the guest; 4 an internal error of the host.

mod accounts;
mod admin;
mod push;
mod run;
mod secrets;
mod serve;

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
                  input/component, 3 a limit stopped the step, 4 internal error."
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
        }
    });
    ExitCode::from(code)
}
