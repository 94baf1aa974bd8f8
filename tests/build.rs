//! Builds the test guests (`tests/guests/`), the example steps
//! (`examples/`) and the Rust SDK's conformance steps
//! (`tests/conformance/rust/`) for `wasm32-wasip2`, so a clean checkout needs no manual
//! step, and generates one path constant per component:
//! `airlock_tests::guests::LOOP_FOREVER`, `airlock_tests::examples::HELLO`.

use std::path::{Path, PathBuf};
use std::process::Command;

const TARGET: &str = "wasm32-wasip2";

fn main() {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let repo = manifest_dir.parent().unwrap().to_path_buf();
    let guests = manifest_dir.join("guests");
    let examples = repo.join("examples");
    let conformance = repo.join("tests").join("conformance").join("rust");

    for dir in [repo.join("wit"), repo.join("guest-sdk/src")] {
        println!("cargo:rerun-if-changed={}", dir.display());
    }
    println!(
        "cargo:rerun-if-changed={}",
        repo.join("guest-sdk/Cargo.toml").display()
    );

    let mut generated = String::new();
    for (module, workspace) in [
        ("guests", &guests),
        ("examples", &examples),
        ("conformance", &conformance),
    ] {
        let crates = member_crates(workspace);
        build_workspace(workspace);
        generated.push_str(&format!(
            "/// Components built from `{}`.\npub mod {module} {{\n",
            workspace.strip_prefix(&repo).unwrap().display()
        ));
        for name in crates {
            // Binary targets keep the crate's name; library ones get underscores.
            let release = workspace.join("target").join(TARGET).join("release");
            let wasm = [name.clone(), name.replace('-', "_")]
                .iter()
                .map(|n| release.join(format!("{n}.wasm")))
                .find(|p| p.exists())
                .unwrap_or_else(|| release.join(format!("{name}.wasm")));
            assert!(wasm.exists(), "expected {} after the build", wasm.display());
            generated.push_str(&format!(
                "    pub const {}: &str = {:?};\n",
                name.to_uppercase().replace('-', "_"),
                wasm.display().to_string()
            ));
        }
        generated.push_str("}\n");
    }
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("components.rs");
    std::fs::write(out, generated).unwrap();
}

/// Every directory of `workspace` holding a Cargo.toml; watched for changes.
fn member_crates(workspace: &Path) -> Vec<String> {
    println!(
        "cargo:rerun-if-changed={}",
        workspace.join("Cargo.toml").display()
    );
    println!(
        "cargo:rerun-if-changed={}",
        workspace.join("Cargo.lock").display()
    );
    let mut names = Vec::new();
    for entry in std::fs::read_dir(workspace).unwrap() {
        let path = entry.unwrap().path();
        if path.join("Cargo.toml").exists() {
            println!("cargo:rerun-if-changed={}", path.join("src").display());
            println!(
                "cargo:rerun-if-changed={}",
                path.join("Cargo.toml").display()
            );
            names.push(path.file_name().unwrap().to_string_lossy().into_owned());
        }
    }
    names.sort();
    names
}

fn build_workspace(workspace: &Path) {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace)
        .args(["build", "--release", "--target", TARGET]);
    // The outer build's settings are for the host; the guests get none of
    // them (a clippy or coverage wrapper must not run on wasm guests).
    for var in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_MAKEFLAGS",
        "CARGO_PRIMARY_PACKAGE",
    ] {
        cmd.env_remove(var);
    }
    let status = cmd.status().expect("running cargo for the wasm guests");
    if !status.success() {
        panic!(
            "building {} for {TARGET} failed; is the target installed? \
             (`rustup target add {TARGET}`)",
            workspace.display()
        );
    }
}
