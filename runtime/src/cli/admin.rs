//! `airlock admin …`: bootstrap platform credentials without a running server
//! (SQLite in WAL mode also lets this run while `airlock serve` does).

use std::path::PathBuf;

use clap::{Args, Subcommand};

use crate::cli::exit;
use crate::store::{DATA_DIR_ENV, DEFAULT_DATA_DIR, PlatformStore};

#[derive(Debug, Args)]
pub struct AdminArgs {
    #[command(subcommand)]
    command: AdminCommand,
}

#[derive(Debug, Subcommand)]
enum AdminCommand {
    /// Create an API key and print only the key on stdout (shown once; stored hashed).
    CreateKey(CreateKeyArgs),
}

#[derive(Debug, Args)]
struct CreateKeyArgs {
    /// Data directory; the database is `<DIR>/airlock.db`.
    #[arg(long, value_name = "DIR", env = DATA_DIR_ENV, default_value = DEFAULT_DATA_DIR)]
    data_dir: PathBuf,
    /// A scope of the key (repeatable) [default: admin].
    #[arg(long = "scope", value_name = "SCOPE")]
    scopes: Vec<String>,
    /// Restrict the key to this project (created if missing).
    #[arg(long, value_name = "PROJECT")]
    project: Option<String>,
    /// A label for the key.
    #[arg(long, default_value = "bootstrap")]
    name: String,
    #[command(flatten)]
    database: crate::store::config::DatabaseArgs,
}

/// `airlock admin …`.
pub async fn run(args: AdminArgs) -> u8 {
    match args.command {
        AdminCommand::CreateKey(a) => create_key(a).await,
    }
}

async fn create_key(args: CreateKeyArgs) -> u8 {
    let scopes = if args.scopes.is_empty() {
        vec!["admin".to_owned()]
    } else {
        args.scopes
    };
    let database = match args.database.config() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::USAGE;
        }
    };
    let fresh = !database.is_postgres() && !args.data_dir.join(crate::store::DB_FILE).exists();
    let store = match crate::store::config::open(&args.data_dir, &database).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return if e.is_usage() {
                exit::USAGE
            } else {
                exit::INTERNAL
            };
        }
    };
    if fresh {
        // A key in a new, empty store is useless to a server that serves
        // another directory: say which one this is.
        let shown = std::fs::canonicalize(&args.data_dir).unwrap_or(args.data_dir.clone());
        eprintln!(
            "created a new data directory at {} (`airlock serve` must use the same: \
             --data-dir or AIRLOCK_DATA)",
            shown.display()
        );
    }
    let platform = PlatformStore::new(&store);
    let result = async {
        if let Some(p) = &args.project {
            platform.create_project(p).await?;
        }
        platform
            .create_api_key(&args.name, &scopes, args.project.as_deref(), None)
            .await
    }
    .await;
    store.close().await;
    match result {
        Ok((meta, key)) => {
            eprintln!("created API key {} (shown once; store it now)", meta.id);
            println!("{}", key.as_str());
            exit::OK
        }
        Err(e) => {
            let code = if e.is_usage() {
                exit::USAGE
            } else {
                exit::INTERNAL
            };
            eprintln!("error: {e}");
            code
        }
    }
}
