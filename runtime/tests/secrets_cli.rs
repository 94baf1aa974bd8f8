//! `airlock keygen` and `airlock secrets …`, run as the real binary against a
//! temporary data directory.

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use airlock_runtime::store::{MasterKey, SecretStore};
use base64::Engine as _;

const BIN: &str = env!("CARGO_BIN_EXE_airlock");

/// The binary with a clean airlock environment, the given data dir and key.
fn airlock(data_dir: &Path, key: Option<&str>) -> Command {
    let mut cmd = Command::new(BIN);
    for var in [
        "AIRLOCK_MASTER_KEY",
        "AIRLOCK_MASTER_KEY_FILE",
        "AIRLOCK_NEW_MASTER_KEY",
        "AIRLOCK_DATA",
        "AIRLOCK_LOG",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("AIRLOCK_DATA", data_dir);
    if let Some(key) = key {
        cmd.env("AIRLOCK_MASTER_KEY", key);
    }
    cmd.stdin(Stdio::null());
    cmd
}

fn run_with_stdin(mut cmd: Command, stdin: &[u8]) -> Output {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn airlock");
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn keygen() -> String {
    let out = Command::new(BIN).arg("keygen").output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout).trim_end().to_owned()
}

#[test]
fn keygen_prints_a_44_char_base64_key() {
    let out = Command::new(BIN).arg("keygen").output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let stdout = text(&out.stdout);
    assert!(
        stdout.ends_with('\n') && stdout.lines().count() == 1,
        "{stdout:?}"
    );
    let key = stdout.trim_end();
    assert_eq!(key.len(), 44, "{key:?}");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(key)
        .unwrap();
    assert_eq!(bytes.len(), 32);
    assert!(out.stderr.is_empty(), "{}", text(&out.stderr));
    assert_ne!(key, keygen(), "every key is fresh");
}

#[tokio::test]
async fn set_from_stdin_then_list_shows_the_name_but_not_the_value() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let key = keygen();
    let value = "stdin-secret-value-42";

    let out = run_with_stdin(
        {
            let mut c = airlock(&data, Some(&key));
            c.args(["secrets", "set", "API_TOKEN"]);
            c
        },
        format!("{value}\n").as_bytes(),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(stdout.contains("API_TOKEN"), "{stdout}");
    assert!(!stdout.contains(value) && !stderr.contains(value));
    assert!(!stderr.contains("will not be masked"), "{stderr}");

    let out = airlock(&data, Some(&key))
        .args(["secrets", "list"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("API_TOKEN"), "{stdout}");
    assert!(!stdout.contains(value), "{stdout}");
    // Another project is separate.
    let out = airlock(&data, None)
        .args(["secrets", "list", "--project", "other"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(!text(&out.stdout).contains("API_TOKEN"));

    // The stored value is stdin minus exactly one trailing newline.
    let store = SecretStore::open(&data).await.unwrap();
    let master = MasterKey::from_base64(&key, "test").unwrap();
    let got = store.get(&master, "local", "API_TOKEN").await.unwrap();
    assert_eq!(got.as_deref().map(String::as_str), Some(value));
    store.close().await;
}

#[test]
fn a_short_value_warns_that_it_will_not_be_masked() {
    let dir = tempfile::tempdir().unwrap();
    let key = keygen();
    let out = airlock(dir.path(), Some(&key))
        .args(["secrets", "set", "PIN", "--value", "1234"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("will not be masked in logs"), "{stderr}");
    assert!(!stderr.contains("1234") && !text(&out.stdout).contains("1234"));

    let out = airlock(dir.path(), Some(&key))
        .args(["secrets", "set", "LONG", "--value", "long-enough"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(!text(&out.stderr).contains("will not be masked"));
}

#[test]
fn rm_of_a_missing_name_fails() {
    let dir = tempfile::tempdir().unwrap();
    let key = keygen();
    let out = airlock(dir.path(), Some(&key))
        .args(["secrets", "rm", "NOPE"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("no secret `NOPE`"));

    let out = airlock(dir.path(), Some(&key))
        .args(["secrets", "set", "THERE", "--value", "value-there"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let rm = |name: &str| {
        airlock(dir.path(), None)
            .args(["secrets", "rm", name])
            .output()
            .unwrap()
            .status
            .code()
    };
    assert_eq!(rm("THERE"), Some(0));
    assert_eq!(rm("THERE"), Some(2));
}

#[test]
fn set_without_a_key_fails_and_points_to_keygen() {
    let dir = tempfile::tempdir().unwrap();
    let out = airlock(dir.path(), None)
        .args(["secrets", "set", "A", "--value", "value-123456"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("airlock keygen"), "{stderr}");
    assert!(!dir.path().join("airlock.db").exists(), "nothing stored");

    let out = airlock(dir.path(), Some("not-a-key"))
        .args(["secrets", "set", "A", "--value", "value-123456"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("base64"));
}

#[tokio::test]
async fn rotate_key_reseals_online_under_the_rings_current_key() {
    let dir = tempfile::tempdir().unwrap();
    let old = keygen();
    let new = keygen();
    for (project, name) in [("local", "A"), ("local", "B"), ("p2", "C")] {
        let out = airlock(dir.path(), Some(&old))
            .args(["secrets", "set", name, "--project", project, "--value"])
            .arg(format!("value-of-{name}-000"))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    }
    // The nodes switch to the ring "new, old": they read both, write new.
    let ring = format!("{new},{old}");
    let out = airlock(dir.path(), Some(&ring))
        .args(["secrets", "set", "D", "--value", "value-of-D-000"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    // A node with the old key alone refuses to write, naming the missing key.
    let out = airlock(dir.path(), Some(&old))
        .args(["secrets", "set", "E", "--value", "value-of-E-000"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("which this key ring"),
        "{}",
        text(&out.stderr)
    );

    // The rotation re-seals what the old key holds, and says what is next.
    let out = airlock(dir.path(), Some(&ring))
        .args(["secrets", "rotate-key"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("re-sealed 3 values"), "{stdout}");
    assert!(stdout.contains("retired keys can be removed"), "{stdout}");
    // Run again: nothing left.
    let out = airlock(dir.path(), Some(&ring))
        .args(["secrets", "rotate-key"])
        .output()
        .unwrap();
    assert!(
        text(&out.stdout).contains("re-sealed 0 values"),
        "{}",
        text(&out.stdout)
    );

    // The new key alone now reads everything.
    let store = SecretStore::open(dir.path()).await.unwrap();
    let new_key = MasterKey::from_base64(&new, "test").unwrap();
    for (project, name) in [("local", "A"), ("local", "B"), ("p2", "C"), ("local", "D")] {
        let got = store.get(&new_key, project, name).await.unwrap().unwrap();
        assert_eq!(got.as_str(), format!("value-of-{name}-000"));
    }
    store.close().await;
}

#[tokio::test]
async fn rotate_key_to_a_new_key_file_in_one_step() {
    let dir = tempfile::tempdir().unwrap();
    let old = keygen();
    let new = keygen();
    let out = airlock(dir.path(), Some(&old))
        .args(["secrets", "set", "A", "--value", "value-of-A-000"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let key_file = dir.path().join("new.key");
    std::fs::write(&key_file, format!("{new}\n")).unwrap();
    let out = airlock(dir.path(), Some(&old))
        .args(["secrets", "rotate-key", "--new-key-file"])
        .arg(&key_file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("re-sealed 1 value "),
        "{}",
        text(&out.stdout)
    );
    // The same key again is refused.
    let out = airlock(dir.path(), Some(&new))
        .args(["secrets", "rotate-key", "--new-key-file"])
        .arg(&key_file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let store = SecretStore::open(dir.path()).await.unwrap();
    let new_key = MasterKey::from_base64(&new, "test").unwrap();
    assert!(store.get(&new_key, "local", "A").await.unwrap().is_some());
    store.close().await;
}
