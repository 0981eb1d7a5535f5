//! What reading found besides the rows: the rows skipped and why, the
//! values that stopped it, and the summary that says so on stderr.

use std::fmt;

use crate::base::text::{count, thousands};

/// A value that could not be used, with where it was.
#[derive(Debug, Clone)]
pub struct RowError {
    pub file: String,
    /// Line number in a text file, or 1-based row number in a Parquet file.
    pub line: u64,
    pub is_row_number: bool,
    pub column: String,
    pub value: String,
    pub problem: String,
    pub hint: String,
}

impl fmt::Display for RowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at = if self.is_row_number { "row" } else { "line" };
        write!(f, "{} {at} {}", self.file, self.line)?;
        if !self.column.is_empty() {
            write!(
                f,
                ", column '{}': '{}'",
                self.column.escape_debug(),
                self.value.escape_debug()
            )?;
        }
        write!(f, " {}", self.problem)?;
        if !self.hint.is_empty() {
            write!(f, "; {}", self.hint)?;
        }
        Ok(())
    }
}

impl std::error::Error for RowError {}

/// Why a row was not used.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum SkipReason {
    BlankCustomer,
    BadDate,
    DateOutOfRange,
    BadAmount,
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SkipReason::BlankCustomer => "blank customer id",
            SkipReason::BadDate => "unparseable date",
            SkipReason::DateOutOfRange => "date outside 1900-2100",
            SkipReason::BadAmount => "unparseable amount",
        })
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Skips {
    pub blank_customer: u64,
    pub bad_date: u64,
    pub date_out_of_range: u64,
    pub bad_amount: u64,
}

impl Skips {
    pub(crate) fn add(&mut self, o: &Skips) {
        self.blank_customer += o.blank_customer;
        self.bad_date += o.bad_date;
        self.date_out_of_range += o.date_out_of_range;
        self.bad_amount += o.bad_amount;
    }

    pub(crate) fn bump(&mut self, r: SkipReason) {
        match r {
            SkipReason::BlankCustomer => self.blank_customer += 1,
            SkipReason::BadDate => self.bad_date += 1,
            SkipReason::DateOutOfRange => self.date_out_of_range += 1,
            SkipReason::BadAmount => self.bad_amount += 1,
        }
    }

    pub fn total(&self) -> u64 {
        self.blank_customer + self.bad_date + self.date_out_of_range + self.bad_amount
    }

    pub fn by_reason(&self) -> Vec<(SkipReason, u64)> {
        [
            (SkipReason::BlankCustomer, self.blank_customer),
            (SkipReason::BadDate, self.bad_date),
            (SkipReason::DateOutOfRange, self.date_out_of_range),
            (SkipReason::BadAmount, self.bad_amount),
        ]
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .collect()
    }
}

/// What happened while reading: for the stderr summary and `churn inspect`.
#[derive(Clone, Debug, Default)]
pub struct LoadReport {
    /// (name, data rows) per input.
    pub files: Vec<(String, u64)>,
    pub rows: u64,
    pub mapping: String,
    pub date_layout: String,
    pub skipped: Skips,
    /// Rows dated after the analysis date, ignored.
    pub after_as_of: u64,
    pub returns_dropped: u64,
    /// Rows identical to an earlier row, if counted.
    pub duplicates: Option<u64>,
    /// Date range of all parsed rows, before the as-of cut.
    pub first_day: Option<i32>,
    pub last_day: Option<i32>,
    pub as_of_from_data: bool,
}

impl LoadReport {
    /// The one-line summary printed on stderr.
    pub fn summary(&self, customers: usize) -> String {
        let mut s = format!(
            "read {} from {}; {}",
            count(self.rows, "row"),
            count(self.files.len() as u64, "input"),
            count(customers as u64, "customer")
        );
        let skipped = self.skipped.total();
        if skipped > 0 {
            let parts: Vec<String> = self
                .skipped
                .by_reason()
                .iter()
                .map(|(r, n)| format!("{r}: {}", thousands(*n)))
                .collect();
            s += &format!("; skipped {} ({})", count(skipped, "row"), parts.join(", "));
        }
        if self.after_as_of > 0 {
            s += &format!("; ignored {} after the as-of date", count(self.after_as_of, "row"));
        }
        if self.returns_dropped > 0 {
            s += &format!("; dropped {}", count(self.returns_dropped, "return"));
        }
        s
    }
}
