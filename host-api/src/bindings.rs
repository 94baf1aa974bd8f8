//! The one place that runs `bindgen!` for the `airlock:step` world.
//!
//! Imports are synchronous and trappable: a host call that breaks a limit
//! (payload too large, log budget spent) traps the guest with a typed
//! [`HostLimitError`](crate::HostLimitError) the runtime can classify.
//! The export `run` is called asynchronously so epoch yields and wall-clock
//! timeouts can interrupt it.

wasmtime::component::bindgen!({
    path: "../wit",
    world: "step",
    imports: {
        // The imports that wait on I/O.
        "airlock:step/http.send": async | trappable,
        "airlock:step/http.send-aws-sigv4": async | trappable,
        "airlock:step/http.send-digest": async | trappable,
        default: trappable,
    },
    exports: { default: async },
    with: {
        "airlock:step/secrets.secret": crate::secrets::SecretHandle,
    },
});

pub use airlock::step::{context, crypto, http, log, secrets};
