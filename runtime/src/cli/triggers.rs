//! `airlock triggers [list|create|rm]`: HTTP triggers, printed with their
//! full URL (the server's base and `/t/{id}`).

use airlock_client::{Client, NewTrigger, Signature, Trigger};
use clap::{Args, Subcommand, ValueEnum};

use crate::cli::output::{Table, escape, print_json, when, when_both};
use crate::cli::remote::{
    CliResult, Failure, OutputArgs, ProjectArgs, ServerArgs, api, finish, or_hint,
};

#[derive(Debug, Args)]
pub struct TriggersArgs {
    #[command(flatten)]
    server: ServerArgs,
    #[command(flatten)]
    project: ProjectArgs,
    #[command(flatten)]
    output: OutputArgs,
    #[command(subcommand)]
    command: Option<TriggersCommand>,
}

#[derive(Debug, Subcommand)]
enum TriggersCommand {
    /// A step's triggers, or every step's without STEP (the default).
    List { step: Option<String> },
    /// Give a step a public URL that runs it.
    Create(Box<CreateArgs>),
    /// Delete a trigger; its URL answers 404 from then on.
    Rm {
        step: String,
        /// Trigger ids are base64url: one may begin with `-`.
        #[arg(allow_hyphen_values = true)]
        id: String,
    },
}

#[derive(Debug, Args)]
struct CreateArgs {
    step: String,
    /// Check each request's signature before anything runs.
    #[arg(long, value_enum, requires = "secret")]
    signature: Option<SignatureKind>,
    /// The project secret that keys the signature (its name, not its value).
    #[arg(long, value_name = "NAME", requires = "signature")]
    secret: Option<String>,
    /// hmac-sha256, hmac: the header carrying the signature [hmac-sha256
    /// server default: X-Hub-Signature-256; hmac: required].
    #[arg(long, value_name = "NAME")]
    header: Option<String>,
    /// hmac-sha256, hmac: the text before the encoded MAC [server default:
    /// sha256= for hmac-sha256, none for hmac].
    #[arg(long, value_name = "TEXT")]
    prefix: Option<String>,
    /// stripe, hmac: the largest clock difference accepted, in seconds [server default: 300].
    #[arg(long, value_name = "SECS")]
    tolerance_secs: Option<u64>,
    /// twilio: the scheme and host Twilio calls (e.g. https://hooks.example.com);
    /// the request's path and query follow it in the signed URL.
    #[arg(long, value_name = "URL")]
    base_url: Option<String>,
    /// hmac: sha1, sha256 or sha512 [server default: sha256].
    #[arg(long, value_name = "HASH")]
    algorithm: Option<String>,
    /// hmac: hex or base64 [server default: hex].
    #[arg(long, value_name = "ENCODING")]
    encoding: Option<String>,
    /// hmac: what is signed, a template of {body} and {timestamp} [server default: {body}].
    #[arg(long, value_name = "TEMPLATE")]
    signed: Option<String>,
    /// hmac: the header carrying the {timestamp} (unix seconds).
    #[arg(long, value_name = "NAME")]
    timestamp_header: Option<String>,
    /// Pin the trigger to this stored version (a digest `airlock steps show`
    /// lists): it keeps running it after newer uploads or a rollback.
    #[arg(long, value_name = "DIGEST")]
    digest: Option<String>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum SignatureKind {
    /// GitHub style: `prefix` + hex(HMAC-SHA256(secret, body)) in `header`.
    #[value(name = "hmac-sha256")]
    HmacSha256,
    /// `Stripe-Signature: t=…,v1=…`.
    Stripe,
    /// `X-Twilio-Signature` (needs --base-url).
    Twilio,
    /// `X-Slack-Signature` and `X-Slack-Request-Timestamp` (5 minutes).
    Slack,
    /// `X-Shopify-Hmac-Sha256`.
    Shopify,
    /// A configurable HMAC (needs --header).
    Hmac,
}

pub async fn run(args: TriggersArgs) -> u8 {
    finish(execute(args).await)
}

const STEP_HINT: &str = "`airlock steps list` shows the project's steps";

/// A trigger with its whole URL, as `--json` prints it.
#[derive(serde::Serialize)]
struct Shown<'a> {
    #[serde(flatten)]
    trigger: &'a Trigger,
    /// The server's base URL and `url`.
    full_url: String,
}

fn shown<'a>(client: &Client, trigger: &'a Trigger) -> Shown<'a> {
    Shown {
        trigger,
        full_url: client.url(&trigger.url),
    }
}

fn signature_text(s: &Option<Signature>) -> String {
    match s {
        None => "none".to_owned(),
        Some(Signature::HmacSha256 { secret, .. }) => format!("hmac-sha256 ({secret})"),
        Some(Signature::Stripe { secret, .. }) => format!("stripe ({secret})"),
        Some(Signature::Twilio { secret, .. }) => format!("twilio ({secret})"),
        Some(Signature::Slack { secret }) => format!("slack ({secret})"),
        Some(Signature::Shopify { secret }) => format!("shopify ({secret})"),
        Some(Signature::Hmac {
            secret, algorithm, ..
        }) => format!(
            "hmac-{} ({secret})",
            algorithm.as_deref().unwrap_or("sha256")
        ),
    }
}

async fn execute(args: TriggersArgs) -> CliResult<()> {
    let client = args.server.client()?;
    let project = args.project.require()?;
    let url = args.server.url();
    let out = args.output;
    match args.command.unwrap_or(TriggersCommand::List { step: None }) {
        TriggersCommand::List { step } => {
            let steps = match step {
                Some(s) => vec![s],
                None => api(client.list_steps(project).await, url)?
                    .into_iter()
                    .map(|s| s.step)
                    .collect(),
            };
            let mut triggers = Vec::new();
            for step in &steps {
                triggers.extend(or_hint(
                    client.list_triggers(project, step).await,
                    url,
                    STEP_HINT,
                )?);
            }
            if out.json {
                let list: Vec<Shown<'_>> = triggers.iter().map(|t| shown(&client, t)).collect();
                return print_json(&serde_json::json!({ "triggers": list }));
            }
            let mut table = Table::new(&["ID", "STEP", "SIGNATURE", "CREATED", "URL"]);
            for t in &triggers {
                table.row(vec![
                    t.id.clone(),
                    t.step.clone(),
                    signature_text(&t.signature),
                    when(t.created_at, out.absolute),
                    client.url(&t.url),
                ]);
            }
            table.print_or("no triggers: create one with `airlock triggers create STEP`");
        }
        TriggersCommand::Create(create) => {
            let create = *create;
            let signature = match (create.signature, create.secret) {
                (Some(SignatureKind::HmacSha256), Some(secret)) => Some(Signature::HmacSha256 {
                    secret,
                    header: create.header,
                    prefix: create.prefix,
                }),
                (Some(SignatureKind::Stripe), Some(secret)) => Some(Signature::Stripe {
                    secret,
                    tolerance_secs: create.tolerance_secs,
                }),
                (Some(SignatureKind::Twilio), Some(secret)) => Some(Signature::Twilio {
                    secret,
                    base_url: create.base_url.ok_or_else(|| {
                        Failure::usage("--signature twilio needs --base-url (the URL Twilio calls)")
                    })?,
                }),
                (Some(SignatureKind::Slack), Some(secret)) => Some(Signature::Slack { secret }),
                (Some(SignatureKind::Shopify), Some(secret)) => Some(Signature::Shopify { secret }),
                (Some(SignatureKind::Hmac), Some(secret)) => Some(Signature::Hmac {
                    secret,
                    header: create
                        .header
                        .ok_or_else(|| Failure::usage("--signature hmac needs --header"))?,
                    algorithm: create.algorithm,
                    encoding: create.encoding,
                    prefix: create.prefix,
                    signed: create.signed,
                    timestamp_header: create.timestamp_header,
                    tolerance_secs: create.tolerance_secs,
                }),
                _ => None,
            };
            let trigger = or_hint(
                client
                    .create_trigger(
                        project,
                        &create.step,
                        &NewTrigger {
                            signature,
                            digest: create.digest,
                        },
                    )
                    .await,
                url,
                STEP_HINT,
            )?;
            if out.json {
                return print_json(&shown(&client, &trigger));
            }
            println!("{}", escape(&client.url(&trigger.url)));
            let mut fields = Table::fields();
            fields.field("trigger", trigger.id.clone());
            fields.field("step", trigger.step.clone());
            fields.field("signature", signature_text(&trigger.signature));
            if let Some(digest) = &trigger.digest {
                fields.field("pinned to", digest.clone());
            }
            fields.field("created", when_both(trigger.created_at));
            eprint!("{}", fields.render());
        }
        TriggersCommand::Rm { step, id } => {
            or_hint(
                client.delete_trigger(project, &step, &id).await,
                url,
                "`airlock triggers list STEP` shows its triggers",
            )?;
            if out.json {
                return print_json(&serde_json::json!({ "deleted": id }));
            }
            println!("deleted trigger {}", escape(&id));
        }
    }
    Ok(())
}
