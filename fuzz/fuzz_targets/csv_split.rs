//! The CSV reader cuts its input into chunks parsed in parallel. Wherever
//! it cuts, the records read from the pieces must be the records of the
//! whole text (the csv crate reading it in one go is the reference).
#![no_main]

use churn::io::input::csv_chunk_boundary;
use libfuzzer_sys::fuzz_target;

fn records(data: &[u8], delim: u8) -> Vec<csv::ByteRecord> {
    let mut rdr =
        csv::ReaderBuilder::new().has_headers(false).flexible(true).delimiter(delim).from_reader(data);
    rdr.byte_records().map(|r| r.unwrap_or_default()).collect()
}

/// The fields of each record. The csv crate drops a byte-order mark at the
/// start of its input, which for a piece is a record's first field; churn
/// drops leading BOMs from every value, so the comparison does too.
/// A record that is one empty field (a blank line, or a line holding only a
/// BOM) is skipped by churn, and the csv crate drops some of them itself.
fn fields(recs: Vec<csv::ByteRecord>) -> Vec<Vec<Vec<u8>>> {
    recs.iter()
        .map(|r| r.iter().map(|f| churn::io::input::strip_boms(f).to_vec()).collect::<Vec<_>>())
        .filter(|r| !(r.len() == 1 && r[0].trim_ascii().is_empty()))
        .collect()
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, text)) = data.split_first() else { return };
    let delim = if first & 1 == 0 { b',' } else { b';' };
    let cut = (first as usize * 7919) % (text.len() + 1);
    if let Some(b) = csv_chunk_boundary(&text[..cut], delim) {
        let mut parts = fields(records(&text[..b], delim));
        parts.extend(fields(records(&text[b..], delim)));
        assert_eq!(parts, fields(records(text, delim)));
    }
});
