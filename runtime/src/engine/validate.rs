//! What a component must be before anything runs, with a message naming
//! the problem for each way it can fail.
//!
//! Why an import allowlist rather than "whatever the linker has": the
//! allowlist is the reviewable statement of the sandbox's surface. A
//! component importing anything else (`wasi:http/incoming-handler`, a
//! custom interface, a bare function) is refused at upload with every offending import listed,
//! instead of failing on the first one at instantiation.

use wasmtime::component::types::ComponentItem;
use wasmtime::component::{Component, Type};

/// Why a component was refused.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("not a WebAssembly binary: the file does not start with the `\\0asm` magic bytes")]
    NotWasm,
    #[error(
        "this is a core WebAssembly module, not a component; build the step for the \
         `wasm32-wasip2` target (or wrap the module with `wasm-tools component new`)"
    )]
    CoreModule,
    #[error("invalid component: {reason}")]
    Invalid { reason: String },
    #[error(
        "the component does not export `run`; a step must export \
         `run: func(input: string) -> result<string, string>` (world `airlock:step/step`)"
    )]
    MissingRun,
    #[error(
        "the component's `run` export has the wrong type: expected \
         `func(input: string) -> result<string, string>`, found {found}"
    )]
    WrongRunType { found: String },
    #[error(
        "the component imports interfaces outside `airlock:step` and the allowed WASI \
         interfaces: {}", .0.join(", ")
    )]
    DisallowedImports(Vec<String>),
    #[error("the component's imports do not match what the host provides: {0}")]
    Link(String),
    #[error("internal error while loading the component: {0}")]
    Internal(String),
}

/// Refuses non-Wasm bytes and core modules before compiling anything.
pub fn check_header(bytes: &[u8]) -> Result<(), LoadError> {
    if !bytes.starts_with(b"\0asm") || bytes.len() < 8 {
        return Err(LoadError::NotWasm);
    }
    if wasmtime::wasmparser::Parser::is_core_wasm(bytes) {
        return Err(LoadError::CoreModule);
    }
    if !wasmtime::wasmparser::Parser::is_component(bytes) {
        return Err(LoadError::Invalid {
            reason: "unknown WebAssembly binary version or layer".into(),
        });
    }
    Ok(())
}

/// Reads the component's own (top-level) imports from the binary, before
/// anything is compiled: a component importing anything outside the
/// allowlist is
/// refused at the cost of one pass over its sections rather than a full
/// compile. Everything else — validity, features, the `run` export — needs
/// the compile, which names those problems best; the compiled component's
/// imports are checked again ([`check_imports`]) with wasmtime's own view.
pub fn check_binary(bytes: &[u8]) -> Result<(), LoadError> {
    use wasmtime::wasmparser::{Parser, Payload};
    let invalid = |e: wasmtime::wasmparser::BinaryReaderError| LoadError::Invalid {
        reason: e.to_string(),
    };
    let mut depth = 0usize;
    let mut offending = Vec::new();
    for payload in Parser::new(0).parse_all(bytes) {
        match payload.map_err(invalid)? {
            Payload::ModuleSection { .. } | Payload::ComponentSection { .. } => depth += 1,
            Payload::End(_) if depth > 0 => depth -= 1,
            Payload::ComponentImportSection(reader) if depth == 0 => {
                for import in reader {
                    let name = import.map_err(invalid)?.name.name;
                    if !import_allowed(name) {
                        offending.push(name.to_string());
                    }
                }
            }
            _ => {}
        }
    }
    if offending.is_empty() {
        Ok(())
    } else {
        Err(LoadError::DisallowedImports(offending))
    }
}

/// Requires `run: func(string) -> result<string, string>`.
pub fn check_exports(engine: &wasmtime::Engine, component: &Component) -> Result<(), LoadError> {
    let ty = component.component_type();
    let Some(item) = ty.get_export(engine, "run") else {
        return Err(LoadError::MissingRun);
    };
    let ComponentItem::ComponentFunc(func) = item.ty else {
        return Err(LoadError::WrongRunType {
            found: "an export that is not a function".into(),
        });
    };
    let params: Vec<Type> = func.params().map(|(_, t)| t).collect();
    let results: Vec<Type> = func.results().collect();
    let ok = matches!(params.as_slice(), [Type::String])
        && matches!(results.as_slice(), [Type::Result(r)]
            if matches!(r.ok(), Some(Type::String)) && matches!(r.err(), Some(Type::String)));
    if !ok {
        return Err(LoadError::WrongRunType {
            found: format!("params {params:?} and results {results:?}"),
        });
    }
    Ok(())
}

/// Refuses any import outside the allowlist, naming every one.
pub fn check_imports(engine: &wasmtime::Engine, component: &Component) -> Result<(), LoadError> {
    let offending: Vec<String> = component
        .component_type()
        .imports(engine)
        .map(|(name, _)| name.to_string())
        .filter(|name| !import_allowed(name))
        .collect();
    if offending.is_empty() {
        Ok(())
    } else {
        Err(LoadError::DisallowedImports(offending))
    }
}

/// Interfaces of `airlock:step` a 0.1 guest may import.
const AIRLOCK_INTERFACES: &[&str] = &["log", "context", "secrets", "crypto", "http"];

/// WASI 0.2 interfaces linked (deny-by-default; see `state.rs`).
const WASI_INTERFACES: &[(&str, &[&str])] = &[
    ("wasi:io", &["error", "poll", "streams"]),
    ("wasi:clocks", &["monotonic-clock", "wall-clock"]),
    ("wasi:random", &["random", "insecure", "insecure-seed"]),
    (
        "wasi:cli",
        &[
            "environment",
            "exit",
            "stdin",
            "stdout",
            "stderr",
            "terminal-input",
            "terminal-output",
            "terminal-stdin",
            "terminal-stdout",
            "terminal-stderr",
        ],
    ),
    ("wasi:filesystem", &["types", "preopens"]),
    // Requests only, through the pipeline (`airlock_host_api::wasi_http`);
    // never `incoming-handler`.
    ("wasi:http", &["types", "outgoing-handler"]),
    (
        "wasi:sockets",
        &[
            "network",
            "instance-network",
            "tcp",
            "tcp-create-socket",
            "udp",
            "udp-create-socket",
            "ip-name-lookup",
        ],
    ),
];

/// Whether an import name (`ns:pkg/interface@version`) is on the allowlist.
pub fn import_allowed(name: &str) -> bool {
    let (path, version) = name.split_once('@').unwrap_or((name, ""));
    let Some((package, interface)) = path.split_once('/') else {
        return false;
    };
    if package == "airlock:step" {
        return version.starts_with("0.1.") && AIRLOCK_INTERFACES.contains(&interface);
    }
    version.starts_with("0.2.")
        && WASI_INTERFACES
            .iter()
            .any(|(p, ifaces)| *p == package && ifaces.contains(&interface))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allowlist_names_interfaces_and_versions() {
        assert!(import_allowed("airlock:step/log@0.1.0"));
        assert!(import_allowed("wasi:cli/environment@0.2.6"));
        assert!(import_allowed("wasi:io/streams@0.2.0"));
        assert!(import_allowed("wasi:http/outgoing-handler@0.2.0"));
        assert!(import_allowed("wasi:http/types@0.2.4"));
        assert!(!import_allowed("wasi:http/incoming-handler@0.2.0"));
        assert!(!import_allowed("wasi:cli/environment@0.3.0"));
        assert!(!import_allowed("airlock:step/log@0.2.0"));
        assert!(!import_allowed("airlock:step/nope@0.1.0"));
        assert!(!import_allowed("evil"));
        assert!(!import_allowed("wasi:io"));
    }

    #[test]
    fn header_checks_name_the_problem() {
        assert!(matches!(check_header(b"hello"), Err(LoadError::NotWasm)));
        let core = [0, b'a', b's', b'm', 1, 0, 0, 0];
        assert!(matches!(check_header(&core), Err(LoadError::CoreModule)));
        let component = [0, b'a', b's', b'm', 0x0d, 0, 1, 0];
        assert!(check_header(&component).is_ok());
    }
}
