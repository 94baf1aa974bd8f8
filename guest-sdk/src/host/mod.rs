//! The one seam between the SDK's typed modules and the host.
//!
//! In a component (`wasm32`) every call goes to the `airlock:step` imports.
//! Natively (a step author's `cargo test`) the same calls go to the mock
//! host of [`crate::testing`], installed for the current thread by
//! [`MockHost::run`](crate::testing::MockHost::run). Why a seam rather
//! than the raw bindings natively: the generated imports have no host to
//! call outside a component, and reaching one aborts the whole test binary
//! instead of failing one test with a message.

#[cfg(target_arch = "wasm32")]
mod wasm;
#[cfg(target_arch = "wasm32")]
pub(crate) use wasm::*;

#[cfg(not(target_arch = "wasm32"))]
pub(crate) use crate::testing::native::*;

/// A request as `http::RequestBuilder` built it, for either backend.
pub(crate) struct OutRequest<'a> {
    pub method: &'static str,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
    pub timeout_ms: Option<u32>,
    pub auth: Option<&'a crate::http::Auth<'a>>,
}
