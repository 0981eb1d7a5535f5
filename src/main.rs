use std::process::ExitCode;

use clap::Parser;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `purge_delay` option (the same index in its v2 and v3 APIs).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

fn main() -> ExitCode {
    // By default mimalloc returns freed memory to the OS after 10 ms, and the
    // reader frees and reallocates chunk buffers constantly: a third of the
    // run went to the kernel zeroing pages. A one-second delay keeps them;
    // `churn::base::release_freed_memory` returns them between stages.
    // SAFETY: sets a process-wide allocator option before any threads start.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 1000) };
    let cli = match churn::app::cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    // Ctrl-C or SIGTERM (a cron timeout) mid-write: remove the temporary
    // file, so an interrupted run leaves the previous output and nothing else.
    let _ = ctrlc::set_handler(|| {
        churn::io::output::remove_pending_files();
        std::process::exit(130);
    });
    // A panic is a bug: report it as one line and exit 1, like other errors.
    // Worker threads may all hit the same bug: say it once.
    static REPORTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    std::panic::set_hook(Box::new(|info| {
        if !REPORTED.swap(true, std::sync::atomic::Ordering::SeqCst) {
            eprintln!("churn: internal error (please report): {info}");
        }
    }));
    match std::panic::catch_unwind(|| churn::app::run(cli)) {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(e)) if churn::base::is_broken_pipe(&e) => ExitCode::SUCCESS,
        Ok(Err(e)) => {
            eprintln!("churn: {e:#}");
            ExitCode::from(churn::base::exit_code(&e) as u8)
        }
        Err(_) => ExitCode::FAILURE,
    }
}
