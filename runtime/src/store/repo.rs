//! The storage seam: what the stores need from a database, as async
//! repository traits, with one implementation per backend
//! ([`super::sqlite`], [`super::postgres`]).
//!
//! Why the line sits here: everything that decides *what* is stored — the
//! model, validation, AEAD sealing, hashing of credentials, ids — lives in
//! the stores above this seam ([`super::SecretStore`] and its siblings) and
//! is the same for every backend. Below it are rows: a repository method
//! stores, reads or deletes what it is given, and owns only what needs the
//! database to be correct under concurrent writers — upserts, compare-and-
//! swap updates, "check then delete" in one transaction. So the two
//! backends differ only in SQL, and one conformance suite
//! (`tests/tests/store_conformance.rs`) holds both to the same behaviour.
//!
//! Every method takes plain values (`now` included, so tests and both
//! backends agree on time) and returns [`Result`]; a backend's own error
//! becomes [`StoreError::Database`].

use std::time::Duration;

use async_trait::async_trait;

use super::accounts::{AccountFilter, AccountMeta, AccountStatus};
use super::connect::{ConnectTokenRow, OAuthStateRow};
use super::console_sessions::SessionRow;
use super::crypto::Sealed;
use super::platform::{AuditEntry, CredentialMeta, Project};
use super::queue::{
    Cancel, ClaimedRun, Enqueued, GroupClaim, Lease, NewQueuedRun, QueueCaps, RetryAt,
};
use super::runs::{RunFilter, RunPoint, RunRecord};
use super::schedules::{Advance, ScheduleRecord};
use super::steps::{CurrentVersion, SetCurrent, StepMeta, VersionMeta};
use super::triggers::TriggerRecord;
use super::usage::UsageRow;
use super::webhooks::{Attempt, WebhookRow};
use super::{Result, SecretMeta, SetOutcome};

/// Every repository of one database. Cheap to share: `Arc<dyn Database>`.
pub trait Database:
    SecretRepo
    + AccountRepo
    + PlatformRepo
    + StepRepo
    + RunRepo
    + QueueRepo
    + TriggerRepo
    + SealedRepo
    + CoordinationRepo
    + ChangeRepo
    + ConnectRepo
    + WebhookRepo
    + UsageRepo
    + ScheduleRepo
    + LiveLogRepo
    + ConsoleRepo
    + CredentialUseRepo
    + Send
    + Sync
    + std::fmt::Debug
{
    /// `sqlite` or `postgres`, for logs and `/readyz`.
    fn backend(&self) -> Backend;
    /// Closes every connection.
    fn close(&self) -> futures_util::future::BoxFuture<'_, ()>;
    /// The concrete backend, for tests that look at its rows.
    fn as_any(&self) -> &dyn std::any::Any;
}

/// Which backend a [`Database`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// Secrets, sealed by the caller.
#[async_trait]
pub trait SecretRepo {
    /// Inserts or replaces the sealed value of `project`/`name` in one
    /// statement; `created_at` of an existing secret is kept.
    async fn put_secret(
        &self,
        project: &str,
        name: &str,
        sealed: &Sealed,
        now: i64,
    ) -> Result<SetOutcome>;
    async fn get_secret(&self, project: &str, name: &str) -> Result<Option<Sealed>>;
    /// The sealed values of those of `names` that exist, in one query.
    async fn get_secrets(&self, project: &str, names: &[String]) -> Result<Vec<(String, Sealed)>>;
    /// Names and dates, by name.
    async fn list_secrets(&self, project: &str) -> Result<Vec<SecretMeta>>;
    async fn delete_secret(&self, project: &str, name: &str) -> Result<bool>;
}

/// An account row: its metadata in clear and its credentials sealed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountRow {
    pub meta: AccountMeta,
    pub sealed: Sealed,
}

/// Connected accounts.
#[async_trait]
pub trait AccountRepo {
    async fn insert_account(&self, row: &AccountRow) -> Result<()>;
    async fn get_account(&self, project: &str, id: &str) -> Result<Option<AccountRow>>;
    async fn get_account_meta(&self, project: &str, id: &str) -> Result<Option<AccountMeta>>;
    /// The account `id` of `external_user_id` (an `acc_` id), or that user's
    /// newest account of the app `app` (creation time, then insertion order).
    async fn find_account(
        &self,
        project: &str,
        external_user_id: &str,
        app_or_id: &str,
    ) -> Result<Option<AccountRow>>;
    /// Newest first.
    async fn list_accounts(
        &self,
        project: &str,
        filter: &AccountFilter,
    ) -> Result<Vec<AccountMeta>>;
    async fn delete_account(&self, project: &str, id: &str) -> Result<bool>;
    async fn set_account_status(
        &self,
        project: &str,
        id: &str,
        status: AccountStatus,
        now: i64,
    ) -> Result<bool>;
    /// Replaces the sealed credentials, `expires_at` and `status` of an
    /// account only if its credentials are still sealed with
    /// `expected_nonce` (a compare-and-swap: a concurrent writer makes it
    /// return `false`, and the caller re-reads).
    #[allow(clippy::too_many_arguments)]
    async fn replace_account_credentials(
        &self,
        project: &str,
        id: &str,
        expected_nonce: &[u8],
        sealed: &Sealed,
        expires_at: Option<i64>,
        status: AccountStatus,
        now: i64,
    ) -> Result<bool>;
}

/// A stored credential's hash with its metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HashedCredential {
    pub meta: CredentialMeta,
    pub secret_hash: Vec<u8>,
}

/// An issued OAuth access token, found by its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRow {
    pub client_id: String,
    pub scopes: Vec<String>,
    pub project: Option<String>,
    pub expires_at: i64,
}

/// What a revocation did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revocation {
    Revoked,
    /// There was no such key or client.
    NotFound,
    /// Refused: it is the last unrestricted admin credential.
    LastAdmin,
}

/// Projects, API keys, OAuth clients and tokens (hashed), and the audit log.
#[async_trait]
pub trait PlatformRepo {
    /// Whether the database answers.
    async fn ping(&self) -> Result<()>;

    async fn insert_project(&self, name: &str, now: i64) -> Result<bool>;
    async fn list_projects(&self) -> Result<Vec<Project>>;
    async fn get_project(&self, name: &str) -> Result<Option<Project>>;

    async fn insert_api_key(&self, key: &HashedCredential) -> Result<()>;
    /// Creation order.
    async fn list_api_keys(&self) -> Result<Vec<CredentialMeta>>;
    async fn get_api_key(&self, id: &str) -> Result<Option<HashedCredential>>;
    /// Deletes the key unless it is the last unrestricted admin credential
    /// (keys and clients together), checked and deleted atomically.
    async fn delete_api_key(&self, id: &str) -> Result<Revocation>;
    /// Replaces the key's secret hash and ends the console sessions signed
    /// in with it, in one transaction; `false` when there is no such key.
    async fn rotate_api_key(&self, id: &str, secret_hash: &[u8]) -> Result<bool>;

    async fn insert_client(&self, client: &HashedCredential) -> Result<()>;
    async fn list_clients(&self) -> Result<Vec<CredentialMeta>>;
    async fn get_client(&self, id: &str) -> Result<Option<HashedCredential>>;
    /// Replaces the secret hash and deletes every token of the client, in
    /// one transaction; `false` when there is no such client.
    async fn rotate_client_secret(&self, id: &str, secret_hash: &[u8]) -> Result<bool>;
    /// Deletes the client and its tokens, unless it is the last unrestricted
    /// admin credential.
    async fn delete_client(&self, id: &str) -> Result<Revocation>;

    async fn insert_token(&self, token_hash: &[u8], token: &TokenRow) -> Result<()>;
    async fn get_token(&self, token_hash: &[u8]) -> Result<Option<TokenRow>>;
    async fn delete_tokens_expired_before(&self, cutoff: i64) -> Result<u64>;

    async fn insert_audit(
        &self,
        at: i64,
        method: &str,
        route: &str,
        key_id: Option<&str>,
        reason: &str,
    ) -> Result<()>;
    /// Newest first.
    async fn list_audit(&self, limit: u32) -> Result<Vec<AuditEntry>>;
}

/// A new step version.
#[derive(Debug, Clone, Copy)]
pub struct NewVersion<'a> {
    pub project: &'a str,
    pub step: &'a str,
    pub digest: &'a str,
    pub component_digest: &'a str,
    pub component: &'a [u8],
    pub manifest: &'a str,
}

/// Step versions (components kept apart from the metadata read per run).
#[async_trait]
pub trait StepRepo {
    /// Stores the version (if new) and makes it current, in one
    /// transaction; `true` when the version was new.
    async fn put_version(&self, version: NewVersion<'_>, now: i64) -> Result<bool>;
    /// By name.
    async fn list_steps(&self, project: &str) -> Result<Vec<StepMeta>>;
    /// The step, its current manifest and its versions (newest first).
    async fn get_step(
        &self,
        project: &str,
        step: &str,
    ) -> Result<Option<(StepMeta, String, Vec<VersionMeta>)>>;
    /// The current version without its component bytes.
    async fn current_version(&self, project: &str, step: &str) -> Result<Option<CurrentVersion>>;
    /// Any stored version without its component bytes.
    async fn version(
        &self,
        project: &str,
        step: &str,
        digest: &str,
    ) -> Result<Option<CurrentVersion>>;
    /// Makes the stored version `digest` current, in one transaction that
    /// holds the step's row (a concurrent upload or delete waits for it);
    /// `updated_at` moves only when the current version changes.
    async fn set_current_version(
        &self,
        project: &str,
        step: &str,
        digest: &str,
        now: i64,
    ) -> Result<SetCurrent>;
    async fn component(&self, project: &str, step: &str, digest: &str) -> Result<Option<Vec<u8>>>;
    /// Deletes the step and all its versions; `false` when there was none.
    async fn delete_step(&self, project: &str, step: &str) -> Result<bool>;
}

/// Run records.
#[async_trait]
pub trait RunRepo {
    async fn insert_run(&self, run: &RunRecord) -> Result<()>;
    /// Stores every run of `runs` in one transaction: all or none.
    async fn insert_runs(&self, runs: &[RunRecord]) -> Result<()>;
    async fn get_run(&self, project: &str, id: &str) -> Result<Option<RunRecord>>;
    /// Newest first (`created_at`, then `id`, descending).
    async fn list_runs(&self, project: &str, filter: &RunFilter) -> Result<Vec<RunRecord>>;
    /// At most `limit` runs created at or after `since_ms`, newest first,
    /// as time, outcome and duration (the console's chart).
    async fn run_points(&self, project: &str, since_ms: i64, limit: u32) -> Result<Vec<RunPoint>>;
    /// Deletes at most `batch` finished runs created before `cutoff_ms`;
    /// how many. A queued or running run is never deleted: it has not
    /// happened yet, whatever its age.
    async fn delete_runs_before(&self, cutoff_ms: i64, batch: u32) -> Result<u64>;
}

/// When credentials were last used ([`super::credential_use`]).
#[async_trait]
pub trait CredentialUseRepo {
    /// Upserts `(kind, id, at)` rows in one statement; a stored time only
    /// moves forward.
    async fn mark_credentials_used(&self, rows: &[(&'static str, &str, i64)]) -> Result<()>;
    /// `(id, last_used_at)` of those of `ids` that have a row.
    async fn credentials_last_used(&self, kind: &str, ids: &[String])
    -> Result<Vec<(String, i64)>>;
}

/// Sessions of the operator console ([`super::console_sessions`]), found by
/// the hash of their cookie.
#[async_trait]
pub trait ConsoleRepo {
    async fn insert_console_session(&self, session_hash: &[u8], row: &SessionRow) -> Result<()>;
    async fn get_console_session(&self, session_hash: &[u8]) -> Result<Option<SessionRow>>;
    async fn delete_console_session(&self, session_hash: &[u8]) -> Result<()>;
    /// Deletes the sessions that expired at or before `now`; how many.
    async fn delete_console_sessions_expired(&self, now: i64) -> Result<u64>;
}

/// Usage sums over run records ([`super::usage`]).
#[async_trait]
pub trait UsageRepo {
    /// Per step and status (ordered so), the count of `project`'s runs
    /// created in `[from_ms, to_ms)` and the sums of their stats, in one
    /// aggregate query.
    async fn usage(&self, project: &str, from_ms: i64, to_ms: i64) -> Result<Vec<UsageRow>>;
}

/// The run queue: queued runs are rows of the run table
/// ([`super::queue`]). Every method is one atomic statement (or one
/// transaction), so concurrent workers on many nodes never share an
/// attempt.
#[async_trait]
pub trait QueueRepo {
    /// Inserts the run `queued` (attempts 0), committed before returning;
    /// if a run of the same project and step has the same idempotency key,
    /// writes nothing and returns that run.
    async fn enqueue_run(&self, run: &NewQueuedRun) -> Result<Enqueued>;
    /// Claims the oldest `queued` run due at `now_ms` for `owner`: status
    /// `running`, attempts + 1, leased until `now_ms + lease_ms`.
    /// Concurrent callers never get the same run.
    async fn claim_run(
        &self,
        owner: &str,
        now_ms: i64,
        lease_ms: i64,
    ) -> Result<Option<ClaimedRun>>;
    /// Sets the lease of `owner`'s attempt `attempt` to `until_ms` if it
    /// still holds it.
    async fn renew_run_lease(
        &self,
        id: &str,
        owner: &str,
        attempt: i64,
        until_ms: i64,
    ) -> Result<Lease>;
    /// Writes the outcome in `record` (status, digest, stats, output,
    /// error, logs, calls, input) and ends the lease, only if `owner` still
    /// holds attempt `attempt`; `false` and nothing written otherwise.
    async fn finish_run(&self, record: &RunRecord, owner: &str, attempt: i64) -> Result<bool>;
    /// Every `running` run whose lease ended before `now_ms`: back to
    /// `queued` (due at once), `cancelled` if a cancel was asked, or
    /// `failed` when it has had `max_attempts` attempts. How many.
    async fn requeue_expired_runs(&self, now_ms: i64, max_attempts: i64) -> Result<u64>;
    /// Cancels a queued run at once, or flags a running one.
    async fn cancel_run(&self, project: &str, id: &str) -> Result<Cancel>;
    /// The `(project, step)` of the oldest `queued` run due at `now_ms`
    /// whose pair is not in `skip`.
    async fn next_due_step(
        &self,
        now_ms: i64,
        skip: &[(String, String)],
    ) -> Result<Option<(String, String)>>;
    /// As [`claim_run`](Self::claim_run), among `project`/`step`'s runs,
    /// unless `step_caps` or the project's caps are reached (checked and
    /// claimed atomically with respect to every other capped claim).
    async fn claim_step_run(
        &self,
        owner: &str,
        now_ms: i64,
        lease_ms: i64,
        project: &str,
        step: &str,
        step_caps: &QueueCaps,
    ) -> Result<GroupClaim>;
    /// Back to `queued` at `not_before`, the summary appended to its
    /// `attempt_history`, only if `owner` holds the attempt and no cancel
    /// was asked; `false` and nothing written otherwise.
    async fn retry_run(&self, retry: &RetryAt<'_>) -> Result<bool>;
    /// A run's `attempt_history` (JSON array text), if any.
    async fn run_attempt_history(&self, project: &str, id: &str) -> Result<Option<String>>;
    /// Replaces a project's queue caps (all `None` deletes them).
    async fn set_project_queue_caps(&self, project: &str, caps: &QueueCaps) -> Result<()>;
    /// A project's queue caps (all `None` when unset).
    async fn project_queue_caps(&self, project: &str) -> Result<QueueCaps>;
    /// Deletes recorded starts before `before_ms`; how many.
    async fn prune_run_starts(&self, before_ms: i64) -> Result<u64>;
}

/// HTTP triggers.
#[async_trait]
pub trait TriggerRepo {
    async fn insert_trigger(&self, trigger: &TriggerRecord) -> Result<()>;
    async fn get_trigger(&self, id: &str) -> Result<Option<TriggerRecord>>;
    /// Creation order.
    async fn list_triggers(&self, project: &str, step: &str) -> Result<Vec<TriggerRecord>>;
    async fn delete_trigger(&self, project: &str, step: &str, id: &str) -> Result<bool>;
    async fn delete_triggers_of_step(&self, project: &str, step: &str) -> Result<u64>;
}

/// Where a sealed value lives, for re-sealing under a new master key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SealedOwner {
    Secret {
        project: String,
        name: String,
    },
    /// An account's credentials; its metadata is the associated data.
    Account(Box<AccountMeta>),
}

/// One sealed value of any table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedRecord {
    pub owner: SealedOwner,
    pub sealed: Sealed,
}

/// Every sealed value, across tables: what master-key rotation needs.
#[async_trait]
pub trait SealedRepo {
    /// The distinct key ids values are sealed under.
    async fn key_ids_in_use(&self) -> Result<Vec<String>>;
    /// Up to `limit` values not sealed under `key_id`, in a stable order.
    async fn sealed_not_under(&self, key_id: &str, limit: u32) -> Result<Vec<SealedRecord>>;
    /// Replaces one value with `resealed`, only if it still holds the nonce
    /// it was read with (a concurrent write wins; `false`).
    async fn reseal(&self, record: &SealedRecord, resealed: &Sealed) -> Result<bool>;
}

/// A held lock; dropping it releases the lock (on PostgreSQL, the
/// transaction holding the advisory lock rolls back, so a node that dies
/// frees it with its session).
pub type LockGuard = Box<dyn Send + Sync>;

/// What several nodes on one database coordinate through. On SQLite (one
/// node) locks are taken in the process and shared rate limits are kept in
/// the database like everything else.
#[async_trait]
pub trait CoordinationRepo {
    /// Waits for the lock `key` (e.g. one account's token refresh) and
    /// holds it until the guard is dropped. `hold` is the longest the work
    /// under the lock may take: a waiter waits up to twice that, whatever
    /// the database's statement timeout (a holder still within its bound is
    /// not a failure), and on PostgreSQL a holder that keeps the lock idle
    /// for longer than `hold` (a hung node, not only a dead one) loses it.
    async fn lock(&self, key: &str, hold: Duration) -> Result<LockGuard>;

    /// Claims the tick starting at `tick` (Unix ms) of the periodic job
    /// `job`: `true` for exactly one caller per job and tick, across every
    /// node (one conditional upsert, no lock held).
    async fn claim_tick(&self, job: &str, tick: i64) -> Result<bool>;

    /// GCRA on a stored theoretical arrival time, in one statement: counts
    /// one request for `key` if it conforms and returns `None`; otherwise
    /// counts nothing and returns the milliseconds to wait. `interval_ms`
    /// is the time one unit of capacity takes to return, `tolerance_ms`
    /// the burst allowance (`interval × (max − 1)`).
    async fn rate_acquire(
        &self,
        key: &str,
        interval_ms: i64,
        tolerance_ms: i64,
        now_ms: i64,
    ) -> Result<Option<i64>>;

    /// The wait [`rate_acquire`](Self::rate_acquire) would answer, without
    /// counting.
    async fn rate_peek(&self, key: &str, tolerance_ms: i64, now_ms: i64) -> Result<Option<i64>>;

    /// Forgets rate-limit keys whose arrival time is before `now_ms` (they
    /// are indistinguishable from keys never seen).
    async fn rate_sweep(&self, now_ms: i64) -> Result<u64>;
}

/// A write other readers' caches must see: what it names is to be read
/// again. Published by the stores after each write that a cache could hold
/// ([`super::cache`]); on PostgreSQL carried to every node by
/// `LISTEN/NOTIFY`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// An API key was revoked.
    ApiKey(String),
    /// An OAuth client's secret was rotated or the client deleted (its
    /// tokens with it).
    Client(String),
    /// A step got a new current version or was deleted (its triggers too).
    Step { project: String, step: String },
    /// A trigger was created or deleted.
    Trigger(String),
    /// A secret was set or deleted.
    Secret { project: String, name: String },
    /// An account of the project was created, changed or deleted.
    Account { project: String },
    /// A run was queued: workers look for work (no cache holds runs).
    RunQueued,
    /// A running run is to be cancelled: the worker running it stops it.
    RunCancel(String),
    /// Anything may have changed (a listener reconnected or fell behind).
    All,
    /// Live log lines of run `id` were appended, or the run finished and
    /// they were deleted: its log streams read again (no cache holds them).
    RunLog(String),
}

impl Change {
    /// The text carried by `NOTIFY` (names never hold `/` or NUL).
    pub fn encode(&self) -> String {
        match self {
            Change::ApiKey(id) => format!("k/{id}"),
            Change::Client(id) => format!("c/{id}"),
            Change::Step { project, step } => format!("s/{project}/{step}"),
            Change::Trigger(id) => format!("t/{id}"),
            Change::Secret { project, name } => format!("x/{project}/{name}"),
            Change::Account { project } => format!("a/{project}"),
            Change::RunQueued => "q".to_owned(),
            Change::RunCancel(id) => format!("r/{id}"),
            Change::All => "*".to_owned(),
            Change::RunLog(id) => format!("l/{id}"),
        }
    }

    /// The change `text` names; anything unreadable reads as [`Change::All`]
    /// (a flush is always safe).
    pub fn decode(text: &str) -> Change {
        let mut parts = text.splitn(3, '/');
        let (kind, a, b) = (parts.next(), parts.next(), parts.next());
        let two = |f: fn(String, String) -> Change| match (a, b) {
            (Some(a), Some(b)) => f(a.to_owned(), b.to_owned()),
            _ => Change::All,
        };
        match (kind, a, b) {
            (Some("k"), Some(id), None) => Change::ApiKey(id.to_owned()),
            (Some("c"), Some(id), None) => Change::Client(id.to_owned()),
            (Some("t"), Some(id), None) => Change::Trigger(id.to_owned()),
            (Some("q"), None, None) => Change::RunQueued,
            (Some("r"), Some(id), None) => Change::RunCancel(id.to_owned()),
            (Some("a"), Some(project), None) => Change::Account {
                project: project.to_owned(),
            },
            (Some("s"), ..) => two(|project, step| Change::Step { project, step }),
            (Some("x"), ..) => two(|project, name| Change::Secret { project, name }),
            (Some("l"), Some(id), None) => Change::RunLog(id.to_owned()),
            _ => Change::All,
        }
    }
}

/// The change bus: every handle on a database hears every change published
/// through any handle (in this process; on PostgreSQL, on every node).
#[async_trait]
pub trait ChangeRepo {
    /// Tells every reader's cache that `change` happened. Best effort: a
    /// lost message is bounded by the caches' time-to-live.
    async fn publish(&self, change: &Change) -> Result<()>;
    /// The changes published from now on.
    fn subscribe(&self) -> tokio::sync::broadcast::Receiver<Change>;
}

/// Connect tokens (hashed), their browser sessions and pending OAuth
/// states ([`super::connect`]).
#[async_trait]
pub trait ConnectRepo {
    async fn insert_connect_token(&self, row: &ConnectTokenRow) -> Result<()>;
    async fn get_connect_token(&self, id: &str) -> Result<Option<ConnectTokenRow>>;
    async fn find_connect_token(&self, token_hash: &[u8]) -> Result<Option<ConnectTokenRow>>;
    /// Deletes the token with its sessions and states; `false` when there
    /// was none in `project`.
    async fn delete_connect_token(&self, project: &str, id: &str) -> Result<bool>;
    /// Counts one flow, in one conditional update: `false` (and nothing
    /// counted) when the token is used, expired at `now`, or has started
    /// `max_flows` already.
    async fn start_connect_flow(&self, id: &str, max_flows: i64, now: i64) -> Result<bool>;
    /// Marks the token used by `account_id`, in one conditional update:
    /// `false` when it was used already or is expired at `now`.
    async fn spend_connect_token(&self, id: &str, account_id: &str, now: i64) -> Result<bool>;
    async fn insert_connect_session(
        &self,
        session_hash: &[u8],
        token_id: &str,
        expires_at: i64,
    ) -> Result<()>;
    /// The token id and expiry of a session.
    async fn get_connect_session(&self, session_hash: &[u8]) -> Result<Option<(String, i64)>>;
    async fn insert_oauth_state(&self, row: &OAuthStateRow) -> Result<()>;
    /// Deletes and returns the state (`DELETE … RETURNING`): of two callers
    /// with the same state, exactly one gets it. Expired states are
    /// returned too; the caller tells them apart.
    async fn take_oauth_state(&self, state_hash: &[u8]) -> Result<Option<OAuthStateRow>>;
    /// The webhook URI of the newest token that stored `account_id`.
    async fn connect_webhook_for_account(
        &self,
        project: &str,
        account_id: &str,
    ) -> Result<Option<String>>;
    /// Deletes sessions and states expired at `now`; how many.
    async fn delete_connect_expired(&self, now: i64) -> Result<u64>;
}

/// The webhook outbox ([`super::webhooks`]).
#[async_trait]
pub trait WebhookRepo {
    async fn enqueue_webhook(&self, row: &WebhookRow) -> Result<()>;
    /// Leases up to `limit` rows that are neither delivered nor given up,
    /// due at `now_ms` and not leased beyond it, to `owner` until
    /// `now_ms + lease_ms`, counting an attempt on each, oldest due first.
    /// Concurrent callers never get the same row.
    async fn claim_webhooks(
        &self,
        owner: &str,
        now_ms: i64,
        lease_ms: i64,
        limit: u32,
    ) -> Result<Vec<WebhookRow>>;
    /// Ends `owner`'s lease with the attempt's outcome; `false` (and nothing
    /// changed) if the row is not leased to `owner`.
    async fn finish_webhook(
        &self,
        id: &str,
        owner: &str,
        attempt: &Attempt,
        now_ms: i64,
    ) -> Result<bool>;
}

/// Cron schedules ([`super::schedules`]). Times are Unix milliseconds.
#[async_trait]
pub trait ScheduleRepo {
    /// Inserts the schedule unless its project has `max_per_project`
    /// already, counted and inserted atomically; `false` then.
    async fn insert_schedule(
        &self,
        schedule: &ScheduleRecord,
        max_per_project: i64,
    ) -> Result<bool>;
    async fn get_schedule(&self, project: &str, id: &str) -> Result<Option<ScheduleRecord>>;
    /// Creation order; of one step if `step`.
    async fn list_schedules(
        &self,
        project: &str,
        step: Option<&str>,
    ) -> Result<Vec<ScheduleRecord>>;
    /// Writes cron, timezone, input, enabled and updated_at (and
    /// next_fire_at when `reschedule`); `false` when there is no such row.
    async fn update_schedule(&self, schedule: &ScheduleRecord, reschedule: bool) -> Result<bool>;
    async fn delete_schedule(&self, project: &str, id: &str) -> Result<bool>;
    async fn delete_schedules_of_step(&self, project: &str, step: &str) -> Result<u64>;
    /// Enabled schedules with `next_fire_at <= now_ms`, oldest tick first.
    async fn due_schedules(&self, now_ms: i64, limit: u32) -> Result<Vec<ScheduleRecord>>;
    /// The least `next_fire_at` of the enabled schedules.
    async fn earliest_schedule_fire(&self) -> Result<Option<i64>>;
    /// Compare-and-set: sets `next_fire_at`, `last_fired_at` and
    /// `last_run_id` only if `next_fire_at` is still `expected` and the
    /// schedule is enabled; whether it did.
    async fn advance_schedule(&self, advance: &Advance<'_>) -> Result<bool>;
}

/// Live log lines of running runs, and what completion callbacks need
/// ([`super::live_logs`]).
#[async_trait]
pub trait LiveLogRepo {
    /// Appends `(seq, line)` rows of run `run_id`; a row whose seq is
    /// stored already is kept as it is (a batch sent twice is harmless).
    async fn append_run_log_lines(
        &self,
        run_id: &str,
        lines: &[(i64, String)],
        now_ms: i64,
    ) -> Result<()>;
    /// Up to `limit` rows of `run_id` with seq above `after`, in seq order.
    async fn run_log_lines_after(
        &self,
        run_id: &str,
        after: i64,
        limit: u32,
    ) -> Result<Vec<(i64, String)>>;
    /// Deletes every row of `run_id`; how many.
    async fn delete_run_log_lines(&self, run_id: &str) -> Result<u64>;
    /// Deletes rows written before `cutoff_ms`; how many.
    async fn delete_run_log_lines_before(&self, cutoff_ms: i64) -> Result<u64>;
    /// The `callback_url` stored with run `id` of `project`.
    async fn run_callback_url(&self, project: &str, id: &str) -> Result<Option<String>>;
    /// Queues a webhook unless one with its id exists; `true` if written.
    async fn enqueue_webhook_once(&self, row: &WebhookRow) -> Result<bool>;
}
