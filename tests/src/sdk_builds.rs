//! Builds Python and JavaScript steps with the repository's own build
//! scripts (`guest-sdk/python/build.sh`, `guest-sdk/js/build.mjs`), as a
//! step author would, for the tests of the SDKs, examples, templates and
//! conformance cases.
//!
//! componentize-py takes tens of seconds per step, so every build goes
//! through the scripts' content-keyed cache (`AIRLOCK_GUEST_CACHE`, under
//! `target/`): a step is built once per change of its sources, the SDK, the
//! WIT or the pinned tool, whichever test binary asks first. Within one test
//! process builds run one at a time (the machines have two cores).
//!
//! A missing or wrong-version tool fails the test with the scripts' own
//! message naming the install command; nothing is skipped.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

/// The language of a step's source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Python,
    Js,
}

impl Lang {
    pub fn name(self) -> &'static str {
        match self {
            Lang::Python => "python",
            Lang::Js => "js",
        }
    }
}

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Where built components and the build cache live: under the workspace's
/// `target/`, beside the compile cache.
fn out_root() -> PathBuf {
    repo().join("target").join("sdk-guests")
}

static BUILDS: Mutex<()> = Mutex::new(());

/// Builds `source` (a Python module holding the `@step` function, or a
/// JavaScript module exporting `run`) into `<out_dir>/<name>.wasm`, relative
/// to `target/sdk-guests/`; returns the component's path.
pub fn build(lang: Lang, source: &Path, out_dir: &str, name: &str) -> PathBuf {
    let _one_at_a_time = BUILDS.lock().unwrap_or_else(|e| e.into_inner());
    let root = out_root();
    let dir = root.join(out_dir);
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join(format!("{name}.wasm"));
    // Written beside and renamed, so a reader never sees half a component.
    let tmp = dir.join(format!(".{name}.{}.wasm", std::process::id()));
    let sdk = repo().join("guest-sdk").join(lang.name());
    let mut cmd = match lang {
        Lang::Python => {
            let mut c = Command::new("bash");
            c.arg(sdk.join("build.sh")).arg(source).arg(&tmp);
            c
        }
        Lang::Js => {
            let mut c = Command::new("node");
            c.arg(sdk.join("build.mjs")).arg(source).arg("-o").arg(&tmp);
            c
        }
    };
    cmd.env("AIRLOCK_GUEST_CACHE", root.join("cache"));
    let output = cmd.output().unwrap_or_else(|e| {
        panic!(
            "cannot start the {} build of {} ({e}); {}",
            lang.name(),
            source.display(),
            install_hint(lang)
        )
    });
    if !output.status.success() {
        panic!(
            "building {} with the {} SDK failed ({}):\n{}{}\n{}",
            source.display(),
            lang.name(),
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
            install_hint(lang)
        );
    }
    std::fs::rename(&tmp, &out).unwrap();
    out
}

/// What installs the pinned tools (what `.ci/run` does).
pub fn install_hint(lang: Lang) -> String {
    let sdk = repo().join("guest-sdk").join(lang.name());
    match lang {
        Lang::Python => format!(
            "the Python SDK needs componentize-py as pinned in {}: \
             `python3 -m pip install -r {0}`",
            sdk.join("requirements.txt").display()
        ),
        Lang::Js => format!(
            "the JavaScript SDK needs Node.js 20+ and its pinned tools: `npm ci --prefix {}`",
            sdk.display()
        ),
    }
}

/// Builds every case of `tests/conformance/<lang>/` into one directory
/// (`<case>.wasm`), the shape `airlock conformance DIR` reads.
pub fn conformance(lang: Lang) -> PathBuf {
    let src = repo().join("tests").join("conformance").join(lang.name());
    let out_dir = format!("conformance-{}", lang.name());
    let mut dir = None;
    for case in conformance_cases() {
        let source = match lang {
            Lang::Python => src.join(&case).join("app.py"),
            Lang::Js => src.join(format!("{case}.js")),
        };
        assert!(
            source.is_file(),
            "conformance case {case} has no {} step at {}",
            lang.name(),
            source.display()
        );
        let built = build(lang, &source, &out_dir, &case);
        dir = built.parent().map(Path::to_path_buf);
    }
    dir.expect("at least one conformance case")
}

/// The case names: the stems of `tests/conformance/cases/*.toml`.
pub fn conformance_cases() -> Vec<String> {
    let dir = repo().join("tests").join("conformance").join("cases");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}
