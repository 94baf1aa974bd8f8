//! The SQLite schema: an ordered list of migrations embedded in the binary,
//! applied at open inside one `BEGIN IMMEDIATE` transaction and recorded in
//! SQLite's `PRAGMA user_version`. That keeps the binary self-contained (no
//! migrations directory at run time, no sqlx macros) and is safe to run on
//! every open, by several processes at once.

/// Schema migrations, in order; migration `i` brings `user_version` to `i + 1`.
/// Append only: never edit one that has shipped.
pub(super) const MIGRATIONS: &[&str] = &[
    // 1: the secrets table.
    "CREATE TABLE secrets (
        project    TEXT    NOT NULL,
        name       TEXT    NOT NULL,
        key_id     TEXT    NOT NULL,
        nonce      BLOB    NOT NULL,
        ciphertext BLOB    NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        PRIMARY KEY (project, name)
    )",
    // 2: connected accounts (see `accounts.rs`). Credentials are one sealed
    // JSON object, so every change to them (a rotated refresh token with its
    // access token) is a single-column write. `rowid` orders accounts created
    // in the same second, so "newest" is well defined.
    "CREATE TABLE accounts (
        id               TEXT    NOT NULL PRIMARY KEY,
        project          TEXT    NOT NULL,
        external_user_id TEXT    NOT NULL,
        app              TEXT    NOT NULL,
        key_id           TEXT    NOT NULL,
        nonce            BLOB    NOT NULL,
        ciphertext       BLOB    NOT NULL,
        custom_fields    TEXT    NOT NULL,
        expires_at       INTEGER,
        status           TEXT    NOT NULL CHECK (status IN ('healthy', 'needs_reauth')),
        created_at       INTEGER NOT NULL,
        updated_at       INTEGER NOT NULL
    );
    CREATE INDEX accounts_by_user_app ON accounts (project, external_user_id, app);",
    // 3: platform auth for `airlock serve` (see `platform.rs`): projects, API
    // keys, OAuth clients and their access tokens (all credentials stored as
    // SHA-256 hashes only), and the audit log of failed authentication.
    "CREATE TABLE projects (
        name       TEXT    NOT NULL PRIMARY KEY,
        created_at INTEGER NOT NULL
    );
    CREATE TABLE api_keys (
        id          TEXT    NOT NULL PRIMARY KEY,
        name        TEXT    NOT NULL,
        secret_hash BLOB    NOT NULL,
        scopes      TEXT    NOT NULL,
        project     TEXT,
        created_at  INTEGER NOT NULL
    );
    CREATE TABLE oauth_clients (
        id          TEXT    NOT NULL PRIMARY KEY,
        name        TEXT    NOT NULL,
        secret_hash BLOB    NOT NULL,
        scopes      TEXT    NOT NULL,
        project     TEXT,
        created_at  INTEGER NOT NULL
    );
    CREATE TABLE oauth_tokens (
        token_hash BLOB    NOT NULL PRIMARY KEY,
        client_id  TEXT    NOT NULL REFERENCES oauth_clients (id) ON DELETE CASCADE,
        scopes     TEXT    NOT NULL,
        project    TEXT,
        expires_at INTEGER NOT NULL
    );
    CREATE INDEX oauth_tokens_by_client ON oauth_tokens (client_id);
    CREATE TABLE auth_audit (
        id     INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
        at     INTEGER NOT NULL,
        method TEXT    NOT NULL,
        route  TEXT    NOT NULL,
        key_id TEXT,
        reason TEXT    NOT NULL
    );",
    // 4: steps and runs of `airlock serve` (see `steps.rs` and `runs.rs`).
    // A step version is immutable and named by a digest of its component and
    // manifest (`component_digest` is the component's own); `steps` points at
    // the current one. Run records hold only what the
    // engine already masked; `nostore` runs leave input, output, error and
    // logs NULL.
    "CREATE TABLE step_versions (
        project    TEXT    NOT NULL,
        step       TEXT    NOT NULL,
        digest           TEXT    NOT NULL,
        component_digest TEXT    NOT NULL,
        component        BLOB    NOT NULL,
        manifest         TEXT    NOT NULL,
        created_at       INTEGER NOT NULL,
        PRIMARY KEY (project, step, digest)
    );
    CREATE TABLE steps (
        project        TEXT    NOT NULL,
        step           TEXT    NOT NULL,
        current_digest TEXT    NOT NULL,
        updated_at     INTEGER NOT NULL,
        PRIMARY KEY (project, step)
    );
    CREATE TABLE runs (
        id                TEXT    NOT NULL PRIMARY KEY,
        project           TEXT    NOT NULL,
        step              TEXT    NOT NULL,
        digest            TEXT    NOT NULL,
        status            TEXT    NOT NULL CHECK (status IN ('succeeded', 'failed')),
        created_at        INTEGER NOT NULL,
        duration_ms       INTEGER NOT NULL,
        cpu_ticks         INTEGER NOT NULL,
        memory_peak_bytes INTEGER NOT NULL,
        log_bytes         INTEGER NOT NULL,
        input             TEXT,
        output            TEXT,
        error             TEXT,
        logs              TEXT
    );
    CREATE INDEX runs_by_project_newest ON runs (project, created_at DESC, id DESC);",
    // 5: HTTP triggers of steps (see `triggers.rs`). `signature` is the JSON
    // of how requests are verified; it names a secret, never holds its value.
    "CREATE TABLE triggers (
        id         TEXT    NOT NULL PRIMARY KEY,
        project    TEXT    NOT NULL,
        step       TEXT    NOT NULL,
        signature  TEXT,
        created_at INTEGER NOT NULL
    );
    CREATE INDEX triggers_by_step ON triggers (project, step);",
    // 6: the retention sweep of `airlock serve` deletes runs by age.
    "CREATE INDEX runs_by_created_at ON runs (created_at);",
    // 7: the outbound calls of a run (JSON array of call summaries: method,
    // URL without query (masked), status, timing, bytes, account id; never
    // a header or credential). NULL for `nostore` runs.
    "ALTER TABLE runs ADD COLUMN http_calls TEXT;",
    // 8: a trigger created with `nostore` records every run it starts as
    // metadata only (see `triggers.rs`).
    "ALTER TABLE triggers ADD COLUMN nostore INTEGER NOT NULL DEFAULT 0 CHECK (nostore IN (0, 1));",
    // 9: component bytes in a table of their own. Why: a run reads its
    // version's digest and manifest; with the BLOB in the same row SQLite
    // walked the BLOB's overflow pages on every such read (a Python step's
    // 18 MB, per run). Now only a cold load reads `step_components`.
    "CREATE TABLE step_components (
        project   TEXT NOT NULL,
        step      TEXT NOT NULL,
        digest    TEXT NOT NULL,
        component BLOB NOT NULL,
        PRIMARY KEY (project, step, digest)
    );
    INSERT INTO step_components (project, step, digest, component)
        SELECT project, step, digest, component FROM step_versions;
    ALTER TABLE step_versions DROP COLUMN component;",
    // 10: Connect (see `connect.rs` and `webhooks.rs`): connect tokens,
    // sessions and OAuth states are stored by the SHA-256 of their secret
    // only; a state's PKCE verifier is sealed. Sessions and states go with
    // their token. The outbox keeps each webhook until it is delivered or
    // given up; `lease_*` says who is delivering it until when.
    "CREATE TABLE connect_tokens (
        id                   TEXT    NOT NULL PRIMARY KEY,
        project              TEXT    NOT NULL,
        token_hash           BLOB    NOT NULL UNIQUE,
        external_user_id     TEXT    NOT NULL,
        apps                 TEXT,
        success_redirect_uri TEXT,
        error_redirect_uri   TEXT,
        webhook_uri          TEXT,
        allowed_origins      TEXT    NOT NULL,
        account_id           TEXT,
        expires_at           INTEGER NOT NULL,
        created_at           INTEGER NOT NULL,
        flows_started        INTEGER NOT NULL DEFAULT 0,
        used_at              INTEGER,
        used_account_id      TEXT
    );
    CREATE INDEX connect_tokens_by_account ON connect_tokens (project, used_account_id);
    CREATE TABLE connect_sessions (
        session_hash BLOB    NOT NULL PRIMARY KEY,
        token_id     TEXT    NOT NULL REFERENCES connect_tokens (id) ON DELETE CASCADE,
        expires_at   INTEGER NOT NULL
    );
    CREATE INDEX connect_sessions_by_token ON connect_sessions (token_id);
    CREATE TABLE connect_oauth_states (
        state_hash       BLOB    NOT NULL PRIMARY KEY,
        token_id         TEXT    NOT NULL REFERENCES connect_tokens (id) ON DELETE CASCADE,
        project          TEXT    NOT NULL,
        app              TEXT    NOT NULL,
        external_user_id TEXT    NOT NULL,
        binding_hash     BLOB    NOT NULL,
        custom_fields    TEXT    NOT NULL,
        key_id           TEXT,
        nonce            BLOB,
        ciphertext       BLOB,
        expires_at       INTEGER NOT NULL,
        created_at       INTEGER NOT NULL
    );
    CREATE INDEX connect_oauth_states_by_token ON connect_oauth_states (token_id);
    CREATE TABLE webhook_outbox (
        id              TEXT    NOT NULL PRIMARY KEY,
        project         TEXT    NOT NULL,
        url             TEXT    NOT NULL,
        event           TEXT    NOT NULL,
        body            TEXT    NOT NULL,
        attempts        INTEGER NOT NULL DEFAULT 0,
        next_attempt_at INTEGER NOT NULL,
        lease_owner     TEXT,
        lease_until     INTEGER,
        last_error      TEXT,
        delivered_at    INTEGER,
        failed_at       INTEGER,
        created_at      INTEGER NOT NULL
    );
    CREATE INDEX webhook_outbox_due ON webhook_outbox (next_attempt_at)
        WHERE delivered_at IS NULL AND failed_at IS NULL;",
    // 11: the run queue is the runs table itself (see `store/queue.rs` and
    // `service/queue/`): a queued run is a row `queued` before the API
    // answers 202, claimed by a worker (`running`, with a lease it renews),
    // and finished in place. SQLite cannot alter a CHECK constraint, so the
    // table is rebuilt. `idempotency_key` is unique per project and step;
    // `request_hash` tells a retried request from a different one. A
    // trigger may queue its runs (`queued`).
    "CREATE TABLE runs_v11 (
        id                TEXT    NOT NULL PRIMARY KEY,
        project           TEXT    NOT NULL,
        step              TEXT    NOT NULL,
        digest            TEXT    NOT NULL,
        status            TEXT    NOT NULL
            CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
        created_at        INTEGER NOT NULL,
        duration_ms       INTEGER NOT NULL,
        cpu_ticks         INTEGER NOT NULL,
        memory_peak_bytes INTEGER NOT NULL,
        log_bytes         INTEGER NOT NULL,
        input             TEXT,
        output            TEXT,
        error             TEXT,
        logs              TEXT,
        http_calls        TEXT,
        attempts          INTEGER NOT NULL DEFAULT 1,
        run_trigger       TEXT,
        external_user_id  TEXT,
        nostore           INTEGER NOT NULL DEFAULT 0 CHECK (nostore IN (0, 1)),
        idempotency_key   TEXT,
        request_hash      TEXT,
        not_before        INTEGER,
        lease_owner       TEXT,
        lease_until       INTEGER,
        cancel_requested  INTEGER NOT NULL DEFAULT 0 CHECK (cancel_requested IN (0, 1))
    );
    INSERT INTO runs_v11 (id, project, step, digest, status, created_at, duration_ms,
            cpu_ticks, memory_peak_bytes, log_bytes, input, output, error, logs, http_calls)
        SELECT id, project, step, digest, status, created_at, duration_ms,
            cpu_ticks, memory_peak_bytes, log_bytes, input, output, error, logs, http_calls
        FROM runs;
    DROP TABLE runs;
    ALTER TABLE runs_v11 RENAME TO runs;
    CREATE INDEX runs_by_project_newest ON runs (project, created_at DESC, id DESC);
    CREATE INDEX runs_by_created_at ON runs (created_at);
    CREATE UNIQUE INDEX runs_by_idempotency_key ON runs (project, step, idempotency_key)
        WHERE idempotency_key IS NOT NULL;
    CREATE INDEX runs_queued ON runs (not_before, id) WHERE status = 'queued';
    CREATE INDEX runs_leased ON runs (lease_until) WHERE status = 'running';
    ALTER TABLE triggers ADD COLUMN queued INTEGER NOT NULL DEFAULT 0 CHECK (queued IN (0, 1));",
    // 12: versions and usage. A trigger may pin the version it runs
    // (`digest`, NULL: the step's current one). A run records its
    // memory-time (KiB x ms of memory and tables held, integrated over the
    // run) and the response bytes its outbound calls received, kept for
    // `nostore` runs too, so usage sums them without reading `http_calls`.
    // Runs recorded before count 0 for both.
    "ALTER TABLE triggers ADD COLUMN digest TEXT;
    ALTER TABLE runs ADD COLUMN memory_kib_ms INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE runs ADD COLUMN http_response_bytes INTEGER NOT NULL DEFAULT 0;",
    // 13: retries, caps and pinned queued runs. A queued run may be pinned
    // to a version (`pinned_digest`, NULL: current at each attempt's
    // start) and keeps a summary of each failed attempt it retried
    // (`attempt_history`, a JSON array). `run_starts` records when capped
    // runs started, for start-rate caps (pruned past the longest window);
    // `project_queue_limits` holds a project's caps (NULL: none).
    "ALTER TABLE runs ADD COLUMN pinned_digest TEXT;
    ALTER TABLE runs ADD COLUMN attempt_history TEXT;
    CREATE INDEX runs_running ON runs (project, step) WHERE status = 'running';
    CREATE TABLE run_starts (
        project    TEXT    NOT NULL,
        step       TEXT    NOT NULL,
        started_at INTEGER NOT NULL
    );
    CREATE INDEX run_starts_by_step ON run_starts (project, step, started_at);
    CREATE INDEX run_starts_by_project ON run_starts (project, started_at);
    CREATE TABLE project_queue_limits (
        project     TEXT    NOT NULL PRIMARY KEY,
        max_running INTEGER,
        max_starts  INTEGER,
        per_secs    INTEGER
    );",
    // 14: cron schedules (see `schedules.rs`). Times are Unix milliseconds;
    // `next_fire_at` is NULL when the expression has no further fire time.
    // The scheduler of every node looks for due enabled rows by
    // `next_fire_at` and advances one by compare-and-set on it.
    "CREATE TABLE schedules (
        id               TEXT    NOT NULL PRIMARY KEY,
        project          TEXT    NOT NULL,
        step             TEXT    NOT NULL,
        cron             TEXT    NOT NULL,
        timezone         TEXT    NOT NULL,
        input            TEXT    NOT NULL,
        digest           TEXT,
        external_user_id TEXT,
        enabled          INTEGER NOT NULL CHECK (enabled IN (0, 1)),
        next_fire_at     INTEGER,
        last_fired_at    INTEGER,
        last_run_id      TEXT,
        created_at       INTEGER NOT NULL,
        updated_at       INTEGER NOT NULL
    );
    CREATE INDEX schedules_by_step ON schedules (project, step, created_at);
    CREATE INDEX schedules_due ON schedules (next_fire_at) WHERE enabled = 1;",
    // 15: live logs and completion callbacks (see `store/live_logs.rs`). `run_log_lines` holds the masked
    // lines of runs still running, appended by their node in small batches
    // and deleted when the run finishes (its record keeps the final log);
    // `seq` is the line's id in the stream (attempt << 32 | index). A run
    // may name the `callback_url` its outcome is posted to.
    "CREATE TABLE run_log_lines (
        run_id     TEXT    NOT NULL,
        seq        INTEGER NOT NULL,
        line       TEXT    NOT NULL,
        created_at INTEGER NOT NULL,
        PRIMARY KEY (run_id, seq)
    );
    CREATE INDEX run_log_lines_by_created_at ON run_log_lines (created_at);
    ALTER TABLE runs ADD COLUMN callback_url TEXT;",
    // 16: re-runs and start times. A run re-run from a recorded one
    // (`POST …/runs/{id}/rerun`) names it. Synchronous runs now store their
    // `external_user_id` too (the column came with the queue), so a re-run
    // acts for the same user. `started_at` is when the latest attempt
    // started (a claim sets it), so a queued run's wait is visible; runs
    // recorded before keep NULL.
    "ALTER TABLE runs ADD COLUMN rerun_of TEXT;
    ALTER TABLE runs ADD COLUMN started_at INTEGER;",
    // 17: sessions of the operator console (`store/console_sessions.rs`):
    // the SHA-256 of the cookie, and the credential it stands for (looked
    // up again on every page, so a revoked key's sessions end with it).
    "CREATE TABLE console_sessions (
        session_hash    BLOB    NOT NULL PRIMARY KEY,
        credential_kind TEXT    NOT NULL,
        credential_id   TEXT    NOT NULL,
        created_at      INTEGER NOT NULL,
        expires_at      INTEGER NOT NULL
    );
    CREATE INDEX console_sessions_by_expiry ON console_sessions (expires_at);",
    // 18: credential hygiene (`store/credential_use.rs`). API keys and
    // OAuth clients may expire. When each credential (API key, OAuth
    // client, connected account, secret) was last used is one row per
    // credential, written at most once a minute per node, never on the
    // request path.
    "ALTER TABLE api_keys ADD COLUMN expires_at INTEGER;
    ALTER TABLE oauth_clients ADD COLUMN expires_at INTEGER;
    CREATE TABLE credential_use (
        kind         TEXT    NOT NULL,
        id           TEXT    NOT NULL,
        last_used_at INTEGER NOT NULL,
        PRIMARY KEY (kind, id)
    );",
];
