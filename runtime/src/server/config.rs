//! `airlock serve` settings: flags > environment > `--config` TOML file >
//! defaults.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use clap::Args;
use serde::Deserialize;

use crate::store::{DATA_DIR_ENV, DEFAULT_DATA_DIR};

/// The listen address when none is configured.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// Lifetime of OAuth access tokens when none is configured, in seconds.
pub const DEFAULT_TOKEN_TTL_SECS: u64 = 3600;

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
    /// A directory of extra app definitions (`<slug>.toml`), over the built-in
    /// catalog; read once at start, and an invalid file stops the start.
    #[arg(long, value_name = "DIR", env = "AIRLOCK_APPS_DIR")]
    pub apps_dir: Option<PathBuf>,
    /// TOML file with the same settings (`data_dir`, `listen`, `master_key_file`,
    /// `token_ttl_secs`, `apps_dir`); flags and environment take precedence.
    #[arg(long, value_name = "FILE", env = "AIRLOCK_CONFIG")]
    pub config: Option<PathBuf>,
}

/// The `--config` file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    data_dir: Option<PathBuf>,
    listen: Option<SocketAddr>,
    master_key_file: Option<PathBuf>,
    token_ttl_secs: Option<u64>,
    apps_dir: Option<PathBuf>,
}

/// Resolved settings.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    pub master_key_file: Option<PathBuf>,
    pub token_ttl_secs: u64,
    /// Extra app definitions over the built-in catalog.
    pub apps_dir: Option<PathBuf>,
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
}

impl ServeConfig {
    /// Merges flags/environment (already merged by clap) over the file over defaults.
    pub fn resolve(args: &ServeArgs) -> Result<Self, ConfigError> {
        let file = match &args.config {
            Some(path) => read_file(path)?,
            None => FileConfig::default(),
        };
        let config = Self {
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
            apps_dir: args.apps_dir.clone().or(file.apps_dir),
        };
        if config.token_ttl_secs == 0 {
            return Err(ConfigError::ZeroTtl);
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
        assert_eq!(c.apps_dir, Some(PathBuf::from("/apps/from/file")));
        let d = ServeConfig::resolve(&ServeArgs::default()).unwrap();
        assert_eq!(d.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(d.token_ttl_secs, DEFAULT_TOKEN_TTL_SECS);
        assert_eq!(d.apps_dir, None);
    }
}
