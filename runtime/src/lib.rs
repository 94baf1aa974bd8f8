//! Airlock's runtime: the engine that runs untrusted steps, and the CLI.
//!
//! - [`engine`]: one wasmtime engine per process, validation, compile cache,
//!   limits, and runs.
//! - [`manifest`]: the step manifest, `airlock.toml` (grants and limits).
//! - [`outbound`]: the shared outbound HTTP pipeline and connected accounts.
//! - [`store`]: the encrypted local secret store (SQLite, AES-256-GCM) and
//!   connected accounts.
//! - [`oauth`]: OAuth 2.0 token refresh for connected accounts, single-flight.
//! - [`service`]: the run service, the one path a server runs steps by.
//! - [`server`]: `airlock serve`, the REST API with platform auth.
//! - [`cli`]: the `airlock` command.

pub mod cli;
pub mod connect;
pub mod engine;
pub mod manifest;
pub mod oauth;
pub mod outbound;
pub mod server;
pub mod service;
pub mod store;

pub use engine::{
    Engine, EngineConfig, LoadError, LoadedStep, RunFailure, RunLimits, RunOptions, RunReport,
};
