//! Secrets through the engine and the CLI: grants, reveal, HMAC, and the
//! hostile `leak-secret` guest trying every way to get a value out.

mod common;

use std::process::Command;

use airlock_host_api::secrets::{RunSecrets, SecretGrants};
use airlock_runtime::engine::{RunFailure, RunOptions, RunReport};
use airlock_tests::{examples, guests, test_cache_dir};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE};
use hmac::{Hmac, Mac};
use zeroize::Zeroizing;

/// Chosen so every encoding differs from the raw value: `/`, `+`, `"`,
/// `\`, `&`, space and a non-ASCII character.
const SECRET: &str = "sk_live/Zq+8\"mW\\q&7 Rt#xÜ9Lp";
const MULTI: &str =
    "-----BEGIN KEY-----\nMIIBOgIBAAJBAKj34GkxFhD9\nZq8mWq7Rtx9LpVb3NcE2hJ\n-----END KEY-----";

fn grants(names: &[&str], reveal: &[&str]) -> SecretGrants {
    SecretGrants {
        names: names.iter().map(|s| s.to_string()).collect(),
        reveal: reveal.iter().map(|s| s.to_string()).collect(),
    }
}

fn values(pairs: &[(&str, &str)]) -> Vec<(String, Zeroizing<String>)> {
    pairs
        .iter()
        .map(|(n, v)| (n.to_string(), Zeroizing::new(v.to_string())))
        .collect()
}

async fn run(path: &str, input: &str, secrets: RunSecrets) -> RunReport {
    let step = common::load(path).await;
    let mut options = RunOptions::local("secrets-test");
    options.secrets = secrets;
    common::engine().run(&step, input, options).await
}

async fn probe(name: &str, secrets: RunSecrets) -> serde_json::Value {
    let input = format!(r#"{{"name":"{name}"}}"#);
    let report = run(guests::SECRET_PROBE, &input, secrets).await;
    serde_json::from_str(&report.outcome.unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_outside_the_grant_is_not_granted_whether_or_not_it_exists() {
    let stored = values(&[("GRANTED", "value-one-1"), ("HIDDEN", "value-two-2")]);
    let g = grants(&["GRANTED", "MISSING"], &[]);
    let out = probe("HIDDEN", RunSecrets::new(g.clone(), stored.clone())).await;
    assert_eq!(out["get"], "NotGranted", "{out}");
    let out = probe("NO_SUCH", RunSecrets::new(g.clone(), stored.clone())).await;
    assert_eq!(out["get"], "NotGranted", "{out}");
    let out = probe("MISSING", RunSecrets::new(g.clone(), stored.clone())).await;
    assert_eq!(out["get"], "NotFound", "{out}");
    let out = probe("GRANTED", RunSecrets::new(g, stored)).await;
    assert_eq!(out["get"], "ok");
    assert_eq!(out["name"], "GRANTED");
    assert_eq!(out["reveal"], "RevealNotGranted");
    assert!(
        out["message"]
            .as_str()
            .unwrap()
            .contains("manifest does not allow revealing this secret"),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reveal_works_only_with_the_reveal_grant() {
    let out = probe(
        "TOKEN",
        RunSecrets::new(
            grants(&["TOKEN"], &["TOKEN"]),
            values(&[("TOKEN", "abcdefgh")]),
        ),
    )
    .await;
    assert_eq!(out["reveal"], "ok");
    assert_eq!(out["len"], 8);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_payload_matches_an_independent_hmac() {
    let key = "whsec_test_key_0123456789";
    let secrets = RunSecrets::new(
        grants(&["SIGNING_KEY"], &[]),
        values(&[("SIGNING_KEY", key)]),
    );
    let report = run(
        examples::SIGN_PAYLOAD,
        r#"{"payload":"{\"event\":\"paid\",\"amount\":42}"}"#,
        secrets,
    )
    .await;
    let out: serde_json::Value = serde_json::from_str(&report.outcome.unwrap()).unwrap();
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(br#"{"event":"paid","amount":42}"#);
    let expected: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(out["signature"], expected);
    assert_eq!(out["algorithm"], "hmac-sha256");
}

/// Every form of `s` a leak could take: its raw text, the parts of its
/// base64 (standard and URL-safe, at byte offsets 0, 1, 2) that depend only
/// on `s`, URL encoding, hex, JSON escaping.
fn leak_forms(s: &str) -> Vec<String> {
    let mut forms = vec![s.to_string()];
    for prefix in ["", "x", "xy", "user:"] {
        for encoded in [
            STANDARD.encode(format!("{prefix}{s}")),
            URL_SAFE.encode(format!("{prefix}{s}")),
        ] {
            let k = prefix.len();
            let start = (8 * k).div_ceil(6);
            let end = 8 * (k + s.len()) / 6;
            forms.push(encoded[start..end].to_string());
        }
    }
    let url: String = s
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect();
    forms.push(url);
    let hex: String = s.bytes().map(|b| format!("{b:02x}")).collect();
    forms.push(hex.to_uppercase());
    forms.push(hex);
    let json = serde_json::to_string(s).unwrap();
    forms.push(json[1..json.len() - 1].to_string());
    forms
}

/// Fails if any 10-byte window of any leak form of the secrets is in `text`.
fn assert_no_leak(text: &str, what: &str) {
    let mut forms = leak_forms(SECRET);
    for line in MULTI.lines().filter(|l| l.len() >= 6) {
        forms.extend(leak_forms(line));
    }
    for form in forms {
        let bytes = form.as_bytes();
        for w in bytes.windows(10.min(bytes.len())) {
            let w = String::from_utf8_lossy(w);
            assert!(
                !text.contains(w.as_ref()),
                "{what} leaks {w:?} (of {form:?}):\n{text}"
            );
        }
    }
}

fn leak_secrets() -> RunSecrets {
    RunSecrets::new(
        grants(&["SECRET", "MULTI"], &["SECRET", "MULTI"]),
        values(&[("SECRET", SECRET), ("MULTI", MULTI)]),
    )
}

fn all_text(report: &RunReport) -> String {
    let mut text: String = report
        .logs
        .iter()
        .map(|l| format!("{} {}\n", l.source, l.text))
        .collect();
    match &report.outcome {
        Ok(o) => text.push_str(o),
        Err(e) => text.push_str(&e.to_string()),
    }
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_step_cannot_get_a_secret_out_through_its_log() {
    let report = run(guests::LEAK_SECRET, r#"{"mode":"log"}"#, leak_secrets()).await;
    assert!(report.outcome.is_ok(), "{:?}", report.outcome);
    let text = all_text(&report);
    assert_no_leak(&text, "the log");
    // It did try: every attempt left a masked trace.
    assert!(text.matches("[REDACTED:SECRET]").count() >= 30, "{text}");
    assert!(text.contains("split: [REDACTED:SECRET] end"), "{text}");
    assert!(text.contains("[REDACTED:MULTI]"), "{text}");
    assert!(text.contains("line: -----BEGIN KEY-----") || text.contains("line: [REDACTED:MULTI]"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_step_cannot_get_a_secret_out_through_its_output() {
    let report = run(guests::LEAK_SECRET, r#"{"mode":"output"}"#, leak_secrets()).await;
    let output = report.outcome.as_ref().expect("output stays valid JSON");
    let _: serde_json::Value = serde_json::from_str(output).unwrap();
    assert_no_leak(output, "the output");
    assert!(output.contains("[REDACTED:SECRET]"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_step_cannot_get_a_secret_out_through_its_error() {
    let report = run(guests::LEAK_SECRET, r#"{"mode":"error"}"#, leak_secrets()).await;
    let Err(RunFailure::StepError(error)) = &report.outcome else {
        panic!("{:?}", report.outcome);
    };
    let details = serde_json::to_string(&error.details).unwrap();
    assert_no_leak(&error.message, "the error");
    assert_no_leak(&details, "the error's details");
    assert!(
        error.message.contains("failed with [REDACTED:SECRET]"),
        "{error}"
    );
    assert!(details.contains("[REDACTED:SECRET]"), "{details}");
}

#[test]
fn airlock_run_masks_a_secret_on_stdout_stderr_and_output() {
    let secret_arg = format!("SECRET={SECRET}");
    let multi_arg = format!("MULTI={MULTI}");
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("airlock.toml");
    std::fs::write(
        &manifest,
        "name = \"leak-secret\"\nsecrets = [\"SECRET\", \"MULTI\"]\nreveal = [\"SECRET\", \"MULTI\"]\n",
    )
    .unwrap();
    for mode in ["log", "output", "error"] {
        let out = Command::new(env!("CARGO_BIN_EXE_airlock-under-test"))
            .args([
                "run",
                guests::LEAK_SECRET,
                "--manifest",
                manifest.to_str().unwrap(),
            ])
            .args(["--secret", &secret_arg, "--secret", &multi_arg])
            .args(["--input", &format!(r#"{{"mode":"{mode}"}}"#)])
            .args(["--data-dir", dir.path().join("none").to_str().unwrap()])
            .env("AIRLOCK_CACHE_DIR", test_cache_dir())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_no_leak(&stdout, &format!("stdout ({mode})"));
        assert_no_leak(&stderr, &format!("stderr ({mode})"));
        assert!(
            stdout.contains("[REDACTED:SECRET]") || stderr.contains("[REDACTED:SECRET]"),
            "{mode}: {stdout}{stderr}"
        );
    }
}

#[test]
fn echo_secret_shows_the_marker_everywhere_the_value_was() {
    let value = "tok_live_5Yq2Zx8Wv4Lm";
    let out = Command::new(env!("CARGO_BIN_EXE_airlock-under-test"))
        .args(["run", examples::ECHO_SECRET, "--input", "{}"])
        .args([
            "--manifest",
            concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../examples/echo-secret/airlock.toml"
            ),
        ])
        .args(["--secret", &format!("TOKEN={value}")])
        .env("AIRLOCK_CACHE_DIR", test_cache_dir())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(stdout.trim(), r#"{"token":"[REDACTED:TOKEN]"}"#);
    assert!(
        stderr.contains("[stdout] stdout sees the token: [REDACTED:TOKEN]"),
        "{stderr}"
    );
    assert!(
        stderr.contains("[INFO] the log sees the token: [REDACTED:TOKEN]"),
        "{stderr}"
    );
    assert!(!stdout.contains(value) && !stderr.contains(value));
}

#[test]
fn without_a_manifest_nothing_is_granted() {
    let out = Command::new(env!("CARGO_BIN_EXE_airlock-under-test"))
        .args(["run", examples::ECHO_SECRET, "--input", "{}"])
        .args(["--secret", "TOKEN=tok_live_5Yq2Zx8Wv4Lm"])
        .env("AIRLOCK_CACHE_DIR", test_cache_dir())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("not granted by the step's manifest"),
        "{stderr}"
    );
    assert!(stderr.contains("not-granted"), "{stderr}");
}

#[test]
fn granted_secrets_come_from_the_encrypted_store() {
    let dir = tempfile::tempdir().unwrap();
    let key = String::from_utf8(
        Command::new(env!("CARGO_BIN_EXE_airlock-under-test"))
            .arg("keygen")
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let data = dir.path().to_str().unwrap();
    let set = Command::new(env!("CARGO_BIN_EXE_airlock-under-test"))
        .args([
            "secrets",
            "set",
            "SIGNING_KEY",
            "--value",
            "stored_key_987654",
            "--data-dir",
            data,
        ])
        .env("AIRLOCK_MASTER_KEY", key.trim())
        .output()
        .unwrap();
    assert!(
        set.status.success(),
        "{}",
        String::from_utf8_lossy(&set.stderr)
    );
    let out = Command::new(env!("CARGO_BIN_EXE_airlock-under-test"))
        .args([
            "run",
            examples::SIGN_PAYLOAD,
            "--input",
            r#"{"payload":"p"}"#,
            "--data-dir",
            data,
        ])
        .args([
            "--manifest",
            concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../examples/sign-payload/airlock.toml"
            ),
        ])
        .env("AIRLOCK_MASTER_KEY", key.trim())
        .env("AIRLOCK_CACHE_DIR", test_cache_dir())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(b"stored_key_987654").unwrap();
    mac.update(b"p");
    let expected: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let out: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out["signature"], expected);
}
