//! `airlock conformance`: checks a guest SDK against the contract.
//!
//! An SDK author writes each case of `tests/conformance/cases/` in their
//! language (the Rust, Python and JavaScript versions sit beside the cases),
//! builds each to `<case>.wasm`, and points this command at the files or at
//! the directory holding them. Every run of a case goes through the same
//! engine as `airlock run` — real secrets grants and masking, the real
//! outbound pipeline to a loopback echo server — and its output or error,
//! and its log lines where the case declares them, must be exactly what
//! the case says.
//!
//! The runner lets steps reach 127.0.0.0/8 (where its echo server listens),
//! as far as each case's manifest grants: it is for components an SDK
//! author built, not for untrusted ones.
//!
//! Exit status: 0 every case given (or, for a directory, every case) passed;
//! 1 one failed or was missing; 2 bad usage (an unknown case name, a file
//! that cannot be read).

mod cases;
mod echo;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use airlock_host_api::apps::Catalog;
use airlock_host_api::http::egress::parse_range;
use airlock_host_api::http::pipeline::NoAccounts;
use airlock_host_api::http::run_accounts::RunAccounts;
use airlock_host_api::secrets::RunSecrets;
use clap::Args;
use serde_json::Value;
use zeroize::Zeroizing;

use crate::cli::exit;
use crate::engine::{Engine, EngineConfig, RunFailure, RunLimits, RunOptions, RunReport};
use crate::outbound::{self, OutboundConfig};

use cases::{Case, Expect};

/// The app the `http` case calls with `account(..)`: bearer auth, its base
/// URL the echo server.
const ECHO_APP: &str = "conformance-echo";
/// The token of the run's account of [`ECHO_APP`]; it must come back masked.
const ECHO_TOKEN: &str = "echo_account_token_5e7a1c";

#[derive(Debug, Args)]
#[command(
    after_help = "Each component is matched to a case by its file stem (hello.wasm is \
                        case `hello`); a directory stands for every case in it. Exit status: 0 \
                        all passed, 1 a case failed or is missing, 2 bad usage."
)]
pub struct ConformanceArgs {
    /// Components built from the cases (`<case>.wasm`), or a directory of them.
    #[arg(required_unless_present = "list")]
    components: Vec<PathBuf>,
    /// List the cases and what each checks, then exit.
    #[arg(long)]
    list: bool,
    /// Where compiled artifacts are cached (default: $XDG_CACHE_HOME/airlock or ~/.cache/airlock).
    #[arg(long, value_name = "DIR", env = "AIRLOCK_CACHE_DIR")]
    cache_dir: Option<PathBuf>,
    /// Do not read or write the compile cache.
    #[arg(long)]
    no_cache: bool,
}

pub async fn run(args: ConformanceArgs) -> u8 {
    let cases = match cases::shipped() {
        Ok(c) => c,
        Err(e) => return fail(exit::INTERNAL, &e.to_string()),
    };
    if args.list {
        for case in &cases {
            println!("{:<10} {}", case.name, case.description);
        }
        return exit::OK;
    }
    let plan = match plan(&args.components, &cases) {
        Ok(p) => p,
        Err(msg) => return fail(exit::USAGE, &msg),
    };
    let runner = match Runner::start(&args).await {
        Ok(r) => r,
        Err(msg) => return fail(exit::INTERNAL, &msg),
    };
    let (mut passed, mut failed) = (0, 0);
    for (case, path) in plan {
        let problems = match path {
            Some(path) => runner.check(case, &path).await,
            None => vec![format!("missing: no {}.wasm in the directory", case.name)],
        };
        if problems.is_empty() {
            passed += 1;
            let n = case.runs.len();
            println!(
                "ok    {} ({n} run{})",
                case.name,
                if n == 1 { "" } else { "s" }
            );
        } else {
            failed += 1;
            println!("FAIL  {}", case.name);
            for p in problems {
                for line in p.lines() {
                    println!("        {line}");
                }
            }
        }
    }
    println!("{passed} passed, {failed} failed");
    if failed == 0 {
        exit::OK
    } else {
        exit::STEP_ERROR
    }
}

/// Which case each argument stands for; `None` is a case a directory lacks.
fn plan<'c>(
    args: &[PathBuf],
    cases: &'c [Case],
) -> Result<Vec<(&'c Case, Option<PathBuf>)>, String> {
    let by_name: BTreeMap<&str, &Case> = cases.iter().map(|c| (c.name.as_str(), c)).collect();
    let mut plan: Vec<(&Case, Option<PathBuf>)> = Vec::new();
    for arg in args {
        if arg.is_dir() {
            for case in cases {
                let path = arg.join(format!("{}.wasm", case.name));
                plan.push((case, path.is_file().then_some(path)));
            }
            continue;
        }
        let stem = arg
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let Some(case) = by_name.get(stem.as_str()) else {
            return Err(format!(
                "{}: no conformance case named {stem:?} (the file stem names the case); cases: {}",
                arg.display(),
                cases::names().collect::<Vec<_>>().join(", ")
            ));
        };
        if !arg.is_file() {
            return Err(format!("{}: no such file", arg.display()));
        }
        plan.push((case, Some(arg.clone())));
    }
    Ok(plan)
}

struct Runner {
    engine: Engine,
    catalog: Arc<Catalog>,
    echo_url: String,
}

impl Runner {
    async fn start(args: &ConformanceArgs) -> Result<Runner, String> {
        let addr = echo::start()
            .await
            .map_err(|e| format!("cannot start the loopback echo server: {e}"))?;
        let echo_url = format!("http://{addr}");
        // The cases need no other app than the echo server's.
        let app = format!(
            "slug = \"{ECHO_APP}\"\nname = \"Conformance echo\"\nauth = \"bearer\"\n\
             base_url = \"{echo_url}\"\nallowed_domains = [\"127.0.0.1\"]\n\
             [credential]\nheader = \"Authorization\"\ntemplate = \"Bearer {{{{token}}}}\"\n"
        );
        let catalog = Catalog::from_sources(&[(format!("{ECHO_APP}.toml"), app)])
            .map_err(|e| e.to_string())?;
        let catalog = Arc::new(catalog);
        let config = OutboundConfig {
            // The echo server is on loopback, which the policy refuses by default.
            allow_ranges: vec![parse_range("127.0.0.0/8").map_err(|e| e.to_string())?],
            ..OutboundConfig::default()
        };
        let (policy, client) = outbound::policy_and_client(&config).map_err(|e| e.to_string())?;
        let pipeline = outbound::pipeline(
            &config,
            policy,
            client,
            catalog.clone(),
            Arc::new(NoAccounts),
        );
        let engine_config = EngineConfig {
            cache_dir: if args.no_cache {
                None
            } else {
                args.cache_dir.clone().or_else(super::default_cache_dir)
            },
            ..EngineConfig::default()
        };
        let engine = Engine::with_http(engine_config, pipeline).map_err(|e| e.to_string())?;
        Ok(Runner {
            engine,
            catalog,
            echo_url,
        })
    }

    /// Every way `path` misses `case`; empty when it conforms.
    async fn check(&self, case: &Case, path: &Path) -> Vec<String> {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) => return vec![format!("cannot read {}: {e}", path.display())],
        };
        let step = match self.engine.load(bytes).await {
            Ok(s) => s,
            Err(e) => return vec![format!("{}: {e}", path.display())],
        };
        let mut problems = Vec::new();
        for (i, spec) in case.runs.iter().enumerate() {
            let input = spec.input.replace("$ECHO_URL", &self.echo_url);
            let options = match self.options(case, spec) {
                Ok(o) => o,
                Err(e) => return vec![e],
            };
            let report = self.engine.run(&step, &input, options).await;
            if let Err(p) = compare(spec, &report) {
                problems.push(format!("run {} (input {input}): {p}", i + 1));
            }
        }
        problems
    }

    fn options(&self, case: &Case, spec: &cases::Run) -> Result<RunOptions, String> {
        let mut options = RunOptions::local(&case.manifest.name);
        options.context.project = "conformance".into();
        options.context.external_user_id = spec.external_user.clone();
        options.limits = Some(case.manifest.limits_over(RunLimits::default()));
        options.secrets = RunSecrets::new(
            case.manifest.grants(),
            case.secrets
                .iter()
                .map(|(k, v)| (k.clone(), Zeroizing::new(v.clone()))),
        );
        options.http_grants = case.manifest.http_grants();
        let given = BTreeMap::from([(
            ECHO_APP.to_string(),
            BTreeMap::from([("token".to_string(), Zeroizing::new(ECHO_TOKEN.to_string()))]),
        )]);
        let accounts = RunAccounts::new(&self.catalog, given).map_err(|e| e.to_string())?;
        options.run_accounts = Some(Arc::new(accounts));
        Ok(options)
    }
}

/// Whether the report is what the run expects; the difference if not.
fn compare(spec: &cases::Run, report: &RunReport) -> Result<(), String> {
    let expected_text = |t: &str| t.replace("$RUN_ID", &report.run_id);
    let parse =
        |t: &str| serde_json::from_str::<Value>(&expected_text(t)).expect("checked at load");
    match (&spec.expect, &report.outcome) {
        (Expect::Output(want), Ok(got)) => {
            let got: Value =
                serde_json::from_str(got).map_err(|e| format!("output not JSON: {e}"))?;
            let want = parse(want);
            if got != want {
                return Err(format!("output differs\nexpected: {want}\ngot:      {got}"));
            }
        }
        (Expect::Error(want), Err(RunFailure::StepError(e))) => {
            let got = serde_json::to_value(e).expect("a step error serializes");
            let want = parse(want);
            if got != want {
                return Err(format!("error differs\nexpected: {want}\ngot:      {got}"));
            }
        }
        (Expect::Output(want), Err(failure)) => {
            return Err(format!(
                "expected output {}, the run failed: {failure}",
                parse(want)
            ));
        }
        (Expect::Error(want), Err(failure)) => {
            return Err(format!(
                "expected the step's error {}, the run failed otherwise: {failure}",
                parse(want)
            ));
        }
        (Expect::Error(want), Ok(got)) => {
            return Err(format!(
                "expected the step's error {}, it returned output {got}",
                parse(want)
            ));
        }
    }
    if let Some(want) = &spec.logs {
        let got: Vec<String> = report
            .logs
            .iter()
            .map(|l| format!("[{}] {}", l.source, l.text))
            .collect();
        if &got != want {
            return Err(format!(
                "log lines differ\nexpected: {want:?}\ngot:      {got:?}"
            ));
        }
    }
    Ok(())
}

fn fail(code: u8, message: &str) -> u8 {
    eprintln!("error: {message}");
    code
}
