//! Shared helpers for Airlock's end-to-end tests.
//!
//! The test guests and examples are built by `build.rs`; their paths are
//! the constants in [`guests`], [`examples`] and [`conformance`] (the Rust
//! SDK's conformance steps); Python and JavaScript steps by [`sdk_builds`].

include!(concat!(env!("OUT_DIR"), "/components.rs"));

pub mod browser;
pub mod cli;
pub mod connect;
pub mod fakes;
pub mod live;
pub mod moto;
pub mod oauth_provider;
pub mod operator_site;
pub mod postgres;
pub mod sdk_builds;
pub mod serve;

use std::path::PathBuf;

/// A compile cache shared by every test process, under `target/`, so each
/// component is compiled once per engine configuration.
pub fn test_cache_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .join("target")
        .join("airlock-test-cache")
}

/// Reads a built component.
pub fn component_bytes(path: &str) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("reading {path}: {e}"))
}
