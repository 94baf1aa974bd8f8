//! Rows for the suite. The repositories store what they are given, so
//! sealed values here are opaque bytes (with a NUL and a 0xFF, to prove
//! they are kept as bytes), each with a nonce no other call returns, as
//! sealing gives.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use airlock_runtime::store::platform::CredentialMeta;
use airlock_runtime::store::repo::{AccountRow, HashedCredential};
use airlock_runtime::store::runs::RunRecord;
use airlock_runtime::store::triggers::TriggerRecord;
use airlock_runtime::store::{AccountMeta, AccountStatus, Sealed};

static NONCES: AtomicU64 = AtomicU64::new(1);

/// A sealed value under `key_id` with a fresh nonce.
pub fn sealed(key_id: &str, text: &str) -> Sealed {
    let n = NONCES.fetch_add(1, Ordering::Relaxed);
    let mut nonce = [0u8; 12];
    nonce[4..].copy_from_slice(&n.to_be_bytes());
    let mut ciphertext = text.as_bytes().to_vec();
    ciphertext.extend_from_slice(&[0, 0xff]);
    Sealed {
        key_id: key_id.to_owned(),
        nonce,
        ciphertext,
    }
}

/// A healthy account of `project` without custom fields or expiry.
pub fn account(id: &str, project: &str, user: &str, app: &str, created_at: i64) -> AccountRow {
    AccountRow {
        meta: AccountMeta {
            id: id.to_owned(),
            project: project.to_owned(),
            external_user_id: user.to_owned(),
            app: app.to_owned(),
            custom_fields: BTreeMap::new(),
            expires_at: None,
            status: AccountStatus::Healthy,
            created_at,
            updated_at: created_at,
        },
        sealed: sealed("k1", id),
    }
}

pub fn scopes(s: &[&str]) -> Vec<String> {
    s.iter().map(|s| (*s).to_owned()).collect()
}

/// An API key or OAuth client; its "hash" is derived from its id.
pub fn credential(
    id: &str,
    scope: &[&str],
    project: Option<&str>,
    created_at: i64,
) -> HashedCredential {
    HashedCredential {
        meta: CredentialMeta {
            id: id.to_owned(),
            name: format!("name of {id}"),
            scopes: scopes(scope),
            project: project.map(str::to_owned),
            created_at,
            expires_at: None,
        },
        secret_hash: format!("hash of {id}").into_bytes(),
    }
}

/// An unrestricted admin credential (scope `admin` among others).
pub fn admin(id: &str, created_at: i64) -> HashedCredential {
    credential(id, &["runs:read", "admin"], None, created_at)
}

/// A metadata-only (`nostore`) run.
pub fn run(id: &str, project: &str, step: &str, status: &str, created_at: i64) -> RunRecord {
    RunRecord {
        id: id.to_owned(),
        project: project.to_owned(),
        step: step.to_owned(),
        digest: "sha256:00".to_owned(),
        status: status.to_owned(),
        created_at,
        duration_ms: 1,
        cpu_ticks: 2,
        memory_peak_bytes: 3,
        log_bytes: 4,
        memory_kib_ms: 5,
        http_response_bytes: 6,
        input: None,
        output: None,
        error: None,
        logs: None,
        http_calls: None,
        attempts: 1,
        external_user_id: None,
        rerun_of: None,
        started_at: None,
    }
}

pub fn trigger(id: &str, project: &str, step: &str, created_at: i64) -> TriggerRecord {
    TriggerRecord {
        id: id.to_owned(),
        project: project.to_owned(),
        step: step.to_owned(),
        signature: None,
        nostore: false,
        digest: None,
        queued: false,
        created_at,
    }
}

/// Ids of anything with one, in order.
pub fn ids<T>(items: &[T], id: impl Fn(&T) -> &str) -> Vec<String> {
    items.iter().map(|i| id(i).to_owned()).collect()
}
