//! Calendar arithmetic and date parsing.
//!
//! Every analysis in churn works on whole UTC calendar days, so a date is
//! stored as an `i32` day number (days since 1970-01-01). Parsing goes
//! straight from bytes to that number: exports hold tens of millions of dates
//! and a general-purpose datetime parser per value is the slowest part of a
//! naive reader.
//!
//! The layout of a column is decided once, from the data, and then every value
//! is parsed with that one layout. A value that fits both day-first and
//! month-first readings is never guessed: detection reports the ambiguity and
//! the caller asks the user for `--date-format`.

use std::fmt;

/// Days since 1970-01-01 of a proleptic Gregorian date (Hinnant's algorithm).
pub fn days_from_civil(y: i32, m: u32, d: u32) -> i32 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = (y - era * 400) as u32; // [0, 399]
    let mp = (m + 9) % 12; // March = 0
    let doy = (153 * mp + 2) / 5 + d - 1; // [0, 365]
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy; // [0, 146096]
    era * 146_097 + doe as i32 - 719_468
}

/// The (year, month, day) of a day number; inverse of [`days_from_civil`].
pub fn civil_from_days(z: i32) -> (i32, u32, u32) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = (z - era * 146_097) as u32;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe as i32 + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// The first and last days churn accepts: 1900-01-01 and 2100-12-31.
///
/// Sales exports use dates such as 0000-01-01 or 9999-12-31 as placeholders
/// for "no date". Taken at face value, one such row moves the default as-of
/// date thousands of years or gives a customer a tenure of centuries, and
/// every figure after that is plausible-looking and wrong; so a value outside
/// this range is an error (or a counted skip with `--skip-invalid`).
pub const FIRST_DAY: i32 = -25_567;
pub const LAST_DAY: i32 = 47_846;

/// True when a day number lies in the range churn accepts.
#[inline]
pub fn in_supported_range(day: i32) -> bool {
    (FIRST_DAY..=LAST_DAY).contains(&day)
}

const ISO_FAMILY: &str = "an ISO 8601 date (YYYY-MM-DD)";
const COMPACT_FAMILY: &str = "a YYYYMMDD date";
const NUMERIC_FAMILY: &str = "a DD/MM/YYYY or MM/DD/YYYY date";

/// Which family of detectable layouts a value fits, in words, for messages
/// about a column that mixes layouts.
pub fn layout_family(s: &[u8]) -> Option<&'static str> {
    if parse_iso(s).is_some() {
        Some(ISO_FAMILY)
    } else if parse_compact(s).is_some() {
        Some(COMPACT_FAMILY)
    } else if numeric_parts(s).is_some() {
        Some(NUMERIC_FAMILY)
    } else {
        None
    }
}

pub fn is_leap(y: i32) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

pub fn days_in_month(y: i32, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(y) => 29,
        2 => 28,
        _ => 0,
    }
}

fn valid_ymd(y: i32, m: u32, d: u32) -> bool {
    (1..=12).contains(&m) && d >= 1 && d <= days_in_month(y, m)
}

/// A day number displayed as YYYY-MM-DD.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Day(pub i32);

impl fmt::Display for Day {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (y, m, d) = civil_from_days(self.0);
        write!(f, "{y:04}-{m:02}-{d:02}")
    }
}

/// Parses a plain `YYYY-MM-DD` date, as used by `--as-of`.
pub fn parse_ymd(s: &str) -> Option<i32> {
    let b = s.trim().as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let y = digits(&b[0..4])? as i32;
    let m = digits(&b[5..7])?;
    let d = digits(&b[8..10])?;
    valid_ymd(y, m, d).then(|| days_from_civil(y, m, d))
}

fn digits(b: &[u8]) -> Option<u32> {
    if b.is_empty() || b.len() > 9 {
        return None;
    }
    let mut v = 0u32;
    for &c in b {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + (c - b'0') as u32;
    }
    Some(v)
}

/// How the values of a date column are laid out.
#[derive(Clone, Debug)]
pub enum DateLayout {
    /// ISO 8601: `YYYY-MM-DD` (also `/` or `.` separated), optionally followed
    /// by a time and a `Z` or `±HH:MM` offset.
    Iso,
    /// `YYYYMMDD`.
    Compact,
    /// `DD/MM/YYYY` (or `.`/`-` separated), optionally with a time.
    DayFirst,
    /// `MM/DD/YYYY` (or `.`/`-` separated), optionally with a time.
    MonthFirst,
    /// A user-supplied strftime format (`--date-format`).
    Custom(String),
}

impl fmt::Display for DateLayout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DateLayout::Iso => f.write_str("ISO 8601 (YYYY-MM-DD[THH:MM:SS][offset])"),
            DateLayout::Compact => f.write_str("YYYYMMDD"),
            DateLayout::DayFirst => f.write_str("day-first (DD/MM/YYYY [HH:MM[:SS]])"),
            DateLayout::MonthFirst => f.write_str("month-first (MM/DD/YYYY [HH:MM[:SS]])"),
            DateLayout::Custom(s) => write!(f, "--date-format '{s}'"),
        }
    }
}

/// Checks a `--date-format` string before any data is read.
pub fn validate_custom_format(fmt: &str) -> Result<(), String> {
    use chrono::format::{Item, StrftimeItems};
    let mut has_day = false;
    for item in StrftimeItems::new(fmt) {
        match item {
            Item::Error => return Err(format!("invalid --date-format '{fmt}'")),
            Item::Numeric(chrono::format::Numeric::Day, _)
            | Item::Numeric(chrono::format::Numeric::Ordinal, _)
            | Item::Numeric(chrono::format::Numeric::Timestamp, _) => has_day = true,
            _ => {}
        }
    }
    if !has_day {
        return Err(format!(
            "--date-format '{fmt}' has no day of month (%d, %e, %j or %s): churn works on calendar days"
        ));
    }
    Ok(())
}

impl DateLayout {
    /// The family of [`layout_family`] this layout belongs to (none for a
    /// custom format).
    pub fn family(&self) -> Option<&'static str> {
        match self {
            DateLayout::Iso => Some(ISO_FAMILY),
            DateLayout::Compact => Some(COMPACT_FAMILY),
            DateLayout::DayFirst | DateLayout::MonthFirst => Some(NUMERIC_FAMILY),
            DateLayout::Custom(_) => None,
        }
    }

    /// Parses one value (already trimmed) to a UTC day number.
    #[inline]
    pub fn parse(&self, s: &[u8]) -> Option<i32> {
        match self {
            DateLayout::Iso => parse_iso(s),
            DateLayout::Compact => parse_compact(s),
            DateLayout::DayFirst => parse_numeric(s, true),
            DateLayout::MonthFirst => parse_numeric(s, false),
            DateLayout::Custom(f) => parse_custom(s, f),
        }
    }
}

fn parse_compact(s: &[u8]) -> Option<i32> {
    if s.len() != 8 {
        return None;
    }
    let y = digits(&s[0..4])? as i32;
    let m = digits(&s[4..6])?;
    let d = digits(&s[6..8])?;
    valid_ymd(y, m, d).then(|| days_from_civil(y, m, d))
}

/// Reads 1..=max digits at `*i`, advancing it.
#[inline]
fn take_num(s: &[u8], i: &mut usize, min: usize, max: usize) -> Option<u32> {
    let start = *i;
    let mut v = 0u32;
    while *i < s.len() && *i - start < max && s[*i].is_ascii_digit() {
        v = v * 10 + (s[*i] - b'0') as u32;
        *i += 1;
    }
    (*i - start >= min).then_some(v)
}

fn parse_iso(s: &[u8]) -> Option<i32> {
    let mut i = 0;
    let y = take_num(s, &mut i, 4, 4)? as i32;
    let sep = *s.get(i)?;
    if !matches!(sep, b'-' | b'/' | b'.') {
        return None;
    }
    i += 1;
    let m = take_num(s, &mut i, 1, 2)?;
    if s.get(i) != Some(&sep) {
        return None;
    }
    i += 1;
    let d = take_num(s, &mut i, 1, 2)?;
    if !valid_ymd(y, m, d) {
        return None;
    }
    let day = days_from_civil(y, m, d);
    finish_time(s, i, day, true)
}

/// Parses `A/B/YYYY`; `day_first` says whether A is the day.
fn parse_numeric(s: &[u8], day_first: bool) -> Option<i32> {
    let (a, b, y, i) = numeric_parts(s)?;
    let (d, m) = if day_first { (a, b) } else { (b, a) };
    if !valid_ymd(y, m, d) {
        return None;
    }
    finish_time(s, i, days_from_civil(y, m, d), true)
}

/// The three numbers of `A/B/YYYY` and the index after them.
fn numeric_parts(s: &[u8]) -> Option<(u32, u32, i32, usize)> {
    let mut i = 0;
    let a = take_num(s, &mut i, 1, 2)?;
    let sep = *s.get(i)?;
    if !matches!(sep, b'-' | b'/' | b'.') {
        return None;
    }
    i += 1;
    let b = take_num(s, &mut i, 1, 2)?;
    if s.get(i) != Some(&sep) {
        return None;
    }
    i += 1;
    let y = take_num(s, &mut i, 4, 4)? as i32;
    Some((a, b, y, i))
}

/// Parses what may follow a date: `[T| ]HH:MM[:SS[.fff]][ ][AM|PM][ ][Z|UTC|±HH[:]MM|±HH]`,
/// and shifts the day by the offset so the result is the UTC calendar day.
fn finish_time(s: &[u8], mut i: usize, day: i32, allow_time: bool) -> Option<i32> {
    if i == s.len() {
        return Some(day);
    }
    if !allow_time || !matches!(s[i], b'T' | b't' | b' ') {
        return None;
    }
    i += 1;
    while i < s.len() && s[i] == b' ' {
        i += 1;
    }
    let mut h = take_num(s, &mut i, 1, 2)?;
    if s.get(i) != Some(&b':') {
        return None;
    }
    i += 1;
    let mi = take_num(s, &mut i, 2, 2)?;
    let mut sec = 0;
    if s.get(i) == Some(&b':') {
        i += 1;
        sec = take_num(s, &mut i, 2, 2)?;
        if matches!(s.get(i), Some(b'.') | Some(b',')) {
            i += 1;
            let start = i;
            while i < s.len() && s[i].is_ascii_digit() {
                i += 1;
            }
            if i == start {
                return None;
            }
        }
    }
    // Optional AM/PM.
    let mut j = i;
    while j < s.len() && s[j] == b' ' {
        j += 1;
    }
    if j + 2 <= s.len() {
        let ampm = [s[j].to_ascii_uppercase(), s[j + 1].to_ascii_uppercase()];
        if ampm == *b"AM" || ampm == *b"PM" {
            if !(1..=12).contains(&h) {
                return None;
            }
            h %= 12;
            if ampm == *b"PM" {
                h += 12;
            }
            i = j + 2;
        }
    }
    if h > 24 || mi > 59 || sec > 60 || (h == 24 && (mi > 0 || sec > 0)) {
        return None;
    }
    let secs = (h * 3600 + mi * 60 + sec) as i64;
    // Optional offset.
    while i < s.len() && s[i] == b' ' {
        i += 1;
    }
    let offset: i64 = if i == s.len() {
        0
    } else {
        match s[i] {
            b'Z' | b'z' if i + 1 == s.len() => 0,
            b'U' if &s[i..] == b"UTC" => 0,
            b'+' | b'-' => {
                let neg = s[i] == b'-';
                i += 1;
                let oh = take_num(s, &mut i, 2, 2)?;
                let mut om = 0;
                if i < s.len() {
                    if s[i] == b':' {
                        i += 1;
                    }
                    om = take_num(s, &mut i, 2, 2)?;
                }
                if i != s.len() || oh > 23 || om > 59 {
                    return None;
                }
                let o = (oh * 3600 + om * 60) as i64;
                if neg {
                    -o
                } else {
                    o
                }
            }
            _ => return None,
        }
    };
    let utc = day as i64 * 86_400 + secs - offset;
    Some(utc.div_euclid(86_400) as i32)
}

fn parse_custom(s: &[u8], fmt: &str) -> Option<i32> {
    use chrono::format::{parse, Parsed, StrftimeItems};
    let s = std::str::from_utf8(s).ok()?;
    let mut p = Parsed::new();
    parse(&mut p, s, StrftimeItems::new(fmt)).ok()?;
    if let Some(ts) = p.timestamp {
        return Some(ts.div_euclid(86_400) as i32);
    }
    let date = p.to_naive_date().ok()?;
    let day = days_from_civil(
        chrono::Datelike::year(&date),
        chrono::Datelike::month(&date),
        chrono::Datelike::day(&date),
    );
    match p.offset {
        None => Some(day),
        Some(off) => {
            let secs = p
                .to_naive_time()
                .map(|t| chrono::Timelike::num_seconds_from_midnight(&t) as i64)
                .unwrap_or(0);
            Some((day as i64 * 86_400 + secs - off as i64).div_euclid(86_400) as i32)
        }
    }
}

/// What the values of a column say about their layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Detected {
    Layout(LayoutKind),
    /// Every value read as `A/B/YYYY` with A ≤ 12 and B ≤ 12: day-first and
    /// month-first both fit.
    Ambiguous,
    /// No value to look at.
    Empty,
    /// A value matches no known layout.
    Unknown(String),
    /// `A/B/YYYY` values with A > 12 in some rows and B > 12 in others.
    Inconsistent(String, String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayoutKind {
    Iso,
    Compact,
    DayFirst,
    MonthFirst,
}

impl LayoutKind {
    pub fn layout(self) -> DateLayout {
        match self {
            LayoutKind::Iso => DateLayout::Iso,
            LayoutKind::Compact => DateLayout::Compact,
            LayoutKind::DayFirst => DateLayout::DayFirst,
            LayoutKind::MonthFirst => DateLayout::MonthFirst,
        }
    }
}

/// Accumulates evidence about a column's layout over any number of values,
/// so detection can run on a sample first and, when that is ambiguous, on
/// the rest of the data.
#[derive(Default, Debug, Clone)]
pub struct Detector {
    family: Option<Family>,
    first_unknown: Option<String>,
    day_first_witness: Option<String>,
    month_first_witness: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    Iso,
    Compact,
    Numeric,
}

impl Detector {
    pub fn observe(&mut self, s: &[u8]) {
        if s.is_empty() || self.first_unknown.is_some() {
            return;
        }
        let fam = if parse_iso(s).is_some() {
            Family::Iso
        } else if parse_compact(s).is_some() {
            Family::Compact
        } else if let Some((a, b, _, _)) = numeric_parts(s) {
            if a > 12 && self.day_first_witness.is_none() {
                self.day_first_witness = Some(String::from_utf8_lossy(s).into_owned());
            }
            if b > 12 && self.month_first_witness.is_none() {
                self.month_first_witness = Some(String::from_utf8_lossy(s).into_owned());
            }
            Family::Numeric
        } else {
            // Unparseable values are reported by the parser with their row;
            // only the first value decides whether the column is recognisable.
            if self.family.is_none() {
                self.first_unknown = Some(String::from_utf8_lossy(s).into_owned());
            }
            return;
        };
        if self.family.is_none() {
            self.family = Some(fam);
        }
    }

    /// True once more values cannot change the outcome.
    pub fn settled(&self) -> bool {
        !matches!(self.result(), Detected::Ambiguous | Detected::Empty)
    }

    pub fn result(&self) -> Detected {
        if let Some(v) = &self.first_unknown {
            return Detected::Unknown(v.clone());
        }
        match self.family {
            None => Detected::Empty,
            Some(Family::Iso) => Detected::Layout(LayoutKind::Iso),
            Some(Family::Compact) => Detected::Layout(LayoutKind::Compact),
            Some(Family::Numeric) => match (&self.day_first_witness, &self.month_first_witness) {
                (Some(a), Some(b)) => Detected::Inconsistent(a.clone(), b.clone()),
                (Some(_), None) => Detected::Layout(LayoutKind::DayFirst),
                (None, Some(_)) => Detected::Layout(LayoutKind::MonthFirst),
                (None, None) => Detected::Ambiguous,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iso(s: &str) -> Option<String> {
        parse_iso(s.as_bytes()).map(|d| Day(d).to_string())
    }

    #[test]
    fn supported_range_is_1900_to_2100() {
        assert_eq!(FIRST_DAY, days_from_civil(1900, 1, 1));
        assert_eq!(LAST_DAY, days_from_civil(2100, 12, 31));
        assert!(in_supported_range(FIRST_DAY) && in_supported_range(LAST_DAY));
        assert!(!in_supported_range(FIRST_DAY - 1) && !in_supported_range(LAST_DAY + 1));
        assert!(!in_supported_range(parse_iso(b"9999-12-31").unwrap()));
        assert!(!in_supported_range(parse_iso(b"0000-01-01").unwrap()));
    }

    #[test]
    fn civil_round_trip() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(days_from_civil(1969, 12, 31), -1);
        for z in -800_000..800_000 {
            let (y, m, d) = civil_from_days(z);
            assert!(valid_ymd(y, m, d));
            assert_eq!(days_from_civil(y, m, d), z);
        }
    }

    #[test]
    fn iso_variants() {
        assert_eq!(iso("2024-02-29").as_deref(), Some("2024-02-29"));
        assert_eq!(iso("2023-02-29"), None);
        assert_eq!(iso("2024-01-31T23:59:59").as_deref(), Some("2024-01-31"));
        assert_eq!(iso("2024-01-31 23:59:59.123456").as_deref(), Some("2024-01-31"));
        assert_eq!(iso("2024-01-31T23:30:00Z").as_deref(), Some("2024-01-31"));
        // 23:30 at UTC-05:00 is 04:30 UTC the next day.
        assert_eq!(iso("2024-01-31T23:30:00-05:00").as_deref(), Some("2024-02-01"));
        assert_eq!(iso("2024-01-31T23:30:00-0500").as_deref(), Some("2024-02-01"));
        assert_eq!(iso("2024-01-31 23:30:00 -0500").as_deref(), Some("2024-02-01"));
        // 01:00 at UTC+02:00 is 23:00 UTC the previous day.
        assert_eq!(iso("2024-03-01T01:00+02:00").as_deref(), Some("2024-02-29"));
        assert_eq!(iso("2024-01-31 10:00"), Some("2024-01-31".into()));
        assert_eq!(iso("2024/01/31").as_deref(), Some("2024-01-31"));
        assert_eq!(iso("2024-01-31x"), None);
        assert_eq!(iso("2024-13-01"), None);
        assert_eq!(iso("2024-01-31T25:00"), None);
        assert_eq!(iso("2024-01-31T"), None);
        assert_eq!(iso("2024-01-31T10:00+5"), None);
    }

    #[test]
    fn numeric_layouts() {
        let p = |s: &str, df| parse_numeric(s.as_bytes(), df).map(|d| Day(d).to_string());
        assert_eq!(p("12/1/2010 8:26", false).as_deref(), Some("2010-12-01"));
        assert_eq!(p("12/1/2010 8:26", true).as_deref(), Some("2010-01-12"));
        assert_eq!(p("31.12.2023", true).as_deref(), Some("2023-12-31"));
        assert_eq!(p("31.12.2023", false), None);
        assert_eq!(p("1/2/2024 3:45 PM", false).as_deref(), Some("2024-01-02"));
        assert_eq!(p("1/2/24", false), None);
    }

    #[test]
    fn compact_and_custom() {
        assert_eq!(
            parse_compact(b"20240229").map(|d| Day(d).to_string()).as_deref(),
            Some("2024-02-29")
        );
        assert_eq!(parse_compact(b"20240230"), None);
        let d = parse_custom(b"Jan 5, 2024", "%b %d, %Y").map(|d| Day(d).to_string());
        assert_eq!(d.as_deref(), Some("2024-01-05"));
        let d = parse_custom(b"05/01/2024 23:00 -0200", "%d/%m/%Y %H:%M %z");
        assert_eq!(d.map(|d| Day(d).to_string()).as_deref(), Some("2024-01-06"));
        assert!(validate_custom_format("%Y-%m").is_err());
        assert!(validate_custom_format("%d/%m/%Y").is_ok());
    }

    #[test]
    fn detection() {
        let detect = |vals: &[&str]| {
            let mut d = Detector::default();
            for v in vals {
                d.observe(v.as_bytes());
            }
            d.result()
        };
        assert_eq!(detect(&["2024-01-01", "2024-01-02"]), Detected::Layout(LayoutKind::Iso));
        assert_eq!(detect(&["20240101"]), Detected::Layout(LayoutKind::Compact));
        assert_eq!(detect(&["1/2/2024", "13/2/2024"]), Detected::Layout(LayoutKind::DayFirst));
        assert_eq!(detect(&["1/2/2024", "2/13/2024"]), Detected::Layout(LayoutKind::MonthFirst));
        assert_eq!(detect(&["1/2/2024", "2/3/2024"]), Detected::Ambiguous);
        assert!(matches!(detect(&["13/2/2024", "2/13/2024"]), Detected::Inconsistent(..)));
        assert!(matches!(detect(&["yesterday"]), Detected::Unknown(_)));
        assert_eq!(detect(&[]), Detected::Empty);
    }

    #[test]
    fn as_of() {
        assert_eq!(parse_ymd("2024-02-29"), Some(days_from_civil(2024, 2, 29)));
        assert_eq!(parse_ymd("2024-2-29"), None);
        assert_eq!(parse_ymd("2023-02-29"), None);
    }
}
