//! `airlock new <name> --lang rust|python|js`: writes a ready step project
//! — the step (a greeting, input to output, a log line, an error with a
//! code), its manifest, `build.sh` producing `<name>.wasm`, and `test.sh`
//! that builds it and checks it with `airlock run` — so a step author
//! starts from something that works.
//!
//! The SDKs are not published packages: a project points at the
//! `guest-sdk/` of an Airlock checkout (`--sdk`, by default the one this
//! binary was built from), by absolute path.
//!
//! Nothing is half-written: the files go to a fresh directory beside the
//! target, renamed into place only when all are there; an existing target
//! is never touched.

use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};

use crate::cli::exit;

#[derive(Debug, Args)]
#[command(
    after_help = "Then: `cd <name> && ./build.sh && airlock run <name>.wasm --manifest \
                        airlock.toml --input '{\"name\": \"Ada\"}'`, or `./test.sh`. Exit \
                        status: 0 written, 2 a bad name, an existing directory or no SDK."
)]
pub struct NewArgs {
    /// The step's name: lowercase letters, digits and `-`, starting with a
    /// letter (also the directory, crate and component name).
    name: String,
    /// The step's language.
    #[arg(long, value_enum)]
    lang: Lang,
    /// Where to create the project (default: ./<name>).
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// The `guest-sdk/` directory of an Airlock checkout (default: the one
    /// this binary was built from).
    #[arg(long, value_name = "DIR", env = "AIRLOCK_SDK_DIR")]
    sdk: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Lang {
    Rust,
    Python,
    Js,
}

/// Why no project was written.
#[derive(Debug, thiserror::Error)]
enum NewError {
    #[error(
        "{0:?} is not a step name for a new project: use 1-64 lowercase letters, digits and \
         `-`, starting with a letter"
    )]
    Name(String),
    #[error("{0} already exists; choose another name or --dir")]
    Exists(PathBuf),
    #[error(
        "no Airlock SDK at {0} (expected its {1}); pass --sdk with the guest-sdk/ directory of \
         an Airlock checkout"
    )]
    NoSdk(PathBuf, &'static str),
    #[error("writing {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// A file of a template: its path in the project, its text, and whether it
/// is a script.
type File = (&'static str, &'static str, bool);

const COMMON: &[File] = &[
    ("airlock.toml", include_str!("common_manifest.toml"), false),
    ("test.sh", include_str!("common_test.sh"), true),
    (".gitignore", include_str!("common_gitignore"), false),
];

const RUST: &[File] = &[
    ("Cargo.toml", include_str!("rust/Cargo.toml"), false),
    ("src/main.rs", include_str!("rust/src/main.rs"), false),
    ("build.sh", include_str!("rust/build.sh"), true),
];

const PYTHON: &[File] = &[
    ("app.py", include_str!("python/app.py"), false),
    ("build.sh", include_str!("python/build.sh"), true),
];

const JS: &[File] = &[
    ("step.js", include_str!("js/step.js"), false),
    ("build.sh", include_str!("js/build.sh"), true),
];

pub fn run(args: NewArgs) -> u8 {
    match create(&args) {
        Ok(dir) => {
            println!("created {}", dir.display());
            println!(
                "next: cd {} && ./build.sh && airlock run {}.wasm --manifest airlock.toml \
                 --input '{{\"name\": \"Ada\"}}'",
                dir.display(),
                args.name
            );
            exit::OK
        }
        Err(e) => {
            eprintln!("error: {e}");
            match e {
                NewError::Io { .. } => exit::INTERNAL,
                _ => exit::USAGE,
            }
        }
    }
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && name.len() <= 64
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.ends_with('-')
}

fn create(args: &NewArgs) -> Result<PathBuf, NewError> {
    if !valid_name(&args.name) {
        return Err(NewError::Name(args.name.clone()));
    }
    let target = args
        .dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(&args.name));
    if target.exists() {
        return Err(NewError::Exists(target));
    }
    let sdk = sdk_dir(args)?;
    let files: Vec<&File> = COMMON
        .iter()
        .chain(match args.lang {
            Lang::Rust => RUST,
            Lang::Python => PYTHON,
            Lang::Js => JS,
        })
        .collect();
    // The SDK path is written into TOML and shell strings: refuse what
    // would need escaping rather than write a broken project.
    let sdk_text = sdk
        .to_str()
        .filter(|s| !s.contains(['"', '\\', '$', '`', '\n']));
    let Some(sdk_text) = sdk_text else {
        return Err(NewError::NoSdk(sdk, "a path without quotes, `$` or `\\`"));
    };
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| NewError::Io { path, source }
    };
    let parent = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent).map_err(io(&parent))?;
    let staging = tempfile::Builder::new()
        .prefix(".airlock-new-")
        .tempdir_in(&parent)
        .map_err(io(&parent))?;
    for (rel, text, script) in files {
        let path = staging.path().join(rel);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io(dir))?;
        }
        let text = text
            .replace("{{name}}", &args.name)
            .replace("{{sdk}}", sdk_text);
        std::fs::write(&path, text).map_err(io(&path))?;
        if *script {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
                .map_err(io(&path))?;
        }
    }
    let staged = staging.keep();
    // `rename` onto an existing directory would fail or replace an empty
    // one; the check above and this one keep a target untouched.
    if target.exists() {
        let _ = std::fs::remove_dir_all(&staged);
        return Err(NewError::Exists(target));
    }
    std::fs::rename(&staged, &target).map_err(|source| {
        let _ = std::fs::remove_dir_all(&staged);
        NewError::Io {
            path: target.clone(),
            source,
        }
    })?;
    Ok(target)
}

/// The SDK directory, absolute, checked to hold the language's SDK.
fn sdk_dir(args: &NewArgs) -> Result<PathBuf, NewError> {
    let given = args.sdk.clone().unwrap_or_else(|| {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join("guest-sdk")
    });
    let marker = match args.lang {
        Lang::Rust => "Cargo.toml",
        Lang::Python => "python/build.sh",
        Lang::Js => "js/build.mjs",
    };
    let sdk = std::fs::canonicalize(&given).map_err(|_| NewError::NoSdk(given.clone(), marker))?;
    if !sdk.join(marker).is_file() {
        return Err(NewError::NoSdk(sdk, marker));
    }
    Ok(sdk)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        for ok in ["hello", "a", "my-step-2"] {
            assert!(valid_name(ok), "{ok}");
        }
        for bad in [
            "",
            "Hello",
            "2step",
            "-x",
            "x-",
            "my_step",
            "a/b",
            "..",
            &"a".repeat(65),
        ] {
            assert!(!valid_name(bad), "{bad}");
        }
    }
}
