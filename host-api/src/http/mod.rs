//! `airlock:step/http` and the outbound request pipeline it shares with the
//! REST proxy.
//!
//! | concern | module |
//! | --- | --- |
//! | size bounds on what the caller sends, before any library sees it | [`bounds`] |
//! | classify addresses, operator allow-ranges, host rules | [`egress`] |
//! | DNS that returns only checked addresses | [`resolver`] |
//! | the one pooled client | [`client`] |
//! | per-project rate limit | [`ratelimit`] |
//! | validation, credentials, redirects, caps: the pipeline | [`pipeline`] |
//! | credentials passed with one run | [`run_accounts`] |
//! | schemes the host signs per request (SigV4, Digest) | [`sign`] |
//! | the manifest's `[http]` section | [`manifest`] |
//! | the capability: per-run state, linker wiring, WIT host impl | `host.rs` |

pub mod bounds;
pub mod client;
pub mod egress;
pub mod manifest;
pub mod pipeline;
pub mod ratelimit;
pub mod resolver;
pub mod run_accounts;
pub mod sign;

mod host;

pub use host::{Http, HttpState};
