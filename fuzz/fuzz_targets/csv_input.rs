//! CSV bytes through the whole input layer (encoding checks, chunking,
//! column detection, date-layout detection, parsing, interning): any input
//! must give transactions or an error, never a panic, and what it gives
//! must hold the invariants every analysis relies on.
#![no_main]

use std::io::Write;

use churn::io::input::{load, LoadOptions};
use churn::base::progress::Progress;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut file = tempfile::Builder::new().suffix(".csv").tempfile().unwrap();
    file.write_all(data).unwrap();
    // The first byte picks the options, so the fuzzer explores them too.
    let flags = data.first().copied().unwrap_or(0);
    let opts = LoadOptions {
        inputs: vec![file.path().to_path_buf()],
        skip_invalid: flags & 1 != 0,
        delimiter: (flags & 2 != 0).then_some(b';'),
        count_duplicates: flags & 4 != 0,
        ..LoadOptions::default()
    };
    if let Ok((tx, report)) = load(&opts, &Progress::new(true)) {
        assert_eq!(tx.customer.len(), tx.day.len());
        assert_eq!(tx.customer.len(), tx.amount.len());
        assert!(report.rows >= tx.len() as u64);
        for (&c, (&d, &a)) in tx.customer.iter().zip(tx.day.iter().zip(&tx.amount)) {
            let id = tx.ids.get_bytes(c);
            assert!(!id.is_empty() && id.trim_ascii() == id, "untrimmed or empty id");
            assert!(std::str::from_utf8(id).is_ok(), "id is not UTF-8");
            assert!(churn::base::dates::in_supported_range(d) && d <= tx.as_of);
            assert!(a.is_finite());
        }
    }
});
