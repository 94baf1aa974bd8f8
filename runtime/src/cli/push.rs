//! `airlock push`: upload a step version to an `airlock serve` server
//! (`PUT /v1/projects/{project}/steps/{step}`, through `airlock-client`) and
//! print its digest.

use std::path::{Path, PathBuf};

use airlock_client::StepUpload;
use clap::Args;

use crate::cli::output::{escape, print_json};
use crate::cli::remote::{CliResult, Failure, OutputArgs, ProjectArgs, ServerArgs, api, finish};
use crate::manifest::Manifest;

/// The manifest read when `--manifest` is not given, if it exists.
const DEFAULT_MANIFEST: &str = "airlock.toml";

#[derive(Debug, Args)]
#[command(
    after_help = "Exit status: 0 uploaded; 2 bad usage or a 4xx answer (the server's \
                        message on stderr); 4 the server cannot be reached or failed."
)]
pub struct PushArgs {
    /// The component (`.wasm`).
    pub component: PathBuf,
    /// The step's `airlock.toml` [default: ./airlock.toml if it exists; else the
    /// server uses `name = "<step>"`, granting nothing].
    #[arg(long, value_name = "FILE")]
    pub manifest: Option<PathBuf>,
    /// The step name [default: the manifest's `name`, else the component's file name].
    #[arg(long)]
    pub step: Option<String>,
    #[command(flatten)]
    pub project: ProjectArgs,
    #[command(flatten)]
    pub server: ServerArgs,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// `airlock push`.
pub async fn run(args: PushArgs) -> u8 {
    finish(execute(args).await)
}

/// The manifest's text and where it came from, if there is one.
fn manifest(args: &PushArgs) -> CliResult<Option<(String, PathBuf)>> {
    let path = match &args.manifest {
        Some(p) => p.clone(),
        None if Path::new(DEFAULT_MANIFEST).is_file() => PathBuf::from(DEFAULT_MANIFEST),
        None => return Ok(None),
    };
    let text = std::fs::read_to_string(&path)
        .map_err(|e| Failure::usage(format!("cannot read {}: {e}", path.display())))?;
    Ok(Some((text, path)))
}

async fn execute(args: PushArgs) -> CliResult<()> {
    let client = args.server.client()?;
    let project = args.project.require()?;
    let component = std::fs::read(&args.component)
        .map_err(|e| Failure::usage(format!("cannot read {}: {e}", args.component.display())))?;
    let manifest = manifest(&args)?;
    let step = match (&args.step, &manifest) {
        (Some(s), _) => s.clone(),
        (None, Some((text, path))) => Manifest::parse(text)
            .map_err(|e| Failure::usage(format!("{}: {e}", path.display())))?
            .name
            .clone(),
        (None, None) => args
            .component
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .ok_or_else(|| Failure::usage("name the step with --step NAME"))?,
    };
    if manifest.is_none() {
        eprintln!(
            "no manifest (--manifest FILE or ./{DEFAULT_MANIFEST}): the server uses \
             `name = \"{}\"`, which grants nothing",
            escape(&step)
        );
    }
    let upload = StepUpload {
        component,
        manifest: manifest.map(|(text, _)| text),
    };
    let outcome = api(
        client.put_step(project, &step, upload).await,
        args.server.url(),
    )?;
    if args.output.json {
        return print_json(&outcome);
    }
    println!("{}", escape(&outcome.digest));
    Ok(())
}
