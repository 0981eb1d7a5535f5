//! The per-customer summary, the RFM base figures and the cohort table as
//! SQL queries, for engines that hold more transactions than one machine
//! should export.
//!
//! Every statistic churn computes reduces the transactions to a row per
//! customer: first and last purchase day, number of purchases, net amount,
//! repeat purchase days and their amount. Those are plain GROUP BYs, which a
//! warehouse or Spark runs far better than a home-made cluster; churn then
//! scores the small result (`--summary`). The query follows the local
//! definitions exactly: blank customer ids are skipped, rows after the as-of
//! day are cut, `--returns drop` ignores negative amounts, a purchase is a
//! row (or a distinct order) that is not a return (amount >= 0), and purchases on one day
//! are one repeat purchase day with their amounts summed.
//!
//! Amounts are summed as DECIMAL(38, 6), exactly, as churn sums amounts in
//! cents exactly, and written as text, so that no engine's conversion to
//! floating point (nor a Parquet DECIMAL type) stands between the sum and
//! churn; the mean spend of the repeat days is left to churn, so that it is
//! one and the same division whichever engine ran the sums.
//!
//! Cohort periods are counted as churn counts them locally: months and
//! quarters from the calendar, ISO weeks from Monday (weeks are counted from
//! 0001-01-01, a Monday, so every date has a non-negative week number), and
//! every cell of the triangle is listed, also the empty ones.

use std::fmt::Write;

use crate::base::named::Named;
use crate::base::summary::SUMMARY_COLUMNS;
use crate::domain::cohorts::{Period, Retention};
use crate::domain::models::Unit;

crate::named_enum! {
    /// The SQL engines churn writes for.
    pub enum Dialect {
        Duckdb = ("duckdb", ""),
        Postgres = ("postgres", ""),
        Spark = ("spark", ""),
        Bigquery = ("bigquery", ""),
        Snowflake = ("snowflake", ""),
    }
}

/// How the transactions table is laid out and which rows count.
#[derive(Clone, Debug)]
pub struct Source {
    pub table: String,
    pub customer: String,
    pub date: String,
    pub amount: Amount,
    pub order: Option<String>,
    /// YYYY-MM-DD; the latest transaction day when absent.
    pub as_of: Option<String>,
    pub drop_returns: bool,
}

/// What a query computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Query {
    /// One row per customer for `--summary` (models, RFM), with the
    /// model summary x, t_x, T, monetary_avg in `unit` for other tools.
    Summary { unit: Unit },
    /// The RFM base figures: the first columns of `churn rfm`.
    Rfm,
    /// The long cohort table of `churn cohorts`.
    Cohorts { period: Period, retention: Retention },
}

/// Where a row's money is.
#[derive(Clone, Debug)]
pub enum Amount {
    Column(String),
    QuantityPrice { quantity: String, price: String },
}

/// The model summary in the query's time unit, after SUMMARY_COLUMNS: what
/// lifetimes, PyMC-Marketing or CLVTools take. churn reads the exact columns
/// before them instead, whatever the unit.
/// The rows that are purchases, as `crate::base::transactions::is_purchase` says: every row
/// that is not a return.
const PURCHASE: &str = "amount >= 0";

pub const MODEL_COLUMNS: [&str; 4] = ["x", "t_x", "T", "monetary_avg"];

/// The columns of the RFM base figures, in order (those of `churn rfm`, and the as-of day).
pub const RFM_COLUMNS: [&str; 7] = [
    "customer_id",
    "first_purchase",
    "last_purchase",
    "recency_days",
    "frequency",
    "monetary",
    "as_of",
];

/// The columns of the cohort table (those of `churn cohorts`).
pub const COHORT_COLUMNS: [&str; 8] =
    ["cohort", "period", "cohort_size", "customers", "retention", "orders", "revenue", "partial"];

/// The Monday weeks are counted from.
const WEEK_ZERO: &str = "DATE '0001-01-01'";

impl Dialect {
    fn quote(self, name: &str) -> String {
        match self {
            Dialect::Spark | Dialect::Bigquery => format!("`{}`", name.replace('`', "``")),
            _ => format!("\"{}\"", name.replace('"', "\"\"")),
        }
    }

    fn text(self) -> &'static str {
        match self {
            Dialect::Duckdb | Dialect::Postgres | Dialect::Snowflake => "VARCHAR",
            Dialect::Spark | Dialect::Bigquery => "STRING",
        }
    }

    fn decimal(self) -> &'static str {
        match self {
            Dialect::Bigquery => "BIGNUMERIC",
            _ => "DECIMAL(38, 6)",
        }
    }

    fn double(self) -> &'static str {
        match self {
            Dialect::Postgres => "DOUBLE PRECISION",
            Dialect::Bigquery => "FLOAT64",
            _ => "DOUBLE",
        }
    }

    /// The UTC calendar day of a DATE, TIMESTAMP or ISO text value.
    fn day(self, expr: &str) -> String {
        match self {
            Dialect::Duckdb | Dialect::Postgres => {
                format!("CAST(CAST({expr} AS TIMESTAMP) AS DATE)")
            }
            Dialect::Spark | Dialect::Snowflake => format!("TO_DATE({expr})"),
            // DATE() takes a DATE, DATETIME or TIMESTAMP but not a STRING
            // column; every one of them casts to TIMESTAMP (DATETIME as UTC).
            Dialect::Bigquery => format!("DATE(CAST({expr} AS TIMESTAMP))"),
        }
    }

    fn date_literal(self, ymd: &str) -> String {
        format!("DATE '{ymd}'")
    }

    /// Whole days from `from` to `to` (dates), as an integer.
    fn days_between(self, from: &str, to: &str) -> String {
        match self {
            Dialect::Duckdb => format!("DATE_DIFF('day', {from}, {to})"),
            Dialect::Postgres => format!("({to} - {from})"),
            Dialect::Spark => format!("DATEDIFF({to}, {from})"),
            Dialect::Bigquery => format!("DATE_DIFF({to}, {from}, DAY)"),
            Dialect::Snowflake => format!("DATEDIFF('day', {from}, {to})"),
        }
    }

    /// The date `days` (an integer expression) after `date`.
    fn add_days(self, date: &str, days: &str) -> String {
        let n = format!("CAST({days} AS INTEGER)");
        match self {
            Dialect::Duckdb => format!("CAST({date} + {n} AS DATE)"),
            Dialect::Postgres => format!("({date} + {n})"),
            Dialect::Spark => format!("DATE_ADD({date}, {n})"),
            Dialect::Bigquery => format!("DATE_ADD({date}, INTERVAL {n} DAY)"),
            Dialect::Snowflake => format!("DATEADD(day, {n}, {date})"),
        }
    }

    /// The first day of month `month` of `year` (integer expressions).
    fn month_start(self, year: &str, month: &str) -> String {
        match self {
            Dialect::Duckdb | Dialect::Postgres | Dialect::Spark => {
                format!("MAKE_DATE(CAST({year} AS INTEGER), CAST({month} AS INTEGER), 1)")
            }
            Dialect::Bigquery => format!("DATE({year}, {month}, 1)"),
            Dialect::Snowflake => format!("DATE_FROM_PARTS({year}, {month}, 1)"),
        }
    }

    /// A calendar field of a date as a BIGINT.
    fn field(self, name: &str, date: &str) -> String {
        format!("CAST(EXTRACT({name} FROM {date}) AS BIGINT)")
    }

    /// `a / b` rounded down, for non-negative integers.
    fn div(self, a: &str, b: &str) -> String {
        match self {
            Dialect::Duckdb => format!("({a} // {b})"),
            Dialect::Postgres => format!("({a} / {b})"),
            Dialect::Spark => format!("({a} DIV {b})"),
            Dialect::Bigquery => format!("DIV({a}, {b})"),
            Dialect::Snowflake => format!("CAST(FLOOR({a} / {b}) AS BIGINT)"),
        }
    }

    /// A query of the columns `keep` of the table `from`, each of its rows
    /// repeated with a column `k` of the integers 0..=`last` (an expression
    /// over its columns).
    fn integers_up_to(self, keep: &str, last: &str, from: &str) -> String {
        match self {
            Dialect::Duckdb => {
                format!("SELECT {keep}, UNNEST(GENERATE_SERIES(0, {last})) AS k FROM {from}")
            }
            Dialect::Postgres => format!("SELECT {keep}, GENERATE_SERIES(0, {last}) AS k FROM {from}"),
            Dialect::Spark => format!(
                "SELECT {keep}, EXPLODE(SEQUENCE(CAST(0 AS BIGINT), {last})) AS k FROM {from}"
            ),
            Dialect::Bigquery => format!(
                "SELECT {keep}, k FROM {from} CROSS JOIN UNNEST(GENERATE_ARRAY(0, {last})) AS k"
            ),
            Dialect::Snowflake => format!(
                "SELECT {keep}, CAST(g.value AS BIGINT) AS k FROM {from}, LATERAL FLATTEN(INPUT => ARRAY_GENERATE_RANGE(0, {last} + 1)) g"
            ),
        }
    }

    /// The number of the period holding `date`; consecutive periods have
    /// consecutive numbers (as [`Period::index`], from another origin).
    fn period_index(self, period: Period, date: &str) -> String {
        let year = self.field("YEAR", date);
        match period {
            Period::Day => self.days_between(WEEK_ZERO, date),
            Period::Week => self.div(&self.days_between(WEEK_ZERO, date), "7"),
            Period::Month => format!("({year} * 12 + {} - 1)", self.field("MONTH", date)),
            Period::Quarter => format!("({year} * 4 + {} - 1)", self.field("QUARTER", date)),
        }
    }

    /// The first day of the period holding `date`.
    fn period_start(self, period: Period, date: &str) -> String {
        let year = self.field("YEAR", date);
        match period {
            Period::Day => date.to_string(),
            Period::Week => {
                let week = self.period_index(Period::Week, date);
                self.add_days(WEEK_ZERO, &format!("{week} * 7"))
            }
            Period::Month => self.month_start(&year, &self.field("MONTH", date)),
            Period::Quarter => {
                self.month_start(&year, &format!("({} * 3 - 2)", self.field("QUARTER", date)))
            }
        }
    }
}

impl Source {
    /// The query, formatted for `dialect`.
    pub fn to_sql(&self, dialect: Dialect, query: Query) -> String {
        let summary_columns: Vec<&str> =
            SUMMARY_COLUMNS.iter().chain(&MODEL_COLUMNS).copied().collect();
        let (what, columns): (&str, &[&str]) = match query {
            Query::Summary { .. } => {
                ("one row per customer for `churn score|fit|rfm --summary`", &summary_columns)
            }
            Query::Rfm => ("the RFM base figures, one row per customer", &RFM_COLUMNS),
            Query::Cohorts { .. } => ("the cohort table of `churn cohorts`", &COHORT_COLUMNS),
        };
        let mut s = String::new();
        let _ = writeln!(s, "-- churn {}: {what}.", env!("CARGO_PKG_VERSION"));
        if let Query::Summary { unit } = query {
            let _ = writeln!(
                s,
                "-- x: repeat purchase days; t_x, T: in {}s ({} days).",
                unit.name(),
                unit.days()
            );
        }
        if let Query::Cohorts { period, retention } = query {
            let _ = writeln!(
                s,
                "-- Period: {}; retention: {}.",
                period.name(),
                match retention {
                    Retention::Classic => "classic",
                    Retention::Rolling => "rolling",
                }
            );
        }
        let _ = writeln!(s, "-- Columns: {}.", columns.join(", "));
        s.push_str(&self.rows(dialect));
        s.push_str(&match query {
            Query::Summary { unit } => self.summary(dialect, unit),
            Query::Rfm => self.rfm(dialect),
            Query::Cohorts { period, retention } => self.cohorts(dialect, period, retention),
        });
        s
    }

    /// The common part: the rows that count, with their day, amount and order.
    fn rows(&self, dialect: Dialect) -> String {
        let q = |n: &str| dialect.quote(n);
        let (text, decimal) = (dialect.text(), dialect.decimal());
        let amount = match &self.amount {
            Amount::Column(a) => format!("CAST({} AS {decimal})", q(a)),
            Amount::QuantityPrice { quantity, price } => {
                // As locally: a negative quantity makes a return whatever the price's sign.
                let (qty, pr) = (q(quantity), q(price));
                format!(
                    "CASE WHEN CAST({qty} AS {decimal}) < 0 THEN -ABS(CAST({qty} AS {decimal}) * CAST({pr} AS {decimal})) ELSE CAST({qty} AS {decimal}) * CAST({pr} AS {decimal}) END"
                )
            }
        };
        let order = match &self.order {
            Some(o) => format!("NULLIF(TRIM(CAST({} AS {text})), '')", q(o)),
            None => format!("CAST(NULL AS {text})"),
        };
        let as_of = match &self.as_of {
            Some(d) => format!("SELECT {} AS as_of", dialect.date_literal(d)),
            None => "SELECT MAX(day) AS as_of FROM kept".to_string(),
        };
        let returns = if self.drop_returns { " AND k.amount >= 0" } else { "" };
        format!(
            "WITH rows_in AS (
  SELECT TRIM(CAST({customer} AS {text})) AS customer_id,
         {day} AS day,
         {amount} AS amount,
         {order} AS order_id
  FROM {table}
),
kept AS (
  SELECT * FROM rows_in WHERE customer_id IS NOT NULL AND customer_id <> ''
),
cutoff AS (
  {as_of}
),
cut AS (
  SELECT k.* FROM kept k CROSS JOIN cutoff c WHERE k.day <= c.as_of{returns}
),
buys AS (
  SELECT * FROM cut WHERE {PURCHASE}
),
",
            customer = q(&self.customer),
            day = dialect.day(&q(&self.date)),
            table = self.table,
        )
    }

    fn summary(&self, dialect: Dialect, unit: Unit) -> String {
        let (text, double) = (dialect.text(), dialect.double());
        let unit_days = format!("CAST({} AS {double})", unit.days());
        let t_x = dialect.days_between("f.first_purchase", "f.last_purchase");
        let t = dialect.days_between("f.first_purchase", "c.as_of");
        format!(
            "buy_days AS (
  SELECT customer_id, day, SUM(amount) AS amount FROM buys GROUP BY customer_id, day
),
firsts AS (
  SELECT customer_id, MIN(day) AS first_purchase, MAX(day) AS last_purchase,
         COUNT(*) - 1 AS repeat_days
  FROM buy_days GROUP BY customer_id
),
repeats AS (
  SELECT d.customer_id, SUM(d.amount) AS repeat_amount
  FROM buy_days d JOIN firsts f ON d.customer_id = f.customer_id AND d.day > f.first_purchase
  GROUP BY d.customer_id
),
{counts}
SELECT f.customer_id, f.first_purchase, f.last_purchase,
       CAST(p.purchases AS BIGINT) AS purchases,
       CAST(n.monetary AS {text}) AS monetary,
       CAST(f.repeat_days AS BIGINT) AS repeat_days,
       CAST(COALESCE(r.repeat_amount, 0) AS {text}) AS repeat_amount,
       c.as_of,
       CAST(f.repeat_days AS BIGINT) AS x,
       CAST({t_x} AS {double}) / {unit_days} AS t_x,
       CAST({t} AS {double}) / {unit_days} AS {big_t},
       CASE WHEN f.repeat_days = 0 THEN CAST(0 AS {double})
            ELSE CAST(r.repeat_amount AS {double}) / CAST(f.repeat_days AS {double}) END AS monetary_avg
FROM firsts f
JOIN purchase_counts p ON p.customer_id = f.customer_id
JOIN nets n ON n.customer_id = f.customer_id
LEFT JOIN repeats r ON r.customer_id = f.customer_id
CROSS JOIN cutoff c
ORDER BY f.customer_id;
",
            counts = PURCHASES_AND_NETS,
            big_t = dialect.quote("T"),
        )
    }

    fn rfm(&self, dialect: Dialect) -> String {
        let text = dialect.text();
        let recency = dialect.days_between("f.last_purchase", "c.as_of");
        format!(
            "firsts AS (
  SELECT customer_id, MIN(day) AS first_purchase, MAX(day) AS last_purchase
  FROM buys GROUP BY customer_id
),
{counts}
SELECT f.customer_id, f.first_purchase, f.last_purchase,
       CAST({recency} AS BIGINT) AS recency_days,
       CAST(p.purchases AS BIGINT) AS frequency,
       CAST(n.monetary AS {text}) AS monetary,
       c.as_of
FROM firsts f
JOIN purchase_counts p ON p.customer_id = f.customer_id
JOIN nets n ON n.customer_id = f.customer_id
CROSS JOIN cutoff c
ORDER BY f.customer_id;
",
            counts = PURCHASES_AND_NETS,
        )
    }

    fn cohorts(&self, dialect: Dialect, period: Period, retention: Retention) -> String {
        let index = |date: &str| dialect.period_index(period, date);
        let retained = match retention {
            Retention::Classic => "SELECT cohort_index, k, COUNT(*) AS customers
  FROM buying GROUP BY cohort_index, k"
                .to_string(),
            Retention::Rolling => "SELECT l.cohort_index, o.k, COUNT(*) AS customers
  FROM (SELECT customer_id, cohort_index, MAX(k) AS last_k FROM buying GROUP BY customer_id, cohort_index) l
  JOIN offsets o ON o.k <= l.last_k
  GROUP BY l.cohort_index, o.k"
                .to_string(),
        };
        format!(
            "members AS (
  SELECT customer_id, {first_index} AS cohort_index, {first_start} AS cohort
  FROM (SELECT customer_id, MIN(day) AS first_purchase FROM buys GROUP BY customer_id) f
),
ends AS (
  SELECT {last_index} AS last_index, {next_index} AS next_index FROM cutoff
),
span AS (
  SELECT e.last_index, e.next_index, e.last_index - MIN(m.cohort_index) AS width
  FROM members m CROSS JOIN ends e GROUP BY e.last_index, e.next_index
),
offsets AS (
  {offsets}
),
sizes AS (
  SELECT cohort, cohort_index, COUNT(*) AS cohort_size FROM members GROUP BY cohort, cohort_index
),
grid AS (
  SELECT s.cohort, s.cohort_index, s.cohort_size, o.k,
         (s.cohort_index + o.k = o.last_index AND o.next_index = o.last_index) AS partial
  FROM sizes s JOIN offsets o ON s.cohort_index + o.k <= o.last_index
),
member_rows AS (
  SELECT m.customer_id, m.cohort_index, {row_index} - m.cohort_index AS k, t.amount, t.order_id
  FROM cut t JOIN members m ON t.customer_id = m.customer_id
),
buying AS (
  SELECT customer_id, cohort_index, k,
         COUNT(DISTINCT order_id) + SUM(CASE WHEN order_id IS NULL THEN 1 ELSE 0 END) AS orders
  FROM member_rows WHERE {PURCHASE} GROUP BY customer_id, cohort_index, k
),
retained AS (
  {retained}
),
order_counts AS (
  SELECT cohort_index, k, SUM(orders) AS orders FROM buying GROUP BY cohort_index, k
),
revenues AS (
  SELECT cohort_index, k, SUM(amount) AS revenue FROM member_rows WHERE k >= 0 GROUP BY cohort_index, k
)
SELECT g.cohort,
       CAST(g.k AS BIGINT) AS period,
       CAST(g.cohort_size AS BIGINT) AS cohort_size,
       CAST(COALESCE(r.customers, 0) AS BIGINT) AS customers,
       CAST(COALESCE(r.customers, 0) AS {double}) / CAST(g.cohort_size AS {double}) AS retention,
       CAST(COALESCE(oc.orders, 0) AS BIGINT) AS orders,
       CAST(COALESCE(v.revenue, 0) AS {decimal}) AS revenue,
       g.partial
FROM grid g
LEFT JOIN retained r ON r.cohort_index = g.cohort_index AND r.k = g.k
LEFT JOIN order_counts oc ON oc.cohort_index = g.cohort_index AND oc.k = g.k
LEFT JOIN revenues v ON v.cohort_index = g.cohort_index AND v.k = g.k
ORDER BY g.cohort_index, g.k;
",
            first_index = index("f.first_purchase"),
            first_start = dialect.period_start(period, "f.first_purchase"),
            last_index = index("as_of"),
            next_index = index(&dialect.add_days("as_of", "1")),
            offsets = dialect.integers_up_to("last_index, next_index", "width", "span"),
            row_index = index("t.day"),
            double = dialect.double(),
            decimal = dialect.decimal(),
        )
    }
}

/// Purchases (distinct orders with a row that is not a return, or such rows) and
/// net amounts per customer: shared by the summary and the RFM query.
const PURCHASES_AND_NETS: &str = "purchase_counts AS (
  SELECT customer_id,
         COUNT(DISTINCT order_id) + SUM(CASE WHEN order_id IS NULL THEN 1 ELSE 0 END) AS purchases
  FROM buys GROUP BY customer_id
),
nets AS (
  SELECT customer_id, SUM(amount) AS monetary FROM cut GROUP BY customer_id
)";

#[cfg(test)]
mod tests {
    use super::*;

    fn query() -> Source {
        Source {
            table: "shop.sales".into(),
            customer: "Customer ID".into(),
            date: "date".into(),
            amount: Amount::Column("amount".into()),
            order: None,
            as_of: None,
            drop_returns: false,
        }
    }

    #[test]
    fn weeks_are_counted_from_a_monday() {
        // WEEK_ZERO, 0001-01-01, must be a Monday for ISO weeks: the local
        // week index counts from the Monday before 1970-01-01 (a Thursday).
        let day = crate::base::dates::days_from_civil(1, 1, 1);
        assert_eq!((day + 3).rem_euclid(7), 0);
        assert_eq!(WEEK_ZERO, "DATE '0001-01-01'");
    }

    #[test]
    fn identifiers_are_quoted_per_dialect_and_options_change_the_query() {
        let duck = query().to_sql(Dialect::Duckdb, Query::Summary { unit: Unit::Week });
        assert!(duck.contains("TRIM(CAST(\"Customer ID\" AS VARCHAR)) AS customer_id"));
        assert!(duck.contains("FROM shop.sales\n"));
        assert!(duck.contains("SELECT MAX(day) AS as_of FROM kept"));
        assert!(!duck.contains("k.amount >= 0"));
        let spark = query().to_sql(Dialect::Spark, Query::Summary { unit: Unit::Week });
        assert!(spark.contains("TRIM(CAST(`Customer ID` AS STRING))"));
        assert!(spark.contains("TO_DATE(`date`)"));
        let q = Source {
            as_of: Some("2024-03-31".into()),
            drop_returns: true,
            order: Some("order".into()),
            ..query()
        };
        let pg = q.to_sql(Dialect::Postgres, Query::Summary { unit: Unit::Week });
        assert!(pg.contains("SELECT DATE '2024-03-31' AS as_of"));
        assert!(pg.contains("WHERE k.day <= c.as_of AND k.amount >= 0"));
        assert!(pg.contains("NULLIF(TRIM(CAST(\"order\" AS VARCHAR)), '')"));
        assert!(q
            .to_sql(Dialect::Bigquery, Query::Summary { unit: Unit::Week })
            .contains("AS BIGNUMERIC)"));
    }
}
