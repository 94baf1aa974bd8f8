//! `airlock completions bash|zsh|fish`: shell completion scripts from the
//! command definitions (clap_complete), so they never drift from the CLI.

use clap::{Args, CommandFactory as _, ValueEnum};
use clap_complete::Shell;

use crate::cli::{Cli, exit};

#[derive(Debug, Args)]
#[command(
    after_help = "bash: `airlock completions bash > /etc/bash_completion.d/airlock`; \
                        zsh: into a directory of $fpath as `_airlock`; \
                        fish: `airlock completions fish > ~/.config/fish/completions/airlock.fish`."
)]
pub struct CompletionsArgs {
    shell: ShellArg,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ShellArg {
    Bash,
    Zsh,
    Fish,
}

pub fn run(args: CompletionsArgs) -> u8 {
    let shell = match args.shell {
        ShellArg::Bash => Shell::Bash,
        ShellArg::Zsh => Shell::Zsh,
        ShellArg::Fish => Shell::Fish,
    };
    clap_complete::generate(
        shell,
        &mut Cli::command(),
        "airlock",
        &mut std::io::stdout(),
    );
    exit::OK
}
