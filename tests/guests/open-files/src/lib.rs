//! Returns `Ok` with what it read if any file access worked (a sandbox
//! escape), and an error starting with `denied:` when all of it failed.
use airlock_sdk::Error;
use serde_json::{Value, json};

fn run(_: Value) -> Result<Value, Error> {
    let mut leaked = Vec::new();
    let mut denied = Vec::new();
    for path in ["/etc/passwd", "/proc/self/environ", ".", "/", "Cargo.toml"] {
        match std::fs::read_dir(path)
            .map(|_| ())
            .or_else(|_| std::fs::read(path).map(|_| ()))
        {
            Ok(()) => leaked.push(path.to_string()),
            Err(e) => denied.push(format!("{path}: {e}")),
        }
    }
    match std::fs::write("/tmp/airlock-escape", b"x") {
        Ok(()) => leaked.push("/tmp/airlock-escape (write)".into()),
        Err(e) => denied.push(format!("write /tmp/airlock-escape: {e}")),
    }
    if leaked.is_empty() {
        Err(Error::new(format!("denied: {}", denied.join("; "))))
    } else {
        Ok(json!({ "leaked": leaked }))
    }
}

airlock_sdk::step!(run);
