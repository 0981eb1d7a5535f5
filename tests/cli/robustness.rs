//! Interrupted runs leave the previous output in place.

use crate::util::*;

#[cfg(unix)]
fn interrupted_run_keeps_the_old_output(signal: &str) -> Vec<String> {
    let input = million_customers();
    // A few attempts, in case a run finishes writing before it is caught.
    for _ in 0..5 {
        let dir = TempDir::new().unwrap();
        let out = dir.path().join("out.csv");
        std::fs::write(&out, "previous\n").unwrap();
        let args = ["rfm", input.to_str().unwrap(), "-o", out.to_str().unwrap(), "-q"];
        let Some(status) = interrupted(&args, dir.path(), signal) else { continue };
        if status.success() {
            // The run renamed its output and ended between the temporary
            // file's sighting and the signal: try again.
            assert_ne!(std::fs::read_to_string(&out).unwrap(), "previous\n");
            continue;
        }
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "previous\n");
        return std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n != "out.csv")
            .collect();
    }
    panic!("the run always finished before it could be interrupted");
}

#[cfg(unix)]
#[test]
fn interrupted_runs_leave_the_previous_output() {
    // SIGINT (Ctrl-C) and SIGTERM: the temporary file is removed too.
    assert_eq!(interrupted_run_keeps_the_old_output("-INT"), Vec::<String>::new());
    assert_eq!(interrupted_run_keeps_the_old_output("-TERM"), Vec::<String>::new());
    // SIGKILL cannot be caught: the old output is intact, a temporary file
    // (hidden, .churn-*.tmp) may remain.
    for left in interrupted_run_keeps_the_old_output("-KILL") {
        assert!(left.starts_with(".churn-") && left.ends_with(".tmp"), "{left}");
    }
}
