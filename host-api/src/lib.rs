//! The host side of Airlock's WIT contract (`wit/`, package `airlock:step`).
//!
//! Each WIT interface has its own module with a `host.rs` implementing the
//! generated `Host` trait:
//!
//! | interface | module | what it does |
//! | --- | --- | --- |
//! | `log` | [`log`] | leveled lines into the run's capped, masked [`log::LogSink`] |
//! | `context` | [`context`] | the run's id, step, project, end user, trigger |
//! | `secrets` | [`secrets`] | granted secrets as opaque handles; reveal only if granted |
//! | `crypto` | [`crypto`] | HMAC keyed by a secret handle |
//! | `http` | [`http`] | egress policy, checked resolver, shared client, rate limits, `http.send` |
//! | `wasi:http` | [`wasi_http`] | standard clients' `outgoing-handler`, through the same pipeline |
//!
//! [`apps::Catalog`] holds the apps (integrations) a step may call with a
//! connected account: auth kind, credential placement, allowed domains.
//!
//! [`redact::Redactor`] masks every value a run touches out of everything
//! that leaves it.
//!
//! Each is a [`Capability`]: its own per-run state, its linker wiring and
//! its host impl in its module ([`capability`] says why); an engine links
//! and prepares a [`Capabilities`] list, and a run's [`RunHost`] holds the
//! states.
//! This crate knows nothing of engines, databases or HTTP servers: the
//! `airlock-runtime` crate owns the wasmtime `Engine`, WASI and the CLI.

pub mod apps;
pub mod bindings;
pub mod capability;
pub mod context;
pub mod crypto;
pub mod http;
pub mod limits;
pub mod log;
pub mod redact;
pub mod secrets;
pub mod wasi_http;

pub use capability::{Capabilities, Capability, RunHost, RunSetup, StoreData};
pub use limits::{HostCallLimits, HostLimitError};
