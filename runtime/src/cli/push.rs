//! `airlock push`: upload a step version to an `airlock serve` server
//! (`PUT /v1/projects/{project}/steps/{step}`) and print its digest.

use std::path::PathBuf;

use clap::Args;

use crate::cli::exit;
use crate::manifest::Manifest;

#[derive(Debug, Args)]
pub struct PushArgs {
    /// The component (`.wasm`).
    pub component: PathBuf,
    /// The step's `airlock.toml`.
    #[arg(long, default_value = "airlock.toml")]
    pub manifest: PathBuf,
    /// The project to upload to.
    #[arg(long)]
    pub project: String,
    /// The step name (default: the manifest's `name`).
    #[arg(long)]
    pub step: Option<String>,
    /// The server's base URL.
    #[arg(long, env = "AIRLOCK_SERVER", default_value = "http://127.0.0.1:8080")]
    pub server: String,
    /// An API key with the `steps:write` scope.
    #[arg(long, env = "AIRLOCK_API_KEY", hide_env_values = true)]
    pub api_key: String,
}

const BOUNDARY: &str = "airlock-push-3b9f6c1e8d2a4705";

fn multipart(component: &[u8], manifest: &str) -> Vec<u8> {
    let mut body = Vec::with_capacity(component.len() + manifest.len() + 512);
    body.extend_from_slice(
        format!(
            "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"component\"; \
             filename=\"component.wasm\"\r\nContent-Type: application/wasm\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(component);
    body.extend_from_slice(
        format!(
            "\r\n--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"manifest\"\r\n\
             Content-Type: text/plain; charset=utf-8\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(manifest.as_bytes());
    body.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    body
}

fn client() -> Result<reqwest::Client, String> {
    let tls = airlock_host_api::http::client::tls_config().map_err(|e| e.to_string())?;
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .build()
        .map_err(|e| e.to_string())
}

/// `airlock push`: 0 and the digest on stdout; 2 on bad usage or a 4xx
/// answer (with the server's message); 4 when the server cannot be reached
/// or fails.
pub async fn run(args: PushArgs) -> u8 {
    let component = match std::fs::read(&args.component) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("error: cannot read {}: {e}", args.component.display());
            return exit::USAGE;
        }
    };
    let manifest_text = match std::fs::read_to_string(&args.manifest) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: cannot read {}: {e}", args.manifest.display());
            return exit::USAGE;
        }
    };
    let step = match args.step {
        Some(s) => s,
        None => match Manifest::parse(&manifest_text) {
            Ok(m) => m.name.clone(),
            Err(e) => {
                eprintln!("error: {}: {e}", args.manifest.display());
                return exit::USAGE;
            }
        },
    };
    let base = args.server.trim_end_matches('/');
    let url = format!("{base}/v1/projects/{}/steps/{step}", args.project);
    let client = match client() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: cannot build the HTTP client: {e}");
            return exit::INTERNAL;
        }
    };
    let response = client
        .put(&url)
        .bearer_auth(&args.api_key)
        .header(
            "content-type",
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .body(multipart(&component, &manifest_text))
        .send()
        .await;
    let response = match response {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot reach {base}: {e}");
            return exit::INTERNAL;
        }
    };
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    let body: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    if status.is_success() {
        match body["digest"].as_str() {
            Some(digest) => {
                println!("{digest}");
                exit::OK
            }
            None => {
                eprintln!("error: the server's answer has no digest");
                exit::INTERNAL
            }
        }
    } else {
        let message = body["error"]["message"]
            .as_str()
            .unwrap_or("no message")
            .to_owned();
        eprintln!("error: the server refused the upload ({status}): {message}");
        if status.is_client_error() {
            exit::USAGE
        } else {
            exit::INTERNAL
        }
    }
}
