//! What every client command shares: where the server is, the API key, the
//! project, `--json`, and how a failure of the client becomes a message
//! naming the fix and an exit status.
//!
//! Exit status of the client commands: 0 success; 1 a run failed (the
//! step's error); 2 bad usage or a 4xx answer; 3 a limit stopped a run; 4
//! the server cannot be reached, failed (5xx), or answered what the API
//! does not document.

use airlock_client::{Client, Error, StatusCode};
use clap::Args;

use crate::cli::exit;
use crate::cli::output::escape;

/// `--server` and `--api-key`.
#[derive(Debug, Clone, Args)]
pub struct ServerArgs {
    /// The server's base URL [default: http://127.0.0.1:8080].
    #[arg(long, global = true, value_name = "URL", env = "AIRLOCK_SERVER")]
    pub server: Option<String>,
    /// An API key (prefer AIRLOCK_API_KEY: a flag shows in `ps`).
    #[arg(
        long,
        global = true,
        value_name = "KEY",
        env = "AIRLOCK_API_KEY",
        hide_env_values = true
    )]
    pub api_key: Option<String>,
}

impl ServerArgs {
    /// The server named by `--server` or AIRLOCK_SERVER, if any (an empty
    /// value names none, so `AIRLOCK_SERVER= airlock secrets …` is local).
    pub fn given(&self) -> Option<&str> {
        self.server
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
    }

    /// The server's base URL.
    pub fn url(&self) -> &str {
        self.given().unwrap_or(airlock_client::DEFAULT_SERVER)
    }

    /// A client of the server with the API key; without a key, the error
    /// says where to put one.
    pub fn client(&self) -> Result<Client, Failure> {
        self.client_for_flag("--api-key")
    }

    /// [`ServerArgs::client`] where the key's flag is `flag`.
    pub fn client_for_flag(&self, flag: &str) -> Result<Client, Failure> {
        let Some(key) = self.api_key.as_deref().filter(|k| !k.trim().is_empty()) else {
            return Err(Failure::usage(format!(
                "no API key: set AIRLOCK_API_KEY or pass {flag} \
                 (`airlock admin create-key` makes one)"
            )));
        };
        Client::builder(self.url())
            .api_key(key.trim())
            .build()
            .map_err(|e| Failure::from_client(&e, self.url()))
    }
}

/// `--project`.
#[derive(Debug, Clone, Args)]
pub struct ProjectArgs {
    /// The project (default AIRLOCK_PROJECT).
    #[arg(
        long,
        short,
        global = true,
        value_name = "PROJECT",
        env = "AIRLOCK_PROJECT"
    )]
    pub project: Option<String>,
}

impl ProjectArgs {
    pub fn require(&self) -> Result<&str, Failure> {
        self.project.as_deref().ok_or_else(|| {
            Failure::usage(
                "no project: pass --project NAME or set AIRLOCK_PROJECT \
                 (`airlock projects list` shows them)",
            )
        })
    }
}

/// `--json` and `--absolute`.
#[derive(Debug, Clone, Copy, Args)]
pub struct OutputArgs {
    /// Print JSON with stable field names (the API's) instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    /// Show times as absolute UTC instead of relative ("3 min ago").
    #[arg(long, global = true)]
    pub absolute: bool,
}

/// A failed command: its exit status and the message for stderr.
#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    pub message: String,
}

pub type CliResult<T> = Result<T, Failure>;

impl Failure {
    pub fn new(code: u8, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    pub fn usage(message: impl Into<String>) -> Self {
        Self::new(exit::USAGE, message)
    }

    /// Prints `error: <message>` (control characters escaped: the message
    /// may quote the server) and returns the exit status.
    pub fn report(self) -> u8 {
        eprintln!("error: {}", escape(&self.message));
        self.code
    }

    /// The message and exit status of a client error; `server` is the URL
    /// it was talking to.
    pub fn from_client(e: &Error, server: &str) -> Self {
        match e {
            Error::Api(api) => {
                let status = match &api.code {
                    Some(code) => format!("HTTP {} {code}", api.status.as_u16()),
                    None => format!("HTTP {}", api.status.as_u16()),
                };
                let message = &api.message;
                match api.status {
                    StatusCode::UNAUTHORIZED => Self::usage(format!(
                        "the server refused the API key: {message} ({status}); check \
                         AIRLOCK_API_KEY or --api-key (`airlock admin create-key` makes one)"
                    )),
                    StatusCode::FORBIDDEN => Self::usage(format!(
                        "{message} ({status}); use a key with that scope \
                         (`airlock keys create NAME --scope SCOPE`)"
                    )),
                    StatusCode::TOO_MANY_REQUESTS => {
                        let wait = api
                            .retry_after
                            .map(|d| format!("; retry in {} s", d.as_secs()))
                            .unwrap_or_default();
                        Self::usage(format!("{message} ({status}){wait}"))
                    }
                    s if s.is_client_error() => Self::usage(format!("{message} ({status})")),
                    _ => Self::new(
                        exit::INTERNAL,
                        format!(
                            "the server failed: {message} ({status}); the server's log has \
                             the cause"
                        ),
                    ),
                }
            }
            Error::Connect { source, .. } => Self::new(
                exit::INTERNAL,
                format!(
                    "cannot reach {server} ({}): is `airlock serve` running? set \
                     AIRLOCK_SERVER or pass --server",
                    root_cause(source)
                ),
            ),
            Error::UnexpectedResponse { status, detail, .. } => Self::new(
                exit::INTERNAL,
                format!(
                    "{server} answered HTTP {} with something that is not the Airlock API \
                     ({detail}): is AIRLOCK_SERVER an `airlock serve` server?",
                    status.as_u16()
                ),
            ),
            Error::InvalidUrl { .. } => Self::usage(format!(
                "{e}: set AIRLOCK_SERVER or pass --server, e.g. http://127.0.0.1:8080"
            )),
            Error::InvalidArgument(_) => Self::usage(e.to_string()),
            _ => Self::new(exit::INTERNAL, e.to_string()),
        }
    }
}

/// The innermost cause of `e` (e.g. "Connection refused (os error 111)").
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut current = e;
    while let Some(next) = current.source() {
        current = next;
    }
    current.to_string()
}

/// `result` with `hint` added to a 404's message: what to list to find the
/// right name.
pub fn or_hint<T>(result: Result<T, Error>, server: &str, hint: &str) -> CliResult<T> {
    result.map_err(|e| {
        let mut f = Failure::from_client(&e, server);
        if e.status() == Some(StatusCode::NOT_FOUND) && !hint.is_empty() {
            f.message.push_str("; ");
            f.message.push_str(hint);
        }
        f
    })
}

/// `result`, its error as a [`Failure`].
pub fn api<T>(result: Result<T, Error>, server: &str) -> CliResult<T> {
    or_hint(result, server, "")
}

/// Exit status of a finished command.
pub fn finish(result: CliResult<()>) -> u8 {
    match result {
        Ok(()) => exit::OK,
        Err(f) => f.report(),
    }
}
