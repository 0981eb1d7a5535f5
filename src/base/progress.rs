//! What the user sees on stderr while churn works.
//!
//! stdout carries data only, so everything here goes to stderr. Progress bars
//! appear only on an interactive terminal (a cron job's log or a pipeline's
//! stderr stays clean), and `--quiet` leaves nothing but errors.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

#[derive(Clone, Debug)]
pub struct Progress {
    quiet: bool,
    bars: bool,
    /// `CHURN_TIMINGS=1` prints the duration of each stage, for benchmarking.
    timings: Option<std::time::Instant>,
}

impl Progress {
    pub fn new(quiet: bool) -> Self {
        Progress {
            quiet,
            bars: !quiet && std::io::stderr().is_terminal(),
            timings: std::env::var_os("CHURN_TIMINGS").map(|_| std::time::Instant::now()),
        }
    }

    /// A silent instance, for tests and library use.
    pub fn silent() -> Self {
        Progress { quiet: true, bars: false, timings: None }
    }

    /// A one-line message on stderr, unless `--quiet`.
    pub fn note(&self, msg: &str) {
        if !self.quiet {
            eprintln!("{msg}");
        }
    }

    /// With `CHURN_TIMINGS` set, prints the time since start at the end of a stage.
    pub fn stage(&self, name: &str) {
        if let Some(t) = self.timings {
            let peak = std::fs::read_to_string("/proc/self/status")
                .ok()
                .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM")).map(str::to_string))
                .unwrap_or_default();
            // utime and stime of the process, in clock ticks (fields 14 and 15).
            let cpu = std::fs::read_to_string("/proc/self/stat")
                .ok()
                .and_then(|s| {
                    let fields: Vec<&str> = s.rsplit(')').next()?.split_whitespace().collect();
                    let tick = |i: usize| fields.get(i)?.parse::<f64>().ok().map(|v| v / 100.0);
                    Some(format!(" cpu user {:.2}s sys {:.2}s", tick(11)?, tick(12)?))
                })
                .unwrap_or_default();
            eprintln!(
                "churn: timing: {name} done at {:.3}s {peak}{cpu}",
                t.elapsed().as_secs_f64()
            );
        }
    }

    /// A warning on stderr, unless `--quiet`.
    pub fn warn(&self, msg: &str) {
        if !self.quiet {
            eprintln!("churn: warning: {msg}");
        }
    }

    /// A byte-count bar for reading a file of `total` bytes.
    pub fn bytes(&self, total: u64, msg: &str) -> ProgressBar {
        if !self.bars {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template("{msg} {wide_bar} {bytes}/{total_bytes} ({eta})")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar.set_message(msg.to_string());
        bar
    }

    /// A bar counting `total` steps of a longer job.
    pub fn steps(&self, total: u64, msg: &str) -> ProgressBar {
        if !self.bars {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template("{msg} {wide_bar} {pos}/{len} ({elapsed})")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar.set_message(msg.to_string());
        bar
    }

    /// A spinner for a stage of unknown length.
    pub fn spinner(&self, msg: &str) -> ProgressBar {
        if !self.bars {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.set_message(msg.to_string());
        bar.enable_steady_tick(Duration::from_millis(120));
        bar
    }
}
