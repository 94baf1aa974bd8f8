//! `airlock schedules [list|create|show|pause|resume|update|rm]`: cron
//! schedules of a project's steps.

use airlock_client::{NewSchedule, Schedule, ScheduleChange};
use clap::{Args, Subcommand};

use crate::cli::output::{Table, escape, print_json, when, when_both};
use crate::cli::remote::{
    CliResult, Failure, OutputArgs, ProjectArgs, ServerArgs, api, finish, or_hint,
};

#[derive(Debug, Args)]
pub struct SchedulesArgs {
    #[command(flatten)]
    server: ServerArgs,
    #[command(flatten)]
    project: ProjectArgs,
    #[command(flatten)]
    output: OutputArgs,
    #[command(subcommand)]
    command: Option<SchedulesCommand>,
}

#[derive(Debug, Subcommand)]
enum SchedulesCommand {
    /// A step's schedules, or the whole project's without STEP (the default).
    List { step: Option<String> },
    /// Run a step on a cron schedule.
    Create(CreateArgs),
    /// One schedule, with its next fire times.
    Show { id: String },
    /// Stop a schedule firing (it is kept).
    Pause { id: String },
    /// Start a paused schedule again, from its next fire time after now.
    Resume { id: String },
    /// Change a schedule's cron expression, time zone or input.
    Update(UpdateArgs),
    /// Delete a schedule.
    Rm { id: String },
}

#[derive(Debug, Args)]
struct CreateArgs {
    step: String,
    /// 5 fields (`minute hour day-of-month month day-of-week`), or 6 with
    /// seconds first; quote it.
    #[arg(long)]
    cron: String,
    /// An IANA time zone, e.g. `Europe/Paris` [server default: UTC].
    #[arg(long)]
    timezone: Option<String>,
    /// Every run's input, as JSON text [default: null].
    #[arg(long, value_name = "JSON")]
    input: Option<String>,
    /// The end user the runs act for.
    #[arg(long, value_name = "ID")]
    external_user_id: Option<String>,
    /// Create it paused.
    #[arg(long)]
    paused: bool,
}

#[derive(Debug, Args)]
struct UpdateArgs {
    id: String,
    #[arg(long)]
    cron: Option<String>,
    #[arg(long)]
    timezone: Option<String>,
    /// The runs' new input, as JSON text.
    #[arg(long, value_name = "JSON")]
    input: Option<String>,
}

pub async fn run(args: SchedulesArgs) -> u8 {
    finish(execute(args).await)
}

const STEP_HINT: &str = "`airlock steps list` shows the project's steps";
const ID_HINT: &str = "`airlock schedules list` shows the project's schedules";

fn json_input(text: Option<&str>) -> CliResult<Option<serde_json::Value>> {
    text.map(|t| {
        serde_json::from_str(t)
            .map_err(|e| Failure::usage(format!("--input is not valid JSON: {e}")))
    })
    .transpose()
}

fn next_text(s: &Schedule, absolute: bool) -> String {
    match (s.enabled, s.next_fire_times.first()) {
        (false, _) => "paused".to_owned(),
        (true, Some(t)) => when(*t, absolute),
        (true, None) => "never".to_owned(),
    }
}

fn print_one(s: &Schedule) {
    let mut fields = Table::fields();
    fields.field("schedule", s.id.clone());
    fields.field("step", s.step.clone());
    fields.field("cron", s.cron.clone());
    fields.field("timezone", s.timezone.clone());
    fields.field("input", s.input.to_string());
    fields.field("enabled", s.enabled.to_string());
    for (i, t) in s.next_fire_times.iter().enumerate() {
        fields.field(if i == 0 { "next" } else { "then" }, when_both(*t));
    }
    if let Some(t) = s.last_fired_at {
        fields.field("last fired", when_both(t));
    }
    if let Some(id) = &s.last_run_id {
        fields.field("last run", id.clone());
    }
    fields.field("created", when_both(s.created_at));
    print!("{}", fields.render());
}

async fn execute(args: SchedulesArgs) -> CliResult<()> {
    let client = args.server.client()?;
    let project = args.project.require()?;
    let url = args.server.url();
    let out = args.output;
    let one = |s: Schedule| -> CliResult<()> {
        if out.json {
            return print_json(&s);
        }
        print_one(&s);
        Ok(())
    };
    match args
        .command
        .unwrap_or(SchedulesCommand::List { step: None })
    {
        SchedulesCommand::List { step } => {
            let schedules = or_hint(
                client.list_schedules(project, step.as_deref()).await,
                url,
                STEP_HINT,
            )?;
            if out.json {
                return print_json(&serde_json::json!({ "schedules": schedules }));
            }
            let mut table = Table::new(&["ID", "STEP", "CRON", "TIMEZONE", "NEXT"]);
            for s in &schedules {
                table.row(vec![
                    s.id.clone(),
                    s.step.clone(),
                    s.cron.clone(),
                    s.timezone.clone(),
                    next_text(s, out.absolute),
                ]);
            }
            table
                .print_or("no schedules: create one with `airlock schedules create STEP --cron …`");
        }
        SchedulesCommand::Create(create) => {
            let input = json_input(create.input.as_deref())?.unwrap_or(serde_json::Value::Null);
            let new = NewSchedule {
                cron: create.cron,
                timezone: create.timezone,
                input,
                external_user_id: create.external_user_id,
                enabled: create.paused.then_some(false),
            };
            let s = or_hint(
                client.create_schedule(project, &create.step, &new).await,
                url,
                STEP_HINT,
            )?;
            one(s)?;
        }
        SchedulesCommand::Show { id } => one(or_hint(
            client.get_schedule(project, &id).await,
            url,
            ID_HINT,
        )?)?,
        SchedulesCommand::Pause { id } => one(change(&client, project, url, &id, false).await?)?,
        SchedulesCommand::Resume { id } => one(change(&client, project, url, &id, true).await?)?,
        SchedulesCommand::Update(update) => {
            let change = ScheduleChange {
                cron: update.cron,
                timezone: update.timezone,
                input: json_input(update.input.as_deref())?,
                enabled: None,
            };
            if change.cron.is_none() && change.timezone.is_none() && change.input.is_none() {
                return Err(Failure::usage(
                    "nothing to change: give --cron, --timezone or --input",
                ));
            }
            one(or_hint(
                client.update_schedule(project, &update.id, &change).await,
                url,
                ID_HINT,
            )?)?;
        }
        SchedulesCommand::Rm { id } => {
            api(client.delete_schedule(project, &id).await, url)?;
            if out.json {
                return print_json(&serde_json::json!({ "deleted": id }));
            }
            println!("deleted schedule {}", escape(&id));
        }
    }
    Ok(())
}

async fn change(
    client: &airlock_client::Client,
    project: &str,
    url: &str,
    id: &str,
    enabled: bool,
) -> CliResult<Schedule> {
    let change = ScheduleChange {
        enabled: Some(enabled),
        ..ScheduleChange::default()
    };
    or_hint(
        client.update_schedule(project, id, &change).await,
        url,
        ID_HINT,
    )
}
