//! # airlock-sdk: write Airlock steps in Rust
//!
//! A step is a WebAssembly component that takes JSON in and gives JSON out.
//! With this crate you write an ordinary typed function and the [`step!`]
//! macro turns it into the component's `run` export; the WIT bindings stay
//! out of sight.
//!
//! ## A complete step
//!
//! `Cargo.toml`:
//!
//! ```toml
//! [package]
//! name = "hello"
//! version = "0.1.0"
//! edition = "2024"
//!
//! [lib]
//! crate-type = ["cdylib"]
//!
//! [dependencies]
//! airlock-sdk = { path = "../../guest-sdk" }
//! serde = { version = "1", features = ["derive"] }
//! ```
//!
//! `src/lib.rs`:
//!
//! ```no_run
//! use airlock_sdk::{log, Error};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Deserialize)]
//! struct Input {
//!     name: String,
//! }
//!
//! #[derive(Serialize)]
//! struct Output {
//!     greeting: String,
//! }
//!
//! fn run(input: Input) -> Result<Output, Error> {
//!     if input.name.is_empty() {
//!         return Err(Error::new("name must not be empty").with_code("empty_name"));
//!     }
//!     let ctx = airlock_sdk::context::get();
//!     log::info(format!("greeting {} in run {}", input.name, ctx.run_id));
//!     Ok(Output { greeting: format!("Hello, {}!", input.name) })
//! }
//!
//! airlock_sdk::step!(run);
//! ```
//!
//! Build and run it:
//!
//! ```text
//! cargo build --release --target wasm32-wasip2
//! airlock run target/wasm32-wasip2/release/hello.wasm --input '{"name":"Ada"}'
//! ```
//!
//! ## What the host does with your function
//!
//! - The input JSON is deserialized into your input type; if that fails the
//!   run ends with an [`Error`] whose code is `invalid_input`.
//! - `Ok(value)` is serialized to JSON and becomes the run's output.
//! - `Err(error)` becomes the run's error: `{"message", "code"?, "details"?}`.
//! - A panic traps the instance; its message lands in the run's log (stderr).
//! - `println!`/`eprintln!` land in the run's log too, like [`log`] lines.
//! - [`secrets::get`] returns a handle to a secret the step's manifest
//!   grants; [`crypto::hmac_sha256`] signs with it without reading it, and
//!   [`secrets::Secret::reveal`] reads it when the manifest allows reveal.
//!
//! Steps have no filesystem, no environment and no sockets; see the
//! project README for limits (wall time, CPU, memory, output).

// The generated bindings name this crate by its public path so that the
// `step!` macro expands correctly in a step author's crate.
extern crate self as airlock_sdk;

pub mod context;
pub mod crypto;
pub mod http;
pub mod log;
pub mod secrets;
#[cfg(not(target_arch = "wasm32"))]
pub mod testing;

mod error;
mod host;

pub use error::Error;

#[doc(hidden)]
pub use wit_bindgen as __wit_bindgen;

/// The raw bindings of the `airlock:step` world. Not part of the stable
/// API: use the typed modules of this crate instead.
#[doc(hidden)]
pub mod __bindings {
    wit_bindgen::generate!({
        path: "../wit",
        world: "airlock:step/step",
        pub_export_macro: true,
        export_macro_name: "__export_step_world",
        default_bindings_module: "airlock_sdk::__bindings",
        runtime_path: "airlock_sdk::__wit_bindgen::rt",
    });
}

/// Turns a typed function into the step's `run` export.
///
/// The function takes any `serde::de::DeserializeOwned` input and returns
/// `Result<Out, airlock_sdk::Error>` with `Out: serde::Serialize`. Use the
/// macro once per step crate, at the crate root.
#[macro_export]
macro_rules! step {
    ($run:path) => {
        #[doc(hidden)]
        struct __AirlockStep;

        impl $crate::__bindings::Guest for __AirlockStep {
            fn run(
                input: ::std::string::String,
            ) -> ::core::result::Result<::std::string::String, ::std::string::String> {
                $crate::__private::run_json(&input, $run)
            }
        }

        $crate::__bindings::__export_step_world!(__AirlockStep with_types_in $crate::__bindings);
    };
}

#[doc(hidden)]
pub mod __private {
    use serde::Serialize;
    use serde::de::DeserializeOwned;

    use crate::Error;

    /// JSON in, typed call, JSON out.
    pub fn run_json<In, Out>(
        input: &str,
        run: impl FnOnce(In) -> Result<Out, Error>,
    ) -> Result<String, String>
    where
        In: DeserializeOwned,
        Out: Serialize,
    {
        let input: In = serde_json::from_str(input).map_err(|e| {
            Error::new(format!(
                "the input does not match the step's input type: {e}"
            ))
            .with_code("invalid_input")
            .to_json()
        })?;
        let output = run(input).map_err(|e| e.to_json())?;
        serde_json::to_string(&output).map_err(|e| {
            Error::new(format!("the step's output could not be serialized: {e}"))
                .with_code("invalid_output")
                .to_json()
        })
    }
}
