//! Auth schemes the host computes per request from a secret the step holds
//! only as a handle: AWS Signature V4 ([`sigv4`]) and HTTP Digest
//! ([`digest`]). Each is a small pure module; the pipeline calls them at
//! the last moment, for the exact request that goes on the wire.

pub mod digest;
pub mod sigv4;
