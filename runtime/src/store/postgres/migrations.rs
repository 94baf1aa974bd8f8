//! The PostgreSQL schema: its own ordered migrations, embedded in the
//! binary, applied at connect and recorded in `schema_version` (one row per
//! applied migration; the version is the highest). Versions count
//! PostgreSQL's list only; they have nothing to do with SQLite's
//! `user_version`.
//!
//! Why an advisory lock: several nodes may start at once against one
//! database. Each runs its migrations in one transaction that first takes
//! `pg_advisory_xact_lock` on a fixed key, so exactly one node migrates
//! while the others wait and then find nothing left to do. DDL is
//! transactional in PostgreSQL: a failed migration leaves nothing
//! half-applied, and the lock ends with the transaction, also when the node
//! dies.
//!
//! Types: every integer is `BIGINT` and keeps the unit of the SQLite column
//! (Unix seconds, or milliseconds for runs); blobs are `BYTEA`; JSON stays
//! `TEXT` (the stores hand JSON text through); where SQLite orders by
//! `rowid` for insertion order, a `seq` identity column does.
//! `rate_limits` has no index beyond its key, so a GCRA update stays a HOT
//! update of one small row.

use sqlx::postgres::PgPool;

use super::InternalLock;
use crate::store::{Result, StoreError};

/// Migrations in order; migration `i` brings the schema to version `i + 1`.
/// Append only: never edit one that has shipped.
const MIGRATIONS: &[&str] = &[
    // 1: secrets and connected accounts, sealed by the stores above.
    r#"CREATE TABLE secrets (
        project    TEXT COLLATE "C" NOT NULL,
        name       TEXT COLLATE "C" NOT NULL,
        key_id     TEXT COLLATE "C" NOT NULL,
        nonce      BYTEA  NOT NULL,
        ciphertext BYTEA  NOT NULL,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL,
        PRIMARY KEY (project, name)
    );
    CREATE TABLE accounts (
        id               TEXT COLLATE "C" NOT NULL PRIMARY KEY,
        seq              BIGINT GENERATED ALWAYS AS IDENTITY,
        project          TEXT COLLATE "C" NOT NULL,
        external_user_id TEXT COLLATE "C" NOT NULL,
        app              TEXT COLLATE "C" NOT NULL,
        key_id           TEXT COLLATE "C" NOT NULL,
        nonce            BYTEA  NOT NULL,
        ciphertext       BYTEA  NOT NULL,
        custom_fields    TEXT   NOT NULL,
        expires_at       BIGINT,
        status           TEXT   NOT NULL CHECK (status IN ('healthy', 'needs_reauth')),
        created_at       BIGINT NOT NULL,
        updated_at       BIGINT NOT NULL
    );
    CREATE INDEX accounts_by_user_app ON accounts (project, external_user_id, app);"#,
    // 2: platform auth: projects, API keys, OAuth clients and tokens (hashes
    // only), and the audit log of failed authentication.
    r#"CREATE TABLE projects (
        name       TEXT COLLATE "C" NOT NULL PRIMARY KEY,
        created_at BIGINT NOT NULL
    );
    CREATE TABLE api_keys (
        id          TEXT COLLATE "C" NOT NULL PRIMARY KEY,
        name        TEXT   NOT NULL,
        secret_hash BYTEA  NOT NULL,
        scopes      TEXT   NOT NULL,
        project     TEXT COLLATE "C",
        created_at  BIGINT NOT NULL
    );
    CREATE TABLE oauth_clients (
        id          TEXT COLLATE "C" NOT NULL PRIMARY KEY,
        seq         BIGINT GENERATED ALWAYS AS IDENTITY,
        name        TEXT   NOT NULL,
        secret_hash BYTEA  NOT NULL,
        scopes      TEXT   NOT NULL,
        project     TEXT COLLATE "C",
        created_at  BIGINT NOT NULL
    );
    CREATE TABLE oauth_tokens (
        token_hash BYTEA  NOT NULL PRIMARY KEY,
        client_id  TEXT COLLATE "C" NOT NULL REFERENCES oauth_clients (id) ON DELETE CASCADE,
        scopes     TEXT   NOT NULL,
        project    TEXT COLLATE "C",
        expires_at BIGINT NOT NULL
    );
    CREATE INDEX oauth_tokens_by_client ON oauth_tokens (client_id);
    CREATE INDEX oauth_tokens_by_expiry ON oauth_tokens (expires_at);
    CREATE TABLE auth_audit (
        id     BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        at     BIGINT NOT NULL,
        method TEXT   NOT NULL,
        route  TEXT   NOT NULL,
        key_id TEXT,
        reason TEXT   NOT NULL
    );"#,
    // 3: steps and runs. A version's metadata and its component live in two
    // tables, so reading a version for a run never touches component bytes.
    r#"CREATE TABLE step_versions (
        project          TEXT COLLATE "C" NOT NULL,
        step             TEXT COLLATE "C" NOT NULL,
        digest           TEXT COLLATE "C" NOT NULL,
        seq              BIGINT GENERATED ALWAYS AS IDENTITY,
        component_digest TEXT   NOT NULL,
        manifest         TEXT   NOT NULL,
        created_at       BIGINT NOT NULL,
        PRIMARY KEY (project, step, digest)
    );
    CREATE TABLE step_components (
        project   TEXT COLLATE "C" NOT NULL,
        step      TEXT COLLATE "C" NOT NULL,
        digest    TEXT COLLATE "C" NOT NULL,
        component BYTEA NOT NULL,
        PRIMARY KEY (project, step, digest),
        FOREIGN KEY (project, step, digest)
            REFERENCES step_versions (project, step, digest) ON DELETE CASCADE
    );
    CREATE TABLE steps (
        project        TEXT COLLATE "C" NOT NULL,
        step           TEXT COLLATE "C" NOT NULL,
        current_digest TEXT COLLATE "C" NOT NULL,
        updated_at     BIGINT NOT NULL,
        PRIMARY KEY (project, step)
    );
    CREATE TABLE runs (
        id                TEXT COLLATE "C" NOT NULL PRIMARY KEY,
        project           TEXT COLLATE "C" NOT NULL,
        step              TEXT COLLATE "C" NOT NULL,
        digest            TEXT   NOT NULL,
        status            TEXT   NOT NULL CHECK (status IN ('succeeded', 'failed')),
        created_at        BIGINT NOT NULL,
        duration_ms       BIGINT NOT NULL,
        cpu_ticks         BIGINT NOT NULL,
        memory_peak_bytes BIGINT NOT NULL,
        log_bytes         BIGINT NOT NULL,
        input             TEXT,
        output            TEXT,
        error             TEXT,
        logs              TEXT,
        http_calls        TEXT
    );
    CREATE INDEX runs_by_project_newest ON runs (project, created_at DESC, id DESC);
    CREATE INDEX runs_by_created_at ON runs (created_at);"#,
    // 4: HTTP triggers. `signature` names a secret, never holds its value.
    r#"CREATE TABLE triggers (
        id         TEXT COLLATE "C" NOT NULL PRIMARY KEY,
        project    TEXT COLLATE "C" NOT NULL,
        step       TEXT COLLATE "C" NOT NULL,
        signature  TEXT,
        nostore    BOOLEAN NOT NULL DEFAULT FALSE,
        created_at BIGINT  NOT NULL
    );
    CREATE INDEX triggers_by_step ON triggers (project, step);"#,
    // 5: coordination between nodes: GCRA arrival times and claimed ticks.
    r#"CREATE TABLE rate_limits (
        key    TEXT   NOT NULL PRIMARY KEY,
        tat_ms BIGINT NOT NULL
    );
    CREATE TABLE ticks (
        job     TEXT   NOT NULL PRIMARY KEY,
        tick_ms BIGINT NOT NULL
    );"#,
    // 6: Connect: tokens, sessions and states by the hash of their secret,
    // a state's PKCE verifier sealed; the webhook outbox with its leases.
    r#"CREATE TABLE connect_tokens (
        id                   TEXT COLLATE "C" NOT NULL PRIMARY KEY,
        project              TEXT COLLATE "C" NOT NULL,
        token_hash           BYTEA  NOT NULL UNIQUE,
        external_user_id     TEXT COLLATE "C" NOT NULL,
        apps                 TEXT,
        success_redirect_uri TEXT,
        error_redirect_uri   TEXT,
        webhook_uri          TEXT,
        allowed_origins      TEXT   NOT NULL,
        account_id           TEXT COLLATE "C",
        expires_at           BIGINT NOT NULL,
        created_at           BIGINT NOT NULL,
        flows_started        BIGINT NOT NULL DEFAULT 0,
        used_at              BIGINT,
        used_account_id      TEXT COLLATE "C"
    );
    CREATE INDEX connect_tokens_by_account ON connect_tokens (project, used_account_id);
    CREATE TABLE connect_sessions (
        session_hash BYTEA  NOT NULL PRIMARY KEY,
        token_id     TEXT COLLATE "C" NOT NULL REFERENCES connect_tokens (id) ON DELETE CASCADE,
        expires_at   BIGINT NOT NULL
    );
    CREATE INDEX connect_sessions_by_token ON connect_sessions (token_id);
    CREATE TABLE connect_oauth_states (
        state_hash       BYTEA  NOT NULL PRIMARY KEY,
        token_id         TEXT COLLATE "C" NOT NULL REFERENCES connect_tokens (id) ON DELETE CASCADE,
        project          TEXT COLLATE "C" NOT NULL,
        app              TEXT COLLATE "C" NOT NULL,
        external_user_id TEXT COLLATE "C" NOT NULL,
        binding_hash     BYTEA  NOT NULL,
        custom_fields    TEXT   NOT NULL,
        key_id           TEXT COLLATE "C",
        nonce            BYTEA,
        ciphertext       BYTEA,
        expires_at       BIGINT NOT NULL,
        created_at       BIGINT NOT NULL
    );
    CREATE INDEX connect_oauth_states_by_token ON connect_oauth_states (token_id);
    CREATE TABLE webhook_outbox (
        id              TEXT COLLATE "C" NOT NULL PRIMARY KEY,
        seq             BIGINT GENERATED ALWAYS AS IDENTITY,
        project         TEXT COLLATE "C" NOT NULL,
        url             TEXT   NOT NULL,
        event           TEXT   NOT NULL,
        body            TEXT   NOT NULL,
        attempts        BIGINT NOT NULL DEFAULT 0,
        next_attempt_at BIGINT NOT NULL,
        lease_owner     TEXT,
        lease_until     BIGINT,
        last_error      TEXT,
        delivered_at    BIGINT,
        failed_at       BIGINT,
        created_at      BIGINT NOT NULL
    );
    CREATE INDEX webhook_outbox_due ON webhook_outbox (next_attempt_at)
        WHERE delivered_at IS NULL AND failed_at IS NULL;"#,
    // 7 (SQLite's 11): the run queue is the runs table itself (see `store/queue.rs` and
    // `service/queue/`): a queued run is a row `queued` before the API
    // answers 202, claimed with `FOR UPDATE SKIP LOCKED` by a worker
    // (`running`, with a lease it renews), and finished in place.
    // `idempotency_key` is unique per project and step; `request_hash`
    // tells a retried request from a different one. A trigger may queue its
    // runs (`queued`).
    r#"ALTER TABLE runs DROP CONSTRAINT runs_status_check;
    ALTER TABLE runs
        ADD CONSTRAINT runs_status_check
            CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
        ADD COLUMN attempts         BIGINT  NOT NULL DEFAULT 1,
        ADD COLUMN run_trigger      TEXT,
        ADD COLUMN external_user_id TEXT,
        ADD COLUMN nostore          BOOLEAN NOT NULL DEFAULT FALSE,
        ADD COLUMN idempotency_key  TEXT COLLATE "C",
        ADD COLUMN request_hash     TEXT,
        ADD COLUMN not_before       BIGINT,
        ADD COLUMN lease_owner      TEXT,
        ADD COLUMN lease_until      BIGINT,
        ADD COLUMN cancel_requested BOOLEAN NOT NULL DEFAULT FALSE;
    CREATE UNIQUE INDEX runs_by_idempotency_key ON runs (project, step, idempotency_key)
        WHERE idempotency_key IS NOT NULL;
    CREATE INDEX runs_queued ON runs (not_before, id) WHERE status = 'queued';
    CREATE INDEX runs_leased ON runs (lease_until) WHERE status = 'running';
    ALTER TABLE triggers ADD COLUMN queued BOOLEAN NOT NULL DEFAULT FALSE;"#,
    // 8: versions and usage, as SQLite's 12: a trigger's pinned `digest`,
    // and each run's memory-time and outbound response bytes (0 for runs
    // recorded before).
    r#"ALTER TABLE triggers ADD COLUMN digest TEXT COLLATE "C";
    ALTER TABLE runs ADD COLUMN memory_kib_ms BIGINT NOT NULL DEFAULT 0;
    ALTER TABLE runs ADD COLUMN http_response_bytes BIGINT NOT NULL DEFAULT 0;"#,
    // 9 (SQLite's 13): retries, caps and pinned queued runs: a queued
    // run's `pinned_digest` and `attempt_history`, the starts of capped runs
    // (`run_starts`, for start-rate caps) and a project's caps. Claims
    // under a cap take an advisory transaction lock per capped project and
    // step (see `queue.rs`), so two nodes cannot both take the last place.
    r#"ALTER TABLE runs ADD COLUMN pinned_digest TEXT COLLATE "C";
    ALTER TABLE runs ADD COLUMN attempt_history TEXT;
    CREATE INDEX runs_running ON runs (project, step) WHERE status = 'running';
    CREATE TABLE run_starts (
        project    TEXT   COLLATE "C" NOT NULL,
        step       TEXT   COLLATE "C" NOT NULL,
        started_at BIGINT NOT NULL
    );
    CREATE INDEX run_starts_by_step ON run_starts (project, step, started_at);
    CREATE INDEX run_starts_by_project ON run_starts (project, started_at);
    CREATE TABLE project_queue_limits (
        project     TEXT COLLATE "C" NOT NULL PRIMARY KEY,
        max_running BIGINT,
        max_starts  BIGINT,
        per_secs    BIGINT
    );"#,
    // 10: cron schedules, as SQLite's 14.
    r#"CREATE TABLE schedules (
        id               TEXT    COLLATE "C" NOT NULL PRIMARY KEY,
        project          TEXT    COLLATE "C" NOT NULL,
        step             TEXT    COLLATE "C" NOT NULL,
        cron             TEXT    NOT NULL,
        timezone         TEXT    NOT NULL,
        input            TEXT    NOT NULL,
        digest           TEXT    COLLATE "C",
        external_user_id TEXT,
        enabled          BOOLEAN NOT NULL,
        next_fire_at     BIGINT,
        last_fired_at    BIGINT,
        last_run_id      TEXT,
        created_at       BIGINT  NOT NULL,
        updated_at       BIGINT  NOT NULL
    );
    CREATE INDEX schedules_by_step ON schedules (project, step, created_at);
    CREATE INDEX schedules_due ON schedules (next_fire_at) WHERE enabled;"#,
    // 11, as SQLite's 15: the live log lines of running runs and a run's
    // `callback_url`.
    r#"CREATE TABLE run_log_lines (
        run_id     TEXT COLLATE "C" NOT NULL,
        seq        BIGINT NOT NULL,
        line       TEXT   NOT NULL,
        created_at BIGINT NOT NULL,
        PRIMARY KEY (run_id, seq)
    );
    CREATE INDEX run_log_lines_by_created_at ON run_log_lines (created_at);
    ALTER TABLE runs ADD COLUMN callback_url TEXT;"#,
    // 12: re-runs and start times, as SQLite's 16.
    r#"ALTER TABLE runs ADD COLUMN rerun_of TEXT COLLATE "C";
    ALTER TABLE runs ADD COLUMN started_at BIGINT;"#,
    // 13: sessions of the operator console, as SQLite's 17.
    r#"CREATE TABLE console_sessions (
        session_hash    BYTEA  NOT NULL PRIMARY KEY,
        credential_kind TEXT COLLATE "C" NOT NULL,
        credential_id   TEXT COLLATE "C" NOT NULL,
        created_at      BIGINT NOT NULL,
        expires_at      BIGINT NOT NULL
    );
    CREATE INDEX console_sessions_by_expiry ON console_sessions (expires_at);"#,
    // 14: credential hygiene, as SQLite's 18.
    r#"ALTER TABLE api_keys ADD COLUMN expires_at BIGINT;
    ALTER TABLE oauth_clients ADD COLUMN expires_at BIGINT;
    CREATE TABLE credential_use (
        kind         TEXT COLLATE "C" NOT NULL,
        id           TEXT COLLATE "C" NOT NULL,
        last_used_at BIGINT NOT NULL,
        PRIMARY KEY (kind, id)
    );"#,
];

/// The schema version this binary brings a database to.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Applies the migrations the database lacks, in one transaction under the
/// migration lock.
pub(super) async fn migrate(pool: &PgPool) -> Result<()> {
    let mut tx = pool.begin().await?;
    InternalLock::SchemaMigration.take(&mut tx).await?;
    // Under the lock, so two nodes never race to create it. Checked first
    // rather than `IF NOT EXISTS`, whose notice would be logged every start.
    let exists: bool = sqlx::query_scalar("SELECT to_regclass('schema_version') IS NOT NULL")
        .fetch_one(&mut *tx)
        .await?;
    if !exists {
        sqlx::raw_sql(
            "CREATE TABLE schema_version (
                version    BIGINT NOT NULL PRIMARY KEY,
                applied_at BIGINT NOT NULL
            )",
        )
        .execute(&mut *tx)
        .await?;
    }
    let found: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(version), 0) FROM schema_version")
        .fetch_one(&mut *tx)
        .await?;
    if found > SCHEMA_VERSION {
        // Dropping `tx` rolls back; nothing was changed.
        return Err(StoreError::SchemaTooNew {
            found,
            supported: SCHEMA_VERSION,
        });
    }
    let applied = usize::try_from(found).unwrap_or(0);
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(applied) {
        sqlx::raw_sql(*sql).execute(&mut *tx).await?;
        sqlx::query(
            "INSERT INTO schema_version (version, applied_at)
             VALUES ($1, EXTRACT(EPOCH FROM now())::BIGINT)",
        )
        .bind(i as i64 + 1)
        .execute(&mut *tx)
        .await?;
        tracing::info!(version = i + 1, "postgres schema migrated");
    }
    tx.commit().await?;
    Ok(())
}
