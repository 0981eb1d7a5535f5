//! churn: customer-retention analytics from transaction exports.
//!
//! The binary is a thin shell over this library: `input` turns exports into
//! integer-coded transactions, the domain modules (`rfm`, `segments`) compute
//! results as plain data, and `output` writes them. Only `cli` and `cmd` know
//! about the command line.

pub mod actions;
pub mod backtest;
pub mod changes;
pub mod chart;
pub mod cli;
pub mod cmd;
pub mod cohorts;
pub mod config;
pub mod dates;
pub mod input;
pub mod models;
pub mod output;
pub mod progress;
pub mod report;
pub mod rfm;
pub mod segments;
pub mod sql;

use std::fmt;

use anyhow::{Context, Result};

use cli::{Cli, Command};
use progress::Progress;

/// A mistake in how churn was invoked (exit code 2), as opposed to a problem
/// with the data or the system (exit code 1).
#[derive(Debug)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

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

/// Returns memory freed by a finished stage to the OS now, so that peak
/// memory is the largest stage rather than the sum of stages (the allocator
/// otherwise keeps freed pages for a while to make reuse cheap).
pub fn release_freed_memory() {
    // SAFETY: mi_collect only walks mimalloc's own heaps; it is a no-op for
    // memory from other allocators.
    unsafe { libmimalloc_sys::mi_collect(true) };
}

/// Asks the CPU to bring `v[i]` into cache; a no-op off x86-64 or out of bounds.
#[inline(always)]
pub fn prefetch<T>(v: &[T], i: usize) {
    #[cfg(target_arch = "x86_64")]
    if let Some(x) = v.get(i) {
        // SAFETY: a prefetch is only a hint; the address is valid anyway.
        unsafe {
            std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
                (x as *const T).cast(),
            )
        };
    }
}

/// The process exit code for an error: 2 for usage errors, 1 otherwise.
pub fn exit_code(err: &anyhow::Error) -> i32 {
    if err.chain().any(|e| e.is::<UsageError>()) {
        2
    } else {
        1
    }
}

/// True when the error is a closed stdout (e.g. `churn rfm ... | head`).
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            || e.downcast_ref::<csv::Error>().is_some_and(|c| {
                matches!(c.kind(), csv::ErrorKind::Io(io) if io.kind() == std::io::ErrorKind::BrokenPipe)
            })
    })
}
