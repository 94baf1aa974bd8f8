//! Outbound HTTP for guests (`airlock:step/http`), made host-side.

pub mod client;
pub mod egress;
pub mod ratelimit;
pub mod resolver;
