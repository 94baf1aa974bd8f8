//! `airlock accounts …`: end users' connected accounts in the local store.
//! Credentials are encrypted like secrets and never printed.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use clap::{Args, Subcommand};
use zeroize::Zeroizing;

use crate::cli::exit;
use crate::cli::output::print_json;
use crate::cli::remote::{OutputArgs, ServerArgs};
use crate::cli::secrets::rfc3339;
use crate::outbound::load_catalog;
use crate::store::accounts::{AccountFilter, AccountStore, NewAccount};
use crate::store::{self, DATA_DIR_ENV, DEFAULT_DATA_DIR, MasterKey};

#[derive(Debug, Args)]
#[command(
    after_help = "Credentials are encrypted with AES-256-GCM under the master key \
                        (AIRLOCK_MASTER_KEY or --master-key-file) and never printed. \
                        Flags on a command line show in `ps`; on shared machines pass them \
                        through a wrapper that reads a file.\n\
                        Exit status: 0 success, 2 bad usage (unknown app, missing credential \
                        for the app's auth kind, bad field, missing key, no such account), \
                        4 a storage failure."
)]
pub struct AccountsArgs {
    /// Data directory; the store is `<DIR>/airlock.db`.
    #[arg(long, global = true, value_name = "DIR", env = DATA_DIR_ENV, default_value = DEFAULT_DATA_DIR)]
    data_dir: PathBuf,
    /// File holding the master key as base64 (else AIRLOCK_MASTER_KEY).
    #[arg(long, global = true, value_name = "FILE", env = store::crypto::MASTER_KEY_FILE_ENV)]
    master_key_file: Option<PathBuf>,
    /// A directory of extra app definitions, over the built-in catalog.
    #[arg(long, global = true, value_name = "DIR", env = "AIRLOCK_APPS_DIR")]
    apps_dir: Option<PathBuf>,
    #[command(flatten)]
    database: store::config::DatabaseArgs,
    /// The project the accounts belong to [default: AIRLOCK_PROJECT, else
    /// `local` for the local store].
    #[arg(
        long,
        short,
        global = true,
        value_name = "NAME",
        env = "AIRLOCK_PROJECT"
    )]
    project: Option<String>,
    /// Work on this server's accounts through the API instead of the local
    /// store (scopes `accounts:read`, `accounts:write`).
    #[arg(long, global = true, value_name = "URL", env = "AIRLOCK_SERVER")]
    server: Option<String>,
    /// The Airlock API key for --server (prefer AIRLOCK_API_KEY; `--api-key`
    /// here is an app's credential).
    #[arg(
        long,
        global = true,
        value_name = "KEY",
        env = "AIRLOCK_API_KEY",
        hide_env_values = true
    )]
    server_key: Option<String>,
    #[command(flatten)]
    output: OutputArgs,
    #[command(subcommand)]
    command: AccountsCommand,
}

#[derive(Debug, Subcommand)]
pub(super) enum AccountsCommand {
    /// Connect an account of APP for an external user; prints its id.
    Add(Box<AddArgs>),
    /// List accounts (never credentials).
    List {
        #[arg(long, value_name = "SLUG")]
        app: Option<String>,
        #[arg(long, value_name = "ID")]
        external_user: Option<String>,
    },
    /// Delete an account.
    Rm {
        /// The account id (`acc_…`).
        #[arg(allow_hyphen_values = true)]
        id: String,
    },
}

#[derive(Debug, Args)]
pub(super) struct AddArgs {
    /// The app's slug (see the catalog: host-api/apps/).
    #[arg(long, value_name = "SLUG")]
    pub(super) app: String,
    /// The end user this account belongs to (up to 250 characters).
    #[arg(long, value_name = "ID")]
    pub(super) external_user: String,
    /// api-key apps: the key.
    #[arg(long, value_name = "KEY")]
    pub(super) api_key: Option<String>,
    /// bearer apps: the token.
    #[arg(long, value_name = "TOKEN")]
    pub(super) bearer: Option<String>,
    /// basic apps: the username.
    #[arg(long, value_name = "NAME", requires = "password")]
    pub(super) username: Option<String>,
    /// basic apps: the password.
    #[arg(long, value_name = "PASSWORD", requires = "username")]
    pub(super) password: Option<String>,
    /// oauth2 (and custom) apps: the access token.
    #[arg(long, value_name = "TOKEN")]
    pub(super) access_token: Option<String>,
    /// oauth2 apps: the refresh token, so the host can refresh.
    #[arg(long, value_name = "TOKEN")]
    pub(super) refresh_token: Option<String>,
    /// oauth2 apps: seconds until the access token expires.
    #[arg(long, value_name = "SECONDS", allow_negative_numbers = true)]
    pub(super) expires_in: Option<i64>,
    /// Another credential field (custom apps), NAME=VALUE. Repeatable.
    #[arg(long = "credential", value_name = "NAME=VALUE")]
    pub(super) credentials: Vec<String>,
    /// A custom field of the app (e.g. subdomain=acme), NAME=VALUE. Repeatable.
    #[arg(long = "field", value_name = "NAME=VALUE")]
    pub(super) fields: Vec<String>,
}

pub async fn run(args: AccountsArgs) -> u8 {
    let server = ServerArgs {
        server: args.server.clone(),
        api_key: args.server_key.clone(),
    };
    if server.given().is_some() {
        return super::accounts_remote::run(
            &server,
            args.project.as_deref(),
            args.output,
            args.command,
        )
        .await;
    }
    match execute(args).await {
        Ok(()) => exit::OK,
        Err((code, msg)) => {
            eprintln!("error: {msg}");
            code
        }
    }
}

pub(super) type CliResult<T> = Result<T, (u8, String)>;

fn usage(msg: impl Into<String>) -> (u8, String) {
    (exit::USAGE, msg.into())
}

fn store_err(e: store::StoreError) -> (u8, String) {
    let code = if e.is_usage() {
        exit::USAGE
    } else {
        exit::INTERNAL
    };
    (code, e.to_string())
}

async fn execute(args: AccountsArgs) -> CliResult<()> {
    let project = args.project.as_deref().unwrap_or("local").to_owned();
    let config = args.database.config().map_err(store_err)?;
    let secrets = store::config::open(&args.data_dir, &config)
        .await
        .map_err(store_err)?;
    let accounts = AccountStore::new(&secrets);
    match args.command {
        AccountsCommand::Add(add) => {
            let key = MasterKey::from_env_or_file(args.master_key_file.as_deref())
                .map_err(|e| usage(e.to_string()))?;
            let catalog =
                load_catalog(args.apps_dir.as_deref()).map_err(|e| usage(e.to_string()))?;
            let app = catalog
                .get(&add.app)
                .ok_or_else(|| usage(format!("unknown app {:?}; see the app catalog", add.app)))?;
            let fields = pairs("--field", &add.fields)?;
            app.validate_custom_fields(&fields)
                .map_err(|e| usage(e.to_string()))?;
            let creds = credential_map(&add)?;
            if let Err(e) = app.check_credential_names(creds.keys().map(String::as_str)) {
                if !e.unknown.is_empty() {
                    return Err(usage(e.to_string()));
                }
                return Err(usage(format!(
                    "app {} ({} auth) needs the credential field(s) {}; pass them with {}",
                    app.slug,
                    app.auth.as_str(),
                    e.missing.join(", "),
                    e.missing
                        .iter()
                        .map(|s| flag_for(s))
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
            let expires_at = add.expires_in.map(|s| now() + s);
            let account = accounts
                .create(
                    &key,
                    NewAccount {
                        project: project.clone(),
                        external_user_id: add.external_user.clone(),
                        app: app.slug.clone(),
                        credentials: creds,
                        custom_fields: fields,
                        expires_at,
                    },
                )
                .await
                .map_err(store_err)?;
            if args.output.json {
                print_json(&local_json(&account.meta)).map_err(|f| (f.code, f.message))?;
            } else {
                println!("{}", account.id());
            }
            eprintln!(
                "connected {} account {} for external user {:?} in project {}",
                app.slug,
                account.id(),
                add.external_user,
                project
            );
        }
        AccountsCommand::List { app, external_user } => {
            let list = accounts
                .list(
                    &project,
                    &AccountFilter {
                        app,
                        external_user_id: external_user,
                    },
                )
                .await
                .map_err(store_err)?;
            if args.output.json {
                let views: Vec<serde_json::Value> = list.iter().map(local_json).collect();
                print_json(&serde_json::json!({ "accounts": views }))
                    .map_err(|f| (f.code, f.message))?;
            }
            for a in list.iter().filter(|_| !args.output.json) {
                let fields: Vec<String> = a
                    .custom_fields
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect();
                println!(
                    "{}\t{}\t{}\t{}\t{}",
                    a.id,
                    a.app,
                    a.external_user_id,
                    a.status,
                    fields.join(",")
                );
            }
        }
        AccountsCommand::Rm { id } => {
            if !accounts.delete(&project, &id).await.map_err(store_err)? {
                return Err(usage(format!("no account {id} in project {project}")));
            }
            if args.output.json {
                print_json(&serde_json::json!({ "deleted": id }))
                    .map_err(|f| (f.code, f.message))?;
            }
        }
    }
    secrets.close().await;
    Ok(())
}

/// An account of the local store as the API shows it (`--json`).
fn local_json(a: &crate::store::accounts::AccountMeta) -> serde_json::Value {
    let health = match a.status {
        crate::store::accounts::AccountStatus::Healthy => "healthy",
        crate::store::accounts::AccountStatus::NeedsReauth => "needs_reauth",
    };
    let mut v = serde_json::json!({
        "id": a.id,
        "app": a.app,
        "external_user_id": a.external_user_id,
        "custom_fields": a.custom_fields,
        "health": health,
        "created_at": rfc3339(a.created_at),
        "updated_at": rfc3339(a.updated_at),
    });
    if let Some(at) = a.expires_at {
        v["expires_at"] = rfc3339(at).into();
    }
    v
}

/// The credential fields the flags of `add` give, by the names apps use.
pub(super) fn credential_map(add: &AddArgs) -> CliResult<BTreeMap<String, Zeroizing<String>>> {
    let mut creds: BTreeMap<String, Zeroizing<String>> = BTreeMap::new();
    let mut put = |name: &str, value: &Option<String>| {
        if let Some(v) = value {
            creds.insert(name.to_string(), Zeroizing::new(v.clone()));
        }
    };
    put("api_key", &add.api_key);
    put("token", &add.bearer);
    put("username", &add.username);
    put("password", &add.password);
    put("access_token", &add.access_token);
    put("refresh_token", &add.refresh_token);
    for (name, value) in pairs("--credential", &add.credentials)? {
        creds.insert(name, Zeroizing::new(value));
    }
    Ok(creds)
}

fn flag_for(field: &str) -> String {
    match field {
        "api_key" => "--api-key".into(),
        "token" => "--bearer".into(),
        "username" => "--username".into(),
        "password" => "--password".into(),
        "access_token" => "--access-token".into(),
        "refresh_token" => "--refresh-token".into(),
        other => format!("--credential {other}=..."),
    }
}

pub(super) fn pairs(flag: &str, items: &[String]) -> CliResult<BTreeMap<String, String>> {
    items
        .iter()
        .map(|item| {
            item.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .ok_or_else(|| usage(format!("{flag} expects NAME=VALUE")))
        })
        .collect()
}

pub(super) fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
