//! The command line: clap's parsing, the config file merged under the flags,
//! and one file per command that turns its flags into options for the
//! pipeline and writes what comes back. Nothing below this layer sees a flag.

pub mod cli;
pub mod cmd;
pub mod config;
pub mod values;

use anyhow::{Context, Result};

use crate::base::progress::Progress;
use crate::base::UsageError;
use cli::{Cli, Command};

/// Runs a parsed command line.
pub fn run(cli: Cli) -> Result<()> {
    let progress = Progress::new(cli.quiet);
    let mut command = cli.command;
    // A config file that cannot be used is a usage error, like a bad flag.
    let usage = |e: anyhow::Error| UsageError(format!("{e:#}"));
    if let Some((path, config)) = config::discover(cli.config.as_deref()).map_err(usage)? {
        let in_file = || format!("in config file {}", path.display());
        if let Some(input) = command.input_mut() {
            input.apply_config(&config.input).with_context(in_file).map_err(usage)?;
        }
        if let Command::Report(args) = &mut command {
            args.apply_config(&config.report).with_context(in_file).map_err(usage)?;
        }
        progress.note(&format!("settings from {}", path.display()));
    }
    match command {
        Command::Rfm(args) => cmd::rfm::run(args, &progress),
        Command::Inspect(args) => cmd::inspect::run(args, &progress),
        Command::Sql(args) => cmd::sql::run(args, &progress),
        Command::Cohorts(args) => cmd::cohorts::run(args, &progress),
        Command::Fit(args) => cmd::fit::run(args, &progress),
        Command::Score(args) => cmd::score::run(args, &progress),
        Command::Backtest(args) => cmd::backtest::run(args, &progress),
        Command::Report(args) => cmd::report::run(args, &progress),
    }
}
