//! The per-customer summary as one SQL query, for engines that hold more
//! transactions than one machine should export.
//!
//! Every statistic churn computes reduces the transactions to a row per
//! customer: first and last purchase day, number of purchases, net amount,
//! repeat purchase days and their amount. Those are plain GROUP BYs, which a
//! warehouse or Spark runs far better than a home-made cluster; churn then
//! scores the small result (`--summary`). The query follows the local
//! definitions exactly: blank customer ids are skipped, rows after the as-of
//! day are cut, `--returns drop` ignores negative amounts, a purchase is a
//! row (or a distinct order) with a positive amount, and purchases on one day
//! are one repeat purchase day with their amounts summed.
//!
//! Amounts are summed as DECIMAL(38, 6), exactly, as churn sums amounts in
//! cents exactly, and written as text, so that no engine's conversion to
//! floating point (nor a Parquet DECIMAL type) stands between the sum and
//! churn; the mean spend of the repeat days is left to churn, so that it is
//! one and the same division whichever engine ran the sums.

use std::fmt::Write;

/// The SQL engines churn writes for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Dialect {
    Duckdb,
    Postgres,
    Spark,
    Bigquery,
    Snowflake,
}

/// How the transactions table is laid out and what to compute.
#[derive(Clone, Debug)]
pub struct SummaryQuery {
    pub table: String,
    pub customer: String,
    pub date: String,
    pub amount: Amount,
    pub order: Option<String>,
    /// YYYY-MM-DD; the latest transaction day when absent.
    pub as_of: Option<String>,
    pub drop_returns: bool,
}

/// Where a row's money is.
#[derive(Clone, Debug)]
pub enum Amount {
    Column(String),
    QuantityPrice { quantity: String, price: String },
}

/// The columns of the summary, in order.
pub const SUMMARY_COLUMNS: [&str; 8] = [
    "customer_id",
    "first_purchase",
    "last_purchase",
    "purchases",
    "monetary",
    "repeat_days",
    "repeat_amount",
    "as_of",
];

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

    /// The UTC calendar day of a DATE, TIMESTAMP or ISO text value.
    fn day(self, expr: &str) -> String {
        match self {
            Dialect::Duckdb => format!("CAST(CAST({expr} AS TIMESTAMP) AS DATE)"),
            Dialect::Postgres => format!("CAST(CAST({expr} AS TIMESTAMP) AS DATE)"),
            Dialect::Spark => format!("TO_DATE({expr})"),
            Dialect::Bigquery => format!("DATE({expr})"),
            Dialect::Snowflake => format!("TO_DATE({expr})"),
        }
    }

    fn date_literal(self, ymd: &str) -> String {
        format!("DATE '{ymd}'")
    }
}

impl SummaryQuery {
    /// The query, formatted for `dialect`.
    pub fn to_sql(&self, dialect: Dialect) -> String {
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
        let mut s = String::new();
        let _ = writeln!(
            s,
            "-- churn {}: one row per customer for `churn score|fit|rfm --summary`.",
            env!("CARGO_PKG_VERSION")
        );
        let _ = writeln!(s, "-- Columns: {}.", SUMMARY_COLUMNS.join(", "));
        let _ = write!(
            s,
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
  SELECT * FROM cut WHERE amount > 0
),
buy_days AS (
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
purchase_counts AS (
  SELECT customer_id,
         COUNT(DISTINCT order_id) + SUM(CASE WHEN order_id IS NULL THEN 1 ELSE 0 END) AS purchases
  FROM buys GROUP BY customer_id
),
nets AS (
  SELECT customer_id, SUM(amount) AS monetary FROM cut GROUP BY customer_id
)
SELECT f.customer_id, f.first_purchase, f.last_purchase,
       CAST(p.purchases AS BIGINT) AS purchases,
       CAST(n.monetary AS {text}) AS monetary,
       CAST(f.repeat_days AS BIGINT) AS repeat_days,
       CAST(COALESCE(r.repeat_amount, 0) AS {text}) AS repeat_amount,
       c.as_of
FROM firsts f
JOIN purchase_counts p ON p.customer_id = f.customer_id
JOIN nets n ON n.customer_id = f.customer_id
LEFT JOIN repeats r ON r.customer_id = f.customer_id
CROSS JOIN cutoff c
ORDER BY f.customer_id;
",
            customer = q(&self.customer),
            day = dialect.day(&q(&self.date)),
            table = self.table,
        );
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query() -> SummaryQuery {
        SummaryQuery {
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
    fn identifiers_are_quoted_per_dialect_and_options_change_the_query() {
        let duck = query().to_sql(Dialect::Duckdb);
        assert!(duck.contains("TRIM(CAST(\"Customer ID\" AS VARCHAR)) AS customer_id"));
        assert!(duck.contains("FROM shop.sales\n"));
        assert!(duck.contains("SELECT MAX(day) AS as_of FROM kept"));
        assert!(!duck.contains("k.amount >= 0"));
        let spark = query().to_sql(Dialect::Spark);
        assert!(spark.contains("TRIM(CAST(`Customer ID` AS STRING))"));
        assert!(spark.contains("TO_DATE(`date`)"));
        let q = SummaryQuery {
            as_of: Some("2024-03-31".into()),
            drop_returns: true,
            order: Some("order".into()),
            ..query()
        };
        let pg = q.to_sql(Dialect::Postgres);
        assert!(pg.contains("SELECT DATE '2024-03-31' AS as_of"));
        assert!(pg.contains("WHERE k.day <= c.as_of AND k.amount >= 0"));
        assert!(pg.contains("NULLIF(TRIM(CAST(\"order\" AS VARCHAR)), '')"));
        assert!(q.to_sql(Dialect::Bigquery).contains("AS BIGNUMERIC)"));
    }
}
