//! `airlock run`: run a step component once on this machine.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::time::Duration;

use airlock_host_api::secrets::{RunSecrets, SecretGrants};
use clap::Args;
use zeroize::Zeroizing;

use crate::cli::exit;
use crate::engine::{Engine, EngineConfig, RunFailure, RunLimits, RunOptions, StepError};
use std::sync::Arc;

use airlock_host_api::http::egress::parse_range;
use airlock_host_api::http::pipeline::{AccountSource, NoAccounts, Pipeline};

use crate::manifest::Manifest;
use crate::outbound::{self, OutboundConfig, StoredAccounts};
use crate::store::{self, MasterKey, SecretStore};

#[derive(Debug, Args)]
#[command(
    after_help = "The step's JSON output goes to stdout; its log lines go to stderr, \
                        each prefixed with its level or stream.\n\
                        Exit status: 0 success, 1 the step returned an error, 2 bad usage, \
                        input that is not JSON or an invalid component, 3 a limit stopped \
                        the step (wall time, CPU, memory, output, trap), 4 internal error."
)]
pub struct RunArgs {
    /// The step: a WebAssembly component built for `wasm32-wasip2`.
    component: PathBuf,
    /// The input, as JSON text. Without it and `--input-file`, stdin is read.
    #[arg(long, conflicts_with = "input_file")]
    input: Option<String>,
    /// Read the input JSON from this file.
    #[arg(long, value_name = "FILE")]
    input_file: Option<PathBuf>,
    /// The step's manifest (`airlock.toml`): its name, secret grants and limits.
    /// Without one, nothing is granted.
    #[arg(long, value_name = "FILE")]
    manifest: Option<PathBuf>,
    /// A secret value for this run only, not stored (repeatable). The step
    /// still needs the manifest's grant to use it.
    #[arg(long = "secret", value_name = "NAME=VALUE")]
    secrets: Vec<String>,
    /// Data directory of the local secret store, read for granted secrets
    /// not given with --secret (needs the master key).
    #[arg(long, value_name = "DIR", env = store::DATA_DIR_ENV, default_value = store::DEFAULT_DATA_DIR)]
    data_dir: PathBuf,
    /// File holding the master key as base64 (else AIRLOCK_MASTER_KEY).
    #[arg(long, value_name = "FILE", env = store::crypto::MASTER_KEY_FILE_ENV)]
    master_key_file: Option<PathBuf>,
    /// Project whose stored secrets and accounts the run reads.
    #[arg(long, value_name = "NAME", default_value = "local")]
    project: String,
    /// The end user the step runs for: their connected accounts become usable.
    #[arg(long, value_name = "ID")]
    external_user: Option<String>,
    /// Allow outbound requests to this address range despite its class
    /// (e.g. 127.0.0.0/8 for a local test server). Repeatable.
    #[arg(
        long = "allow-range",
        value_name = "CIDR",
        env = "AIRLOCK_ALLOW_RANGES",
        value_delimiter = ','
    )]
    allow_ranges: Vec<String>,
    /// A directory of extra app definitions (`<slug>.toml`), over the built-in catalog.
    #[arg(long, value_name = "DIR", env = "AIRLOCK_APPS_DIR")]
    apps_dir: Option<PathBuf>,
    /// Wall-clock limit for the run, in milliseconds [default: manifest, else 30000].
    #[arg(long, value_name = "MS", value_parser = clap::value_parser!(u64).range(1..))]
    timeout_ms: Option<u64>,
    /// CPU-time limit for the run, in milliseconds of guest execution [default: manifest, else 10000].
    #[arg(long, value_name = "MS", value_parser = clap::value_parser!(u64).range(1..))]
    cpu_ms: Option<u64>,
    /// Memory limit for the run (all memories and tables), in MiB [default: manifest, else 128].
    #[arg(long, value_name = "MIB", value_parser = clap::value_parser!(u64).range(1..=4096))]
    memory_mib: Option<u64>,
    /// Where compiled artifacts are cached (default: $XDG_CACHE_HOME/airlock or ~/.cache/airlock).
    #[arg(long, value_name = "DIR", env = "AIRLOCK_CACHE_DIR")]
    cache_dir: Option<PathBuf>,
    /// Do not read or write the compile cache.
    #[arg(long)]
    no_cache: bool,
}

pub async fn run(args: RunArgs) -> u8 {
    let input = match read_input(&args) {
        Ok(i) => i,
        Err(msg) => return fail(exit::USAGE, &msg),
    };
    if let Err(e) = serde_json::from_str::<serde::de::IgnoredAny>(&input) {
        return fail(exit::USAGE, &format!("the input is not valid JSON: {e}"));
    }
    let manifest = match &args.manifest {
        Some(path) => match Manifest::from_file(path) {
            Ok(m) => Some(m),
            Err(e) => return fail(exit::USAGE, &e.to_string()),
        },
        None => None,
    };
    let grants = manifest.as_ref().map(Manifest::grants).unwrap_or_default();
    let secrets = match run_secrets(&args, grants).await {
        Ok(s) => s,
        Err((code, msg)) => return fail(code, &msg),
    };
    let mut limits = RunLimits::default();
    if let Some(m) = &manifest {
        limits = m.limits_over(limits);
    }
    if let Some(ms) = args.timeout_ms {
        limits.wall_time = Duration::from_millis(ms);
    }
    if let Some(ms) = args.cpu_ms {
        limits.cpu_time = Duration::from_millis(ms);
    }
    if let Some(mib) = args.memory_mib {
        limits.memory_bytes = mib * 1024 * 1024;
    }

    let bytes = match std::fs::read(&args.component) {
        Ok(b) => b,
        Err(e) => {
            return fail(
                exit::USAGE,
                &format!("cannot read component {}: {e}", args.component.display()),
            );
        }
    };

    let config = EngineConfig {
        max_concurrent_runs: 1,
        // The pool's ceiling stays at least the default, so a small limit is
        // enforced by the run's limiter (a clear `memory` error) and the
        // engine's configuration, and so its cached artifacts, stay the same.
        max_memory_bytes: limits
            .memory_bytes
            .max(EngineConfig::default().max_memory_bytes),
        cache_dir: if args.no_cache {
            None
        } else {
            args.cache_dir.clone().or_else(super::default_cache_dir)
        },
        ..EngineConfig::default()
    };
    // The HTTP client (and the platform's TLS roots it loads) only for a
    // step that may use it: most of a cached run's start-up otherwise.
    let grants_http = manifest.as_ref().is_some_and(|m| m.http.grants_any());
    let engine = if grants_http {
        match outbound_pipeline(&args, manifest.as_ref()).await {
            Ok(pipeline) => Engine::with_http(config, pipeline),
            Err((code, msg)) => return fail(code, &msg),
        }
    } else {
        Engine::new(config)
    };
    let engine = match engine {
        Ok(e) => e,
        Err(e) => return fail(exit::INTERNAL, &e.to_string()),
    };
    let step = match engine.load(bytes).await {
        Ok(s) => s,
        Err(e) => {
            return fail(exit::USAGE, &format!("{}: {e}", args.component.display()));
        }
    };
    let name = match &manifest {
        Some(m) => m.name.clone(),
        None => args
            .component
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "step".into()),
    };
    let mut options = RunOptions::local(&name);
    options.context.project = args.project.clone();
    options.limits = Some(limits);
    options.secrets = secrets;
    options.context.external_user_id = args.external_user.clone();
    if let Some(m) = &manifest {
        options.http_grants = m.http_grants();
    }

    let report = engine.run(&step, &input, options).await;
    let mut stderr = std::io::stderr().lock();
    for line in &report.logs {
        let _ = writeln!(
            stderr,
            "[{}] {}",
            line.source,
            crate::cli::output::escape(&line.text)
        );
    }
    drop(stderr);
    match report.outcome {
        Ok(output) => {
            println!("{output}");
            exit::OK
        }
        Err(failure) => {
            let code = match &failure {
                RunFailure::StepError(_) | RunFailure::InvalidOutput(_) => exit::STEP_ERROR,
                RunFailure::Limit { .. } => exit::LIMIT,
                // A local run has no cancel flag; kept for completeness.
                RunFailure::Internal(_) | RunFailure::Cancelled => exit::INTERNAL,
            };
            if let RunFailure::StepError(StepError {
                details: Some(details),
                ..
            }) = &failure
            {
                eprintln!("error: {failure}\ndetails: {details}");
                return code;
            }
            fail(code, &failure.to_string())
        }
    }
}

/// The run's secrets: `--secret` values first, then the local store for
/// granted names still missing. Values for names the manifest does not
/// grant are never loaded.
async fn run_secrets(args: &RunArgs, grants: SecretGrants) -> Result<RunSecrets, (u8, String)> {
    let usage = |m: String| (exit::USAGE, m);
    let mut values: Vec<(String, Zeroizing<String>)> = Vec::new();
    for pair in &args.secrets {
        let Some((name, value)) = pair.split_once('=') else {
            return Err(usage(format!(
                "--secret expects NAME=VALUE; got an argument without `=` (starting {:?})",
                pair.chars().take(3).collect::<String>()
            )));
        };
        store::validate_secret_name(name).map_err(|e| usage(e.to_string()))?;
        if !grants.allows(name) {
            eprintln!(
                "warning: --secret {name} is not granted by the step's manifest (`secrets = [...]`); \
                 the step cannot use it"
            );
        }
        if value.len() < airlock_host_api::redact::MIN_MASKED_LEN {
            eprintln!(
                "warning: --secret {name} is shorter than {} bytes and will not be masked in logs",
                airlock_host_api::redact::MIN_MASKED_LEN
            );
        }
        values.push((name.to_string(), Zeroizing::new(value.to_string())));
    }
    let missing: Vec<String> = grants
        .names
        .iter()
        .filter(|n| !values.iter().any(|(v, _)| v == *n))
        .cloned()
        .collect();
    let db = args.data_dir.join(store::DB_FILE);
    if !missing.is_empty() && db.exists() {
        match MasterKey::from_env_or_file(args.master_key_file.as_deref()) {
            Ok(key) => {
                let store = SecretStore::open(&args.data_dir)
                    .await
                    .map_err(|e| (exit::INTERNAL, e.to_string()))?;
                let loaded = store::load_granted(&store, &key, &args.project, &missing)
                    .await
                    .map_err(|e| {
                        let code = if e.is_usage() {
                            exit::USAGE
                        } else {
                            exit::INTERNAL
                        };
                        (code, e.to_string())
                    })?;
                store.close().await;
                values.extend(loaded);
            }
            Err(e) => eprintln!(
                "warning: the store at {} was not read for granted secrets ({}): {e}",
                db.display(),
                missing.join(", ")
            ),
        }
    }
    Ok(RunSecrets::new(grants, values))
}

/// The outbound pipeline for this run: the operator's ranges and apps, and
/// accounts from the store when an external user is named and a master key
/// is available.
async fn outbound_pipeline(
    args: &RunArgs,
    manifest: Option<&Manifest>,
) -> Result<Arc<Pipeline>, (u8, String)> {
    let usage = |m: String| (exit::USAGE, m);
    let mut allow_ranges = Vec::new();
    for r in &args.allow_ranges {
        allow_ranges.push(parse_range(r).map_err(|e| usage(format!("--allow-range {r}: {e}")))?);
    }
    let config = OutboundConfig {
        allow_ranges,
        apps_dir: args.apps_dir.clone(),
        ..OutboundConfig::default()
    };
    let catalog = Arc::new(
        outbound::load_catalog(config.apps_dir.as_deref()).map_err(|e| usage(e.to_string()))?,
    );
    if let Some(m) = manifest {
        for app in &m.http.apps {
            if catalog.get(app).is_none() {
                return Err(usage(format!(
                    "the manifest grants app {app:?}, which is not in the app catalog"
                )));
            }
        }
    }
    let (policy, client) =
        outbound::policy_and_client(&config).map_err(|e| (exit::INTERNAL, e.to_string()))?;
    let db = args.data_dir.join(store::DB_FILE);
    let accounts: Arc<dyn AccountSource> = match (&args.external_user, db.exists()) {
        (Some(_), true) => match MasterKey::from_env_or_file(args.master_key_file.as_deref()) {
            Ok(key) => {
                let store = SecretStore::open(&args.data_dir)
                    .await
                    .map_err(|e| (exit::INTERNAL, e.to_string()))?;
                Arc::new(StoredAccounts::new(
                    store,
                    Arc::new(key),
                    client.clone(),
                    policy.clone(),
                ))
            }
            Err(e) => {
                eprintln!("warning: connected accounts are unavailable to this run: {e}");
                Arc::new(NoAccounts)
            }
        },
        _ => Arc::new(NoAccounts),
    };
    Ok(outbound::pipeline(
        &config, policy, client, catalog, accounts,
    ))
}

fn read_input(args: &RunArgs) -> Result<String, String> {
    if let Some(input) = &args.input {
        return Ok(input.clone());
    }
    if let Some(path) = &args.input_file {
        return std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read input file {}: {e}", path.display()));
    }
    let mut s = String::new();
    std::io::stdin()
        .read_to_string(&mut s)
        .map_err(|e| format!("cannot read the input from stdin: {e}"))?;
    Ok(s)
}

fn fail(code: u8, message: &str) -> u8 {
    eprintln!("error: {message}");
    code
}
