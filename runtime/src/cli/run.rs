//! `airlock run`: run a step component once on this machine.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use crate::cli::exit;
use crate::engine::{Engine, EngineConfig, RunFailure, RunLimits, RunOptions};

#[derive(Debug, Args)]
#[command(
    after_help = "The step's JSON output goes to stdout; its log lines go to stderr, \
                        each prefixed with its level or stream.\n\
                        Exit status: 0 success, 1 the step returned an error, 2 bad usage, \
                        input that is not JSON or an invalid component, 3 a limit stopped \
                        the step (wall time, CPU, memory, output, trap), 4 internal error."
)]
pub struct RunArgs {
    /// The step: a WebAssembly component built for `wasm32-wasip2`.
    component: PathBuf,
    /// The input, as JSON text. Without it and `--input-file`, stdin is read.
    #[arg(long, conflicts_with = "input_file")]
    input: Option<String>,
    /// Read the input JSON from this file.
    #[arg(long, value_name = "FILE")]
    input_file: Option<PathBuf>,
    /// Wall-clock limit for the run, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 30_000, value_parser = clap::value_parser!(u64).range(1..))]
    timeout_ms: u64,
    /// CPU-time limit for the run, in milliseconds of guest execution.
    #[arg(long, value_name = "MS", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..))]
    cpu_ms: u64,
    /// Memory limit for the run (all memories and tables), in MiB.
    #[arg(long, value_name = "MIB", default_value_t = 128, value_parser = clap::value_parser!(u64).range(1..=4096))]
    memory_mib: u64,
    /// Where compiled artifacts are cached (default: $XDG_CACHE_HOME/airlock or ~/.cache/airlock).
    #[arg(long, value_name = "DIR", env = "AIRLOCK_CACHE_DIR")]
    cache_dir: Option<PathBuf>,
    /// Do not read or write the compile cache.
    #[arg(long)]
    no_cache: bool,
}

pub async fn run(args: RunArgs) -> u8 {
    let input = match read_input(&args) {
        Ok(i) => i,
        Err(msg) => return fail(exit::USAGE, &msg),
    };
    if let Err(e) = serde_json::from_str::<serde::de::IgnoredAny>(&input) {
        return fail(exit::USAGE, &format!("the input is not valid JSON: {e}"));
    }
    let bytes = match std::fs::read(&args.component) {
        Ok(b) => b,
        Err(e) => {
            return fail(
                exit::USAGE,
                &format!("cannot read component {}: {e}", args.component.display()),
            );
        }
    };

    let memory_bytes = args.memory_mib * 1024 * 1024;
    let config = EngineConfig {
        max_concurrent_runs: 1,
        max_memory_bytes: memory_bytes,
        cache_dir: if args.no_cache {
            None
        } else {
            args.cache_dir.clone().or_else(super::default_cache_dir)
        },
        ..EngineConfig::default()
    };
    let engine = match Engine::new(config) {
        Ok(e) => e,
        Err(e) => return fail(exit::INTERNAL, &e.to_string()),
    };
    let step = match engine.load(bytes).await {
        Ok(s) => s,
        Err(e) => {
            return fail(exit::USAGE, &format!("{}: {e}", args.component.display()));
        }
    };
    let name = args
        .component
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "step".into());
    let mut options = RunOptions::local(&name);
    options.limits = Some(RunLimits {
        wall_time: Duration::from_millis(args.timeout_ms),
        cpu_time: Duration::from_millis(args.cpu_ms),
        memory_bytes,
    });

    let report = engine.run(&step, &input, options).await;
    let mut stderr = std::io::stderr().lock();
    for line in &report.logs {
        let _ = writeln!(stderr, "[{}] {}", line.source, line.text);
    }
    drop(stderr);
    match report.outcome {
        Ok(output) => {
            println!("{output}");
            exit::OK
        }
        Err(failure) => {
            let code = match &failure {
                RunFailure::StepError(_) | RunFailure::InvalidOutput(_) => exit::STEP_ERROR,
                RunFailure::Limit { .. } => exit::LIMIT,
                RunFailure::Internal(_) => exit::INTERNAL,
            };
            fail(code, &failure.to_string())
        }
    }
}

fn read_input(args: &RunArgs) -> Result<String, String> {
    if let Some(input) = &args.input {
        return Ok(input.clone());
    }
    if let Some(path) = &args.input_file {
        return std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read input file {}: {e}", path.display()));
    }
    let mut s = String::new();
    std::io::stdin()
        .read_to_string(&mut s)
        .map_err(|e| format!("cannot read the input from stdin: {e}"))?;
    Ok(s)
}

fn fail(code: u8, message: &str) -> u8 {
    eprintln!("error: {message}");
    code
}
