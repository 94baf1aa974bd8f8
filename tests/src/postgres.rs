//! A real PostgreSQL for the tests: [`fresh_database`] gives each test its
//! own empty database and drops it when the [`Guard`] drops.
//!
//! Where the server comes from:
//! - `AIRLOCK_TEST_DATABASE_URL` (a server URL whose role may create
//!   databases): used as is;
//! - otherwise a throwaway PostgreSQL 15 cluster, started once per test
//!   process from `/usr/lib/postgresql/15/bin`: as the `postgres` user when
//!   running as root (the server refuses root), in a temporary directory,
//!   on 127.0.0.1 and a free port, trust authentication, `fsync` off. Its
//!   default collation is ICU `en-US`, not `C`, so a query that relies on
//!   the locale for byte order (as SQLite sorts) fails here rather than on
//!   an operator's database.
//! - where neither works, the test panics saying how to point it at a
//!   server: a PostgreSQL test never passes silently without PostgreSQL.
//!
//! Why a watchdog: the cluster must not outlive the test process, however
//! that process ends. A small shell, started with a pipe as its stdin, stops
//! the cluster and deletes its directory when it reads end-of-file, which
//! happens when the test process exits for any reason, `SIGKILL` included
//! (the kernel closes the pipe). A normal exit runs an `atexit` handler
//! that closes the pipe itself and waits for the watchdog to finish, so no
//! `postgres` process is left when `cargo test` returns.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};

use sqlx::Connection as _;

/// The variable naming an external PostgreSQL server for the tests.
pub const DATABASE_URL_ENV: &str = "AIRLOCK_TEST_DATABASE_URL";
/// Where PostgreSQL 15's programs are installed (Debian's layout).
pub const PG_BIN: &str = "/usr/lib/postgresql/15/bin";

/// Drops its database when dropped (terminating any connection left open).
#[derive(Debug)]
pub struct Guard {
    server: String,
    name: String,
}

impl Drop for Guard {
    fn drop(&mut self) {
        let (server, name) = (self.server.clone(), self.name.clone());
        // Drop runs inside the test's runtime, which cannot be blocked on:
        // a thread with its own runtime does the round trip.
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            rt.block_on(execute(
                &server,
                &format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"),
            ))
        })
        .join();
        match dropped {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("dropping test database {}: {e}", self.name),
            Err(_) => eprintln!("dropping test database {}: the thread panicked", self.name),
        }
    }
}

/// A new, empty database: its URL, and the guard that drops it.
pub async fn fresh_database() -> (String, Guard) {
    let server = server_url();
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let name = format!(
        "airlock_test_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    if let Err(e) = execute(server, &format!("CREATE DATABASE \"{name}\"")).await {
        panic!(
            "creating test database {name} on {} failed: {e}\n{HOW_TO}",
            redact(server)
        );
    }
    let mut url = url::Url::parse(server).expect("the server URL parsed before");
    url.set_path(&format!("/{name}"));
    let guard = Guard {
        server: server.to_owned(),
        name,
    };
    (url.to_string(), guard)
}

/// One statement on the server's own database. Names in it are ours.
async fn execute(server: &str, sql: &str) -> Result<(), String> {
    let mut conn = sqlx::PgConnection::connect(server)
        .await
        .map_err(|e| e.to_string())?;
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
        .execute(&mut conn)
        .await
        .map_err(|e| e.to_string())?;
    conn.close().await.map_err(|e| e.to_string())
}

/// The server every test of this process uses; starts the throwaway
/// cluster on first use. Panics, saying what to do, when there is none.
fn server_url() -> &'static str {
    static SERVER: OnceLock<Result<String, String>> = OnceLock::new();
    let server = SERVER.get_or_init(|| match std::env::var(DATABASE_URL_ENV) {
        Ok(url) => url::Url::parse(&url)
            .map(|_| url)
            .map_err(|e| format!("{DATABASE_URL_ENV} is not a URL: {e}")),
        Err(_) => start_cluster(),
    });
    match server {
        Ok(url) => url,
        Err(e) => panic!("the PostgreSQL tests could not get a server: {e}\n{HOW_TO}"),
    }
}

/// What to do when there is no server, for every such panic.
const HOW_TO: &str = "The PostgreSQL tests need a server: point them at one with \
    AIRLOCK_TEST_DATABASE_URL=postgres://USER:PASSWORD@HOST:5432/postgres (a role that may \
    CREATE DATABASE), or install PostgreSQL 15 (`apt-get install -y postgresql`, which \
    provides /usr/lib/postgresql/15/bin/initdb) and leave the variable unset, so the tests \
    start a throwaway cluster of their own.";

/// What the `atexit` handler stops: the watchdog, holding the cluster.
static WATCHDOG: Mutex<Option<Child>> = Mutex::new(None);

fn start_cluster() -> Result<String, String> {
    let initdb = Path::new(PG_BIN).join("initdb");
    if !initdb.exists() {
        return Err(format!("{} is not installed", initdb.display()));
    }
    // SAFETY: geteuid has no preconditions.
    let as_root = unsafe { libc::geteuid() } == 0;
    let dir = tempfile::Builder::new()
        .prefix("airlock-pg-")
        .tempdir()
        .map_err(|e| format!("creating a temporary directory: {e}"))?
        .keep();
    if as_root {
        let (uid, gid) = postgres_user()?;
        std::os::unix::fs::chown(&dir, Some(uid), Some(gid))
            .map_err(|e| format!("handing {} to the postgres user: {e}", dir.display()))?;
    }
    let data = dir.join("data");
    let cluster = Cluster {
        dir: dir.clone(),
        data,
        as_root,
    };
    cluster.watch()?;
    run(cluster
        .command(&initdb)
        .arg("-D")
        .arg(&cluster.data)
        .args([
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--locale=C.UTF-8",
        ])
        .args(["--locale-provider=icu", "--icu-locale=en-US"])
        .args(["--no-sync", "--no-instructions"]))?;
    // A free port can be taken by someone else before the server binds it.
    let mut last = String::new();
    for _ in 0..3 {
        let port = free_port()?;
        match cluster.start(port) {
            Ok(()) => return Ok(format!("postgres://postgres@127.0.0.1:{port}/postgres")),
            Err(e) => last = e,
        }
    }
    Err(last)
}

struct Cluster {
    dir: PathBuf,
    data: PathBuf,
    as_root: bool,
}

impl Cluster {
    /// `program` as the user owning the cluster.
    fn command(&self, program: &Path) -> Command {
        if self.as_root {
            let mut cmd = Command::new("runuser");
            cmd.args(["-u", "postgres", "--"]).arg(program);
            cmd
        } else {
            Command::new(program)
        }
    }

    /// Starts the watchdog and registers the `atexit` handler.
    fn watch(&self) -> Result<(), String> {
        let script = r#"read -r _; "$0" -D "$1" -m immediate -w stop >/dev/null 2>&1; rm -rf "$2""#;
        let child = self
            .command(Path::new("/bin/sh"))
            .arg("-c")
            .arg(script)
            .arg(Path::new(PG_BIN).join("pg_ctl"))
            .arg(&self.data)
            .arg(&self.dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("starting the cluster's watchdog: {e}"))?;
        *WATCHDOG.lock().unwrap_or_else(|e| e.into_inner()) = Some(child);
        // SAFETY: registering a plain `extern "C" fn` with no captured state.
        if unsafe { libc::atexit(stop_cluster) } != 0 {
            return Err("registering the cluster's atexit handler failed".into());
        }
        Ok(())
    }

    fn start(&self, port: u16) -> Result<(), String> {
        let options = format!(
            "-c listen_addresses=127.0.0.1 -p {port} -k {} -c fsync=off \
             -c synchronous_commit=off -c full_page_writes=off -c max_connections=300",
            self.dir.display()
        );
        run(self
            .command(&Path::new(PG_BIN).join("pg_ctl"))
            .arg("-D")
            .arg(&self.data)
            .arg("-l")
            .arg(self.dir.join("server.log"))
            .args(["-w", "-t", "60", "-o", &options, "start"]))
    }
}

/// Runs at process exit: closing the watchdog's stdin makes it stop the
/// cluster and delete its directory; waiting for it makes that finish
/// before the process does.
extern "C" fn stop_cluster() {
    let child = WATCHDOG.lock().unwrap_or_else(|e| e.into_inner()).take();
    if let Some(mut child) = child {
        drop(child.stdin.take());
        let _ = child.wait();
    }
}

fn run(cmd: &mut Command) -> Result<(), String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("running {cmd:?}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{cmd:?} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

fn postgres_user() -> Result<(u32, u32), String> {
    // SAFETY: a NUL-terminated name; the record is read before any other
    // getpw* call could overwrite it.
    let pw = unsafe { libc::getpwnam(c"postgres".as_ptr()) };
    if pw.is_null() {
        return Err("running as root, but there is no `postgres` user to run the server".into());
    }
    // SAFETY: checked non-null above.
    Ok(unsafe { ((*pw).pw_uid, (*pw).pw_gid) })
}

fn free_port() -> Result<u16, String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")
        .map_err(|e| format!("finding a free port: {e}"))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| format!("finding a free port: {e}"))
}

/// A server URL without its password, for messages.
fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            if u.password().is_some() {
                let _ = u.set_password(Some("***"));
            }
            u.to_string()
        }
        Err(_) => "(unparsable URL)".into(),
    }
}
