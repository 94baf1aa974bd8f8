//! `airlock serve` settings: flags > environment > `--config` TOML file >
//! defaults.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use airlock_host_api::http::egress::parse_range;
use airlock_host_api::http::pipeline::HttpConfig;
use airlock_host_api::http::ratelimit::Quota;
use clap::{Args, ValueEnum};
use serde::Deserialize;

use crate::outbound::OutboundConfig;
use crate::service::ServiceConfig;
use crate::service::admission::AdmissionConfig;
use crate::store::config::{DatabaseArgs, DatabaseConfig};
use crate::store::{DATA_DIR_ENV, DEFAULT_DATA_DIR};

/// The listen address when none is configured.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// Lifetime of OAuth access tokens when none is configured, in seconds.
pub const DEFAULT_TOKEN_TTL_SECS: u64 = 3600;
/// Timeout of an outbound request that sets none, in seconds.
pub const DEFAULT_HTTP_TIMEOUT_SECS: u64 = 30;
/// The most `http_timeout_secs` may be (the pipeline's own ceiling).
pub const MAX_HTTP_TIMEOUT_SECS: u64 = 300;

/// How long a run request waits for a slot when none is configured.
pub const DEFAULT_MAX_QUEUE_WAIT_MS: u64 = 5000;
/// Memory for loaded steps when none is configured, in MiB.
pub const DEFAULT_LOADED_STEPS_MIB: u64 = 1024;

/// Seconds between two retention sweeps when none is configured.
pub const DEFAULT_RETENTION_INTERVAL_SECS: u64 = 3600;

/// How the server writes its logs on stderr.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// Flags of `airlock serve`.
#[derive(Debug, Clone, Args, Default)]
pub struct ServeArgs {
    /// Data directory; the database is `<DIR>/airlock.db`. [default: ./airlock-data]
    #[arg(long, value_name = "DIR", env = DATA_DIR_ENV)]
    pub data_dir: Option<PathBuf>,
    /// Address to listen on; port 0 picks a free port. [default: 127.0.0.1:8080]
    #[arg(long, value_name = "ADDR", env = "AIRLOCK_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// File holding the master key as base64 (takes precedence over AIRLOCK_MASTER_KEY).
    #[arg(long, value_name = "FILE", env = crate::store::crypto::MASTER_KEY_FILE_ENV)]
    pub master_key_file: Option<PathBuf>,
    /// Lifetime of OAuth access tokens, in seconds. [default: 3600]
    #[arg(long, value_name = "SECS", env = "AIRLOCK_TOKEN_TTL_SECS")]
    pub token_ttl_secs: Option<u64>,
    /// Allow outbound requests (steps' HTTP and the proxy) to this address
    /// range despite its class, e.g. 10.0.0.0/8 for an internal API. Repeatable.
    #[arg(
        long = "allow-range",
        value_name = "CIDR",
        env = "AIRLOCK_ALLOW_RANGES",
        value_delimiter = ','
    )]
    pub allow_ranges: Vec<String>,
    /// Directory of extra app definitions (`<slug>.toml`), added to the built-in catalog.
    #[arg(long, value_name = "DIR", env = "AIRLOCK_APPS_DIR")]
    pub apps_dir: Option<PathBuf>,
    /// Timeout of an outbound request that sets none (steps and the proxy), in seconds. [default: 30]
    #[arg(long, value_name = "SECS", env = "AIRLOCK_HTTP_TIMEOUT_SECS")]
    pub http_timeout_secs: Option<u64>,
    /// Outbound requests a project may make per 5 minutes (steps and the proxy). [default: 1000]
    #[arg(long, value_name = "N", env = "AIRLOCK_HTTP_RATE_LIMIT")]
    pub http_rate_limit: Option<u32>,
    /// Log format on stderr: `text` or `json` (one object per line). [default: text]
    #[arg(long, value_name = "FORMAT", env = "AIRLOCK_LOG_FORMAT")]
    pub log_format: Option<LogFormat>,
    /// Delete run records older than this many days (hourly, and at start).
    /// [default: keep forever]
    #[arg(long, value_name = "DAYS", env = "AIRLOCK_RETENTION_DAYS")]
    pub retention_days: Option<u32>,
    /// Seconds between retention sweeps (for tests). [default: 3600]
    #[arg(long, value_name = "SECS", hide = true)]
    pub retention_interval_secs: Option<u64>,
    /// Lease of a claimed queued run, in milliseconds (for tests). [default: 30000]
    #[arg(long, value_name = "MS", hide = true)]
    pub run_lease_ms: Option<u64>,
    /// Requests per minute each HTTP trigger (`/t/{id}`) accepts; more get 429.
    /// [default: 600]
    #[arg(long, value_name = "N", env = "AIRLOCK_TRIGGER_RATE_LIMIT")]
    pub trigger_rate_limit: Option<u32>,
    /// TOML file with the same settings (`data_dir`, `listen`, `master_key_file`,
    /// `token_ttl_secs`, `allow_ranges`, `apps_dir`, `http_timeout_secs`,
    /// `http_rate_limit`, `log_format`, `retention_days`, `trigger_rate_limit`,
    /// `database_url`, `database_max_connections`, `database_statement_timeout_ms`,
    /// `public_url`, …);
    /// flags and environment take precedence.
    #[arg(long, value_name = "FILE", env = "AIRLOCK_CONFIG")]
    pub config: Option<PathBuf>,
    /// Runs executing at once on this node. [default: 8 per core, at most
    /// one per 256 MiB of memory]
    #[arg(long, value_name = "N", env = "AIRLOCK_MAX_CONCURRENT_RUNS")]
    pub max_concurrent_runs: Option<usize>,
    /// Runs of one project executing at once on this node. [default: half of
    /// --max-concurrent-runs]
    #[arg(long, value_name = "N", env = "AIRLOCK_MAX_PROJECT_RUNS")]
    pub max_project_runs: Option<usize>,
    /// Longest a run request waits for a slot before it gets 503, in
    /// milliseconds. [default: 5000]
    #[arg(long, value_name = "MS", env = "AIRLOCK_MAX_QUEUE_WAIT_MS")]
    pub max_queue_wait_ms: Option<u64>,
    /// Memory for compiled steps kept loaded, in MiB; the least recently
    /// used are unloaded beyond it. [default: 1024]
    #[arg(long, value_name = "MIB", env = "AIRLOCK_LOADED_STEPS_MIB")]
    pub loaded_steps_mib: Option<u64>,
    /// The server's public URL (`https://airlock.example.com`): Connect
    /// links and the OAuth redirect URI (`{URL}/connect/oauth/callback`)
    /// are built from it, never from a request's Host header. [default:
    /// http://<listen address>]
    #[arg(long, value_name = "URL", env = "AIRLOCK_PUBLIC_URL")]
    pub public_url: Option<String>,
    #[command(flatten)]
    pub database: DatabaseArgs,
}

/// The `--config` file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    data_dir: Option<PathBuf>,
    listen: Option<SocketAddr>,
    master_key_file: Option<PathBuf>,
    token_ttl_secs: Option<u64>,
    allow_ranges: Option<Vec<String>>,
    apps_dir: Option<PathBuf>,
    http_timeout_secs: Option<u64>,
    http_rate_limit: Option<u32>,
    log_format: Option<LogFormat>,
    retention_days: Option<u32>,
    trigger_rate_limit: Option<u32>,
    database_url: Option<String>,
    database_max_connections: Option<u32>,
    database_statement_timeout_ms: Option<u64>,
    sqlite_synchronous: Option<crate::store::sqlite::Durability>,
    max_concurrent_runs: Option<usize>,
    max_project_runs: Option<usize>,
    max_queue_wait_ms: Option<u64>,
    loaded_steps_mib: Option<u64>,
    public_url: Option<String>,
}

/// Resolved settings.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    pub master_key_file: Option<PathBuf>,
    pub token_ttl_secs: u64,
    /// Outbound HTTP: allowed ranges, extra apps, default timeout, quota.
    pub outbound: OutboundConfig,
    pub log_format: LogFormat,
    /// Run records older than this many days are deleted; `None` keeps them.
    pub retention_days: Option<u32>,
    pub retention_interval_secs: u64,
    /// How long a claimed queued run is a node's without renewal.
    pub run_lease: std::time::Duration,
    /// Requests per minute per trigger.
    pub trigger_rate_limit: u32,
    /// PostgreSQL, or SQLite in `data_dir`.
    pub database: DatabaseConfig,
    /// Admission and the loaded-step budget of the run service.
    pub service: ServiceConfig,
    /// Where Connect's links and OAuth callback live; `None`: the listen address.
    pub public_url: Option<url::Url>,
}

/// Why the settings could not be resolved.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the config file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid config file {}: {source}", path.display())]
    Parse {
        path: PathBuf,
        #[source]
        source: toml::de::Error,
    },
    #[error("token_ttl_secs must be at least 1")]
    ZeroTtl,
    #[error("allow_ranges: {0}")]
    Range(String),
    #[error("http_timeout_secs must be 1 to {max}", max = MAX_HTTP_TIMEOUT_SECS)]
    HttpTimeout,
    #[error("http_rate_limit must be at least 1")]
    ZeroRateLimit,
    #[error("retention_days must be at least 1 (leave it unset to keep runs forever)")]
    ZeroRetention,
    #[error("the retention interval must be at least 1 second")]
    ZeroRetentionInterval,
    #[error("trigger_rate_limit must be at least 1 request per minute")]
    ZeroTriggerRateLimit,
    #[error(transparent)]
    Database(#[from] crate::store::StoreError),
    #[error("{0} must be at least 1")]
    Zero(&'static str),
    #[error("public_url: {0}")]
    PublicUrl(String),
}

impl ServeArgs {
    /// The log format, read before the settings are resolved (logging starts
    /// first): flag or environment, else the config file's, else text. A
    /// config file that cannot be read is reported by [`ServeConfig::resolve`].
    pub fn log_format_hint(&self) -> LogFormat {
        self.log_format
            .or_else(|| {
                self.config
                    .as_deref()
                    .and_then(|p| read_file(p).ok())
                    .and_then(|f| f.log_format)
            })
            .unwrap_or_default()
    }
}

impl ServeConfig {
    /// Merges flags/environment (already merged by clap) over the file over defaults.
    pub fn resolve(args: &ServeArgs) -> Result<Self, ConfigError> {
        let file = match &args.config {
            Some(path) => read_file(path)?,
            None => FileConfig::default(),
        };
        let ranges = if args.allow_ranges.is_empty() {
            file.allow_ranges.unwrap_or_default()
        } else {
            args.allow_ranges.clone()
        };
        let allow_ranges = ranges
            .iter()
            .map(|r| parse_range(r).map_err(|e| ConfigError::Range(format!("{r}: {e}"))))
            .collect::<Result<Vec<_>, _>>()?;
        let timeout = args
            .http_timeout_secs
            .or(file.http_timeout_secs)
            .unwrap_or(DEFAULT_HTTP_TIMEOUT_SECS);
        if !(1..=MAX_HTTP_TIMEOUT_SECS).contains(&timeout) {
            return Err(ConfigError::HttpTimeout);
        }
        let rate = args
            .http_rate_limit
            .or(file.http_rate_limit)
            .unwrap_or(Quota::DEFAULT.max);
        if rate == 0 {
            return Err(ConfigError::ZeroRateLimit);
        }
        let outbound = OutboundConfig {
            allow_ranges,
            apps_dir: args.apps_dir.clone().or(file.apps_dir),
            http: HttpConfig {
                default_timeout: Duration::from_secs(timeout),
                ..HttpConfig::default()
            },
            quota: Quota {
                max: rate,
                ..Quota::DEFAULT
            },
        };
        let database = args.database.resolve(
            file.database_url,
            file.database_max_connections,
            file.database_statement_timeout_ms,
            file.sqlite_synchronous,
        )?;
        let max_concurrent = args
            .max_concurrent_runs
            .or(file.max_concurrent_runs)
            .unwrap_or_else(crate::service::admission::default_max_concurrent);
        let per_project = args
            .max_project_runs
            .or(file.max_project_runs)
            .unwrap_or((max_concurrent / 2).max(1));
        let wait_ms = args
            .max_queue_wait_ms
            .or(file.max_queue_wait_ms)
            .unwrap_or(DEFAULT_MAX_QUEUE_WAIT_MS);
        let loaded_mib = args
            .loaded_steps_mib
            .or(file.loaded_steps_mib)
            .unwrap_or(DEFAULT_LOADED_STEPS_MIB);
        for (name, value) in [
            ("max_concurrent_runs", max_concurrent as u64),
            ("max_project_runs", per_project as u64),
            ("max_queue_wait_ms", wait_ms),
            ("loaded_steps_mib", loaded_mib),
        ] {
            if value == 0 {
                return Err(ConfigError::Zero(name));
            }
        }
        let service = ServiceConfig {
            admission: AdmissionConfig {
                max_concurrent,
                per_project: per_project.min(max_concurrent),
                max_wait: Duration::from_millis(wait_ms),
            },
            loaded_budget_bytes: loaded_mib.saturating_mul(1024 * 1024),
        };
        let public_url = args
            .public_url
            .clone()
            .or(file.public_url)
            .map(|u| crate::connect::parse_public_url(&u).map_err(ConfigError::PublicUrl))
            .transpose()?;
        let config = Self {
            public_url,
            service,
            database,
            data_dir: args
                .data_dir
                .clone()
                .or(file.data_dir)
                .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR)),
            listen: args.listen.or(file.listen).unwrap_or_else(|| {
                DEFAULT_LISTEN
                    .parse()
                    .expect("the default listen address parses")
            }),
            master_key_file: args.master_key_file.clone().or(file.master_key_file),
            token_ttl_secs: args
                .token_ttl_secs
                .or(file.token_ttl_secs)
                .unwrap_or(DEFAULT_TOKEN_TTL_SECS),
            outbound,
            log_format: args.log_format.or(file.log_format).unwrap_or_default(),
            retention_days: args.retention_days.or(file.retention_days),
            retention_interval_secs: args
                .retention_interval_secs
                .unwrap_or(DEFAULT_RETENTION_INTERVAL_SECS),
            run_lease: args.run_lease_ms.filter(|ms| *ms > 0).map_or(
                crate::service::queue::DEFAULT_LEASE,
                std::time::Duration::from_millis,
            ),
            trigger_rate_limit: args
                .trigger_rate_limit
                .or(file.trigger_rate_limit)
                .unwrap_or(super::ratelimit::DEFAULT_TRIGGER_RATE_LIMIT),
        };
        if config.token_ttl_secs == 0 {
            return Err(ConfigError::ZeroTtl);
        }
        if config.retention_days == Some(0) {
            return Err(ConfigError::ZeroRetention);
        }
        if config.retention_interval_secs == 0 {
            return Err(ConfigError::ZeroRetentionInterval);
        }
        if config.trigger_rate_limit == 0 {
            return Err(ConfigError::ZeroTriggerRateLimit);
        }
        Ok(config)
    }
}

fn read_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    toml::from_str(&text).map_err(|source| ConfigError::Parse {
        path: path.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_beat_file_beat_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("airlock.toml");
        std::fs::write(
            &file,
            "listen = \"127.0.0.1:9000\"\ndata_dir = \"/from/file\"\ntoken_ttl_secs = 60\n\
             apps_dir = \"/apps/from/file\"\n",
        )
        .unwrap();
        let args = ServeArgs {
            data_dir: Some("/from/flag".into()),
            config: Some(file),
            ..ServeArgs::default()
        };
        let c = ServeConfig::resolve(&args).unwrap();
        assert_eq!(c.data_dir, PathBuf::from("/from/flag"));
        assert_eq!(c.listen.port(), 9000);
        assert_eq!(c.token_ttl_secs, 60);
        assert_eq!(c.outbound.apps_dir, Some(PathBuf::from("/apps/from/file")));
        let d = ServeConfig::resolve(&ServeArgs::default()).unwrap();
        assert_eq!(d.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(d.token_ttl_secs, DEFAULT_TOKEN_TTL_SECS);
        assert_eq!(d.outbound.apps_dir, None);
        assert_eq!(d.log_format, LogFormat::Text);
        assert_eq!(d.retention_days, None);
        assert_eq!(
            d.trigger_rate_limit,
            super::super::ratelimit::DEFAULT_TRIGGER_RATE_LIMIT
        );
    }

    #[test]
    fn ops_settings_come_from_the_file_and_zero_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("airlock.toml");
        std::fs::write(
            &file,
            "log_format = \"json\"\nretention_days = 30\ntrigger_rate_limit = 5\n",
        )
        .unwrap();
        let args = ServeArgs {
            config: Some(file.clone()),
            ..ServeArgs::default()
        };
        assert_eq!(args.log_format_hint(), LogFormat::Json);
        let c = ServeConfig::resolve(&args).unwrap();
        assert_eq!(c.log_format, LogFormat::Json);
        assert_eq!(c.retention_days, Some(30));
        assert_eq!(c.trigger_rate_limit, 5);
        let flag = ServeArgs {
            log_format: Some(LogFormat::Text),
            retention_days: Some(2),
            ..args.clone()
        };
        assert_eq!(flag.log_format_hint(), LogFormat::Text);
        assert_eq!(ServeConfig::resolve(&flag).unwrap().retention_days, Some(2));

        let zero = ServeArgs {
            retention_days: Some(0),
            ..ServeArgs::default()
        };
        let e = ServeConfig::resolve(&zero).unwrap_err();
        assert!(matches!(e, ConfigError::ZeroRetention), "{e}");
        assert!(e.to_string().contains("retention_days"), "{e}");
        let zero = ServeArgs {
            trigger_rate_limit: Some(0),
            ..ServeArgs::default()
        };
        assert!(matches!(
            ServeConfig::resolve(&zero),
            Err(ConfigError::ZeroTriggerRateLimit)
        ));
        std::fs::write(&file, "log_format = \"xml\"\n").unwrap();
        assert!(matches!(
            ServeConfig::resolve(&args),
            Err(ConfigError::Parse { .. })
        ));
    }
}
