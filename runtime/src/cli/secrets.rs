//! `airlock keygen` and `airlock secrets …`: the master key and the local
//! encrypted secret store.

use std::io::{IsTerminal as _, Read as _};
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use zeroize::Zeroizing;

use crate::cli::exit;
use crate::cli::output::print_json;
use crate::cli::remote::{OutputArgs, ServerArgs};
use crate::store::{
    self, DATA_DIR_ENV, DEFAULT_DATA_DIR, KeyError, MasterKey, SecretStore, SetOutcome, StoreError,
};

/// Environment variable holding the new key for `airlock secrets rotate-key`.
pub const NEW_MASTER_KEY_ENV: &str = "AIRLOCK_NEW_MASTER_KEY";

const EXIT_HELP: &str = "Exit status: 0 success, 2 bad usage, a missing or wrong master key, \
                         or (for rm) no such secret, 4 a storage or decryption failure.";

/// `airlock keygen`: print a fresh master key.
pub fn keygen() -> u8 {
    match MasterKey::generate() {
        Ok(key) => {
            println!("{}", key.to_base64().as_str());
            exit::OK
        }
        Err(e) => fail(exit::INTERNAL, &e.to_string()),
    }
}

#[derive(Debug, Args)]
#[command(
    mut_arg("server", |a| a.help(
        "Work on this server's secrets through the API (scope secrets:write) instead of \
         the local store"
    )),
    after_help = "Values are encrypted with AES-256-GCM under the master key \
                  (AIRLOCK_MASTER_KEY, or a file named by --master-key-file / \
                  AIRLOCK_MASTER_KEY_FILE); create one with `airlock keygen`. \
                  `list` and `rm` never see a value and need no key.\n\
                  Exit status: 0 success, 2 bad usage, a missing or wrong master key, or (for rm) \
                  no such secret, 4 a storage or decryption failure."
)]
pub struct SecretsArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// With `--server` (or AIRLOCK_SERVER) the commands work on that
    /// server's store through the API; without, on the local one.
    #[command(flatten)]
    server: ServerArgs,
    #[command(flatten)]
    output: OutputArgs,
    #[command(subcommand)]
    command: SecretsCommand,
}

/// Where the store is and where the master key comes from.
#[derive(Debug, Args)]
struct StoreArgs {
    /// Data directory; the store is `<DIR>/airlock.db`, created if missing.
    #[arg(long, global = true, value_name = "DIR", env = DATA_DIR_ENV, default_value = DEFAULT_DATA_DIR)]
    data_dir: PathBuf,
    /// File holding the master key as base64 (takes precedence over AIRLOCK_MASTER_KEY).
    #[arg(long, global = true, value_name = "FILE", env = store::crypto::MASTER_KEY_FILE_ENV)]
    master_key_file: Option<PathBuf>,
    #[command(flatten)]
    database: store::config::DatabaseArgs,
}

#[derive(Debug, Subcommand)]
pub(super) enum SecretsCommand {
    /// Store a secret (insert or replace). The value is read from stdin unless --value is given.
    #[command(after_help = EXIT_HELP)]
    Set(SetArgs),
    /// List a project's secrets: names and dates, never values.
    #[command(after_help = EXIT_HELP)]
    List(ProjectArg),
    /// Delete a secret; fails when it does not exist.
    #[command(after_help = EXIT_HELP)]
    Rm(RmArgs),
    /// Re-seal every secret and account credential under the current master
    /// key (or a new one, --new-key-file / AIRLOCK_NEW_MASTER_KEY), in batches,
    /// while servers keep running (the local or --database-url store).
    #[command(after_help = EXIT_HELP)]
    RotateKey(RotateKeyArgs),
}

#[derive(Debug, Args)]
pub(super) struct ProjectArg {
    /// The project the secret belongs to [default: AIRLOCK_PROJECT, else
    /// `local` for the local store].
    #[arg(long, short, value_name = "PROJECT", env = "AIRLOCK_PROJECT")]
    pub(super) project: Option<String>,
}

impl ProjectArg {
    /// The project of the local store.
    fn local(&self) -> &str {
        self.project.as_deref().unwrap_or("local")
    }
}

#[derive(Debug, Args)]
pub(super) struct SetArgs {
    /// The secret's name: letters, digits, `_`, `-`, `.`, starting with a letter or `_`.
    pub(super) name: String,
    /// The value. Prefer stdin: a command-line value shows in the process list and shell history.
    #[arg(long, value_name = "VALUE")]
    pub(super) value: Option<String>,
    #[command(flatten)]
    pub(super) project: ProjectArg,
}

#[derive(Debug, Args)]
pub(super) struct RmArgs {
    /// The secret's name.
    pub(super) name: String,
    #[command(flatten)]
    pub(super) project: ProjectArg,
}

#[derive(Debug, Args)]
pub(super) struct RotateKeyArgs {
    /// File holding the new master key as base64 (otherwise AIRLOCK_NEW_MASTER_KEY).
    #[arg(long, value_name = "FILE")]
    new_key_file: Option<PathBuf>,
}

/// `airlock secrets …`.
pub async fn run(args: SecretsArgs) -> u8 {
    if args.server.given().is_some() {
        return super::secrets_remote::run(&args.server, args.output, args.command).await;
    }
    let store_args = &args.store;
    match args.command {
        SecretsCommand::Set(set_args) => set(store_args, set_args, args.output).await,
        SecretsCommand::List(p) => list(store_args, p.local(), args.output).await,
        SecretsCommand::Rm(rm_args) => rm(store_args, rm_args, args.output).await,
        SecretsCommand::RotateKey(rotate_args) => rotate_key(store_args, rotate_args).await,
    }
}

async fn set(store_args: &StoreArgs, args: SetArgs, output: OutputArgs) -> u8 {
    let project = args.project.local();
    let key = match master_key(store_args) {
        Ok(k) => k,
        Err(code) => return code,
    };
    // Check the names before waiting on stdin.
    if let Err(e) =
        store::validate_project_name(project).and_then(|()| store::validate_secret_name(&args.name))
    {
        return store_fail(&e);
    }
    let value = match value_of(&args) {
        Ok(v) => v,
        Err(msg) => return fail(exit::USAGE, &msg),
    };
    let store = match open_store(store_args).await {
        Ok(s) => s,
        Err(code) => return code,
    };
    let result = store.set(&key, project, &args.name, &value).await;
    drop(value);
    store.close().await;
    match result {
        Ok(outcome) => {
            let verb = match outcome {
                SetOutcome::Created => "created",
                SetOutcome::Updated => "updated",
            };
            if output.json {
                return json_exit(&serde_json::json!({"name": args.name, "outcome": verb}));
            }
            println!("{verb} secret `{}` in project `{project}`", args.name);
            exit::OK
        }
        Err(e) => store_fail(&e),
    }
}

/// The value to store: `--value` or stdin, not empty; warns when it is too
/// short to be masked.
pub(super) fn value_of(args: &SetArgs) -> Result<Zeroizing<String>, String> {
    let value = match &args.value {
        Some(v) => Zeroizing::new(v.clone()),
        None => read_value_from_stdin()?,
    };
    if value.is_empty() {
        return Err("the value is empty; nothing was stored".to_owned());
    }
    if value.len() < airlock_host_api::redact::MIN_MASKED_LEN {
        eprintln!(
            "warning: the value of `{}` is {} bytes, shorter than {}: it will not be masked in logs",
            args.name,
            value.len(),
            airlock_host_api::redact::MIN_MASKED_LEN
        );
    }
    Ok(value)
}

async fn list(store_args: &StoreArgs, project: &str, output: OutputArgs) -> u8 {
    if let Err(e) = store::validate_project_name(project) {
        return store_fail(&e);
    }
    let store = match open_store(store_args).await {
        Ok(s) => s,
        Err(code) => return code,
    };
    let result = store.list(project).await;
    store.close().await;
    let metas = match result {
        Ok(m) => m,
        Err(e) => return store_fail(&e),
    };
    if output.json {
        let list: Vec<serde_json::Value> = metas
            .iter()
            .map(|m| {
                serde_json::json!({
                    "name": m.name,
                    "created_at": rfc3339(m.created_at),
                    "updated_at": rfc3339(m.updated_at),
                })
            })
            .collect();
        return json_exit(&serde_json::json!({ "secrets": list }));
    }
    if metas.is_empty() {
        eprintln!("no secrets in project `{project}`");
        return exit::OK;
    }
    let width = metas
        .iter()
        .map(|m| m.name.len())
        .max()
        .unwrap_or(0)
        .max("NAME".len());
    println!("{:<width$}  {:<20}  UPDATED", "NAME", "CREATED");
    for m in &metas {
        println!(
            "{:<width$}  {:<20}  {}",
            m.name,
            format_unix(m.created_at),
            format_unix(m.updated_at)
        );
    }
    exit::OK
}

async fn rm(store_args: &StoreArgs, args: RmArgs, output: OutputArgs) -> u8 {
    let project = args.project.local();
    if let Err(e) =
        store::validate_project_name(project).and_then(|()| store::validate_secret_name(&args.name))
    {
        return store_fail(&e);
    }
    let store = match open_store(store_args).await {
        Ok(s) => s,
        Err(code) => return code,
    };
    let result = store.delete(project, &args.name).await;
    store.close().await;
    match result {
        Ok(true) => {
            if output.json {
                return json_exit(&serde_json::json!({ "deleted": args.name }));
            }
            println!("deleted secret `{}` from project `{project}`", args.name);
            exit::OK
        }
        Ok(false) => fail(
            exit::USAGE,
            &format!("no secret `{}` in project `{project}`", args.name),
        ),
        Err(e) => store_fail(&e),
    }
}

async fn rotate_key(store_args: &StoreArgs, args: RotateKeyArgs) -> u8 {
    let ring = match master_key(store_args) {
        Ok(k) => k,
        Err(code) => return code,
    };
    // With a new key named, it becomes current over the ring; without one,
    // the ring's own current key is the target (the nodes already run with
    // it, the old keys retired).
    let given = args.new_key_file.is_some()
        || std::env::var(NEW_MASTER_KEY_ENV).is_ok_and(|v| !v.trim().is_empty());
    let ring = if given {
        let new = match new_master_key(args.new_key_file.as_deref()) {
            Ok(k) => k,
            Err(e) => return fail(exit::USAGE, &e),
        };
        if new.id() == ring.id() {
            return store_fail(&store::StoreError::SameKey(new.id().to_owned()));
        }
        let old: Vec<MasterKey> = vec![ring];
        new.with_retired(old)
    } else {
        ring
    };
    let store = match open_store(store_args).await {
        Ok(s) => s,
        Err(code) => return code,
    };
    let result = store.rotate_to_current(&ring).await;
    store.close().await;
    match result {
        Ok(count) => {
            println!(
                "re-sealed {count} value{} (secrets and account credentials) under master key id {}.",
                if count == 1 { "" } else { "s" },
                ring.id(),
            );
            println!(
                "Every value is now sealed under key id {}: retired keys can be removed from \
                 every node's AIRLOCK_MASTER_KEY (or key file).",
                ring.id()
            );
            exit::OK
        }
        Err(e) => {
            eprintln!("error: {e}");
            eprintln!(
                "the rotation stopped; every value still opens with the key ring, and running \
                 the command again resumes it"
            );
            if e.is_usage() {
                exit::USAGE
            } else {
                exit::INTERNAL
            }
        }
    }
}

/// Prints `value` as JSON; the exit status.
fn json_exit(value: &serde_json::Value) -> u8 {
    match print_json(value) {
        Ok(()) => exit::OK,
        Err(f) => f.report(),
    }
}

fn master_key(store_args: &StoreArgs) -> Result<MasterKey, u8> {
    MasterKey::from_env_or_file(store_args.master_key_file.as_deref())
        .map_err(|e| fail(exit::USAGE, &e.to_string()))
}

fn new_master_key(file: Option<&Path>) -> Result<MasterKey, String> {
    let env = std::env::var(NEW_MASTER_KEY_ENV).ok().map(Zeroizing::new);
    let key = match (file, env.as_deref()) {
        (Some(path), _) => MasterKey::from_file(path),
        (None, Some(text)) if !text.trim().is_empty() => {
            MasterKey::from_base64(text, NEW_MASTER_KEY_ENV)
        }
        _ => {
            return Err(format!(
                "no new master key: give it with --new-key-file FILE or {NEW_MASTER_KEY_ENV} \
                 (create one with `airlock keygen`)"
            ));
        }
    };
    key.map_err(|e: KeyError| e.to_string())
}

async fn open_store(store_args: &StoreArgs) -> Result<SecretStore, u8> {
    let config = store_args.database.config().map_err(|e| store_fail(&e))?;
    store::config::open(&store_args.data_dir, &config)
        .await
        .map_err(|e| store_fail(&e))
}

/// The whole of stdin, with one trailing newline (`\n` or `\r\n`) removed.
fn read_value_from_stdin() -> Result<Zeroizing<String>, String> {
    let mut stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprintln!("reading the value from stdin (end it with Ctrl-D)…");
    }
    let mut bytes = Zeroizing::new(Vec::new());
    stdin
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read the value from stdin: {e}"))?;
    strip_one_newline(&mut bytes);
    let text = std::str::from_utf8(&bytes).map_err(|_| "the value is not UTF-8 text".to_owned())?;
    Ok(Zeroizing::new(text.to_owned()))
}

fn strip_one_newline(bytes: &mut Vec<u8>) {
    if bytes.ends_with(b"\r\n") {
        bytes.truncate(bytes.len() - 2);
    } else if bytes.ends_with(b"\n") {
        bytes.truncate(bytes.len() - 1);
    }
}

/// Unix seconds as the API writes times (RFC 3339, milliseconds).
pub(super) fn rfc3339(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}

/// Unix seconds as `YYYY-MM-DDTHH:MM:SSZ` (UTC).
fn format_unix(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn store_fail(e: &StoreError) -> u8 {
    let code = if e.is_usage() {
        exit::USAGE
    } else {
        exit::INTERNAL
    };
    fail(code, &e.to_string())
}

fn fail(code: u8, message: &str) -> u8 {
    eprintln!("error: {message}");
    code
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_trailing_newline_is_stripped() {
        for (input, want) in [
            (&b"abc\n"[..], &b"abc"[..]),
            (b"abc\r\n", b"abc"),
            (b"abc\n\n", b"abc\n"),
            (b"abc", b"abc"),
            (b"line1\nline2\n", b"line1\nline2"),
        ] {
            let mut v = input.to_vec();
            strip_one_newline(&mut v);
            assert_eq!(v, want, "{input:?}");
        }
    }

    #[test]
    fn unix_times_format_as_utc() {
        assert_eq!(format_unix(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_unix(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(format_unix(1_767_225_599), "2025-12-31T23:59:59Z");
    }
}
