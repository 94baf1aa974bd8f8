//! The conformance suite of the storage seam: one set of test functions,
//! each taking `Arc<dyn Database>` handles, run against every backend.
//!
//! Why one suite: the stores above the seam must not care which database
//! they run on, so every observable behaviour of a repository method —
//! ordering, NULLs, not-found, compare-and-swap failure, the last-admin
//! refusal, token expiry, run paging, delete batches, tick claims, GCRA
//! waits, lock exclusion — is written down once, here, and each backend is
//! held to it. The functions live in `store_conformance/`, one file per
//! repository trait; `concurrency.rs` races two handles on one database
//! (two pools, as two nodes have; `connect.rs` races its own), and `postgres_only.rs` covers what only
//! PostgreSQL has (migration lock, schema check, sessions).
//!
//! Adding a backend is one line: a [`Fixture`] and a `suite!` entry.

use std::sync::Arc;
use std::time::Duration;

use airlock_runtime::store::postgres::{PgDatabase, PgOptions};
use airlock_runtime::store::repo::Database;

#[path = "store_conformance"]
mod suite {
    pub mod accounts;
    pub mod concurrency;
    pub mod connect;
    pub mod console;
    pub mod coordination;
    pub mod live_logs;
    pub mod platform;
    pub mod queue;
    pub mod queue_caps;
    pub mod runs;
    pub mod schedules;
    pub mod sealed;
    pub mod secrets;
    pub mod steps;
    pub mod support;
    pub mod triggers;
    pub mod usage;
}

#[path = "store_conformance/postgres_only.rs"]
mod postgres_only;

/// A fresh, empty database of one backend. Every [`handle`](Self::handle)
/// is a new connection pool on it, as another node would open.
trait Fixture: Sized {
    async fn fresh() -> Self;
    async fn handle(&self) -> Arc<dyn Database>;
}

/// What the suite's PostgreSQL handles use. The statement timeout turns a
/// hung lock into a failure instead of a stuck test run.
fn pg_options() -> PgOptions {
    PgOptions {
        max_connections: 8,
        statement_timeout: Some(Duration::from_secs(60)),
        acquire_timeout: Duration::from_secs(60),
    }
}

struct Postgres {
    url: String,
    _guard: airlock_tests::postgres::Guard,
}

impl Fixture for Postgres {
    async fn fresh() -> Self {
        let (url, guard) = airlock_tests::postgres::fresh_database().await;
        Self { url, _guard: guard }
    }

    async fn handle(&self) -> Arc<dyn Database> {
        Arc::new(PgDatabase::connect(&self.url, pg_options()).await.unwrap())
    }
}

/// SQLite in a fresh directory. Two handles on it are two pools on one
/// file, sharing the process's locks for that file, as one node does.
struct Sqlite {
    dir: tempfile::TempDir,
}

impl Fixture for Sqlite {
    async fn fresh() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    async fn handle(&self) -> Arc<dyn Database> {
        airlock_runtime::store::sqlite::SqliteDatabase::open_for_tests(self.dir.path())
            .await
            .unwrap()
    }
}

/// One `#[tokio::test]` per suite function, in a module named after the
/// backend (`postgres::secret_put_…`). `one` functions get a handle,
/// `two` functions two handles on the same database.
macro_rules! suite {
    ($backend:ident: $fixture:ty) => {
        mod $backend {
            use super::*;
            suite!(@one $fixture;
                secrets::secret_put_creates_then_updates_keeping_created_at,
                secrets::secret_not_found_and_delete,
                secrets::secret_list_is_by_name_in_byte_order,
                secrets::secret_get_many_returns_those_that_exist,
                accounts::account_insert_get_and_not_found,
                accounts::account_find_by_id_or_newest_of_app,
                accounts::account_list_is_newest_first_with_filters,
                accounts::account_status_and_delete,
                accounts::account_credentials_replace_is_compare_and_swap,
                platform::platform_ping_and_projects,
                platform::platform_ping_fails_after_close,
                platform::platform_api_keys,
                platform::platform_last_admin_is_kept,
                platform::platform_clients_and_tokens,
                platform::platform_token_expiry_cut,
                platform::platform_audit_is_newest_first,
                steps::step_versions_and_current,
                steps::step_delete_removes_versions_and_components,
                steps::step_set_current_rolls_back_and_forward,
                steps::step_version_reads_any_stored_version,
                usage::usage_sums_per_step_and_status_in_the_range,
                runs::run_insert_get_with_nulls,
                runs::run_list_is_newest_first_with_filters_and_cursor,
                runs::run_delete_before_in_batches,
                runs::run_points_are_newest_first_since_a_time,
                queue::queue_enqueue_claim_finish,
                console::console_sessions_by_hash_expire_and_end,
                console::console_sessions_end_when_their_key_rotates,
                console::credential_use_moves_forward_per_kind,
                queue::queue_idempotency_key_returns_the_existing_run,
                queue::queue_claims_only_due_runs_oldest_first,
                queue::queue_lease_renewal_cancel_and_fencing,
                queue::queue_reaper_requeues_expired_leases_then_gives_up,
                queue::queue_cancel_queued_running_finished,
                queue_caps::queue_retry_requeues_with_history_fenced,
                queue_caps::queue_caps_hold_per_step_and_project,
                triggers::trigger_insert_get_list_delete,
                schedules::schedule_insert_get_list_update_delete,
                schedules::schedule_due_earliest_and_advance_compare_and_set,
                schedules::schedule_missed_ticks_coalesce_into_one_run,
                sealed::sealed_key_ids_and_batches,
                sealed::sealed_reseal_is_compare_and_swap,
                coordination::tick_is_claimed_once_and_only_forward,
                coordination::rate_burst_then_refusal_with_wait,
                coordination::rate_peek_does_not_count,
                coordination::rate_sweep_forgets_idle_keys,
                connect::connect_token_insert_get_find_delete,
                connect::connect_flows_are_counted_to_the_limit,
                connect::connect_token_is_spent_once,
                connect::connect_sessions_and_states,
                connect::webhook_claims_lease_and_finish,
                live_logs::live_lines_append_read_after_and_delete,
                live_logs::live_lines_older_than_the_cutoff_are_swept,
                live_logs::callback_url_is_stored_with_the_queued_run,
                live_logs::webhook_once_writes_an_event_id_once,
            );
            suite!(@two $fixture;
                coordination::lock_excludes_other_holders,
                concurrency::concurrent_put_secret_creates_once,
                concurrency::concurrent_pushes_store_a_version_once,
                concurrency::concurrent_swaps_have_one_winner,
                concurrency::concurrent_revocations_keep_one_admin,
                concurrency::concurrent_tick_claims_one_per_tick,
                concurrency::concurrent_rate_acquire_admits_the_burst,
                connect::concurrent_webhook_claims_never_share_a_row,
                queue::concurrent_claims_never_share_a_run,
                queue_caps::concurrent_capped_claims_never_exceed_the_cap,
                connect::concurrent_state_take_and_spend_have_one_winner,
                schedules::concurrent_passes_fire_each_tick_once,
                schedules::concurrent_creates_stop_at_the_limit,
            );
        }
    };
    (@one $fixture:ty; $($module:ident :: $name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let fixture = <$fixture>::fresh().await;
                suite::$module::$name(fixture.handle().await).await;
            }
        )*
    };
    (@two $fixture:ty; $($module:ident :: $name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let fixture = <$fixture>::fresh().await;
                suite::$module::$name(fixture.handle().await, fixture.handle().await).await;
            }
        )*
    };
}

suite!(postgres: Postgres);
suite!(sqlite: Sqlite);
