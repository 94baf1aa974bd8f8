//! The multi-node suite: two real `airlock serve` processes on different
//! ports, one PostgreSQL database (fresh per test), one master key, separate
//! data directories (so separate compile caches), as an operator runs
//! nodes behind a load balancer. What must hold is what a single node gave
//! for free:
//!
//! - `visibility`: a key, a client secret, a step or a trigger changed on
//!   one node is changed on the other at its very next request;
//! - `oauth`: one OAuth refresh for many runs across nodes, also when the
//!   provider is slower than the database's statement timeout, and a node
//!   killed while it holds the refresh leaves nothing locked;
//! - `limits`: the outbound, trigger and failed-token limits count both
//!   nodes together;
//! - `crash`: `kill -9` under load loses no answered run, and the other
//!   node serves on;
//! - `periodic`: each retention tick is swept by one node;
//! - `versions`: a rollback on one node is what the other runs next, a
//!   pinned trigger keeps its version, usage counts both nodes' runs.
//! - `caps`: a step's running and start caps hold across both nodes.
//! - `queue`: 1,000 queued runs run exactly once across both nodes, and a
//!   node killed mid-run leaves its run to the other (attempt 2).
//! - `schedules`: an every-second cron schedule fires once per tick with
//!   both nodes' schedulers running.
//!
//! Every test says what would make it fail. PostgreSQL comes from
//! `airlock_tests::postgres` (`AIRLOCK_TEST_DATABASE_URL`, or a throwaway
//! cluster started once for this process).

#[path = "multinode"]
mod suite {
    pub mod caps;
    pub mod crash;
    pub mod limits;
    pub mod live_logs;
    pub mod oauth;
    pub mod periodic;
    pub mod queue;
    pub mod schedules;
    pub mod support;
    pub mod versions;
    pub mod visibility;
}
