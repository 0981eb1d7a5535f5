//! Command-line options shared by every subcommand.

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, Parser, Subcommand};

use crate::app::cmd;
use crate::base::named::Named;
use crate::base::progress::Progress;
use crate::base::transactions::Transactions;
use crate::base::UsageError;
use crate::io::input::{ColumnFlags, InputFormat, LoadOptions, LoadReport, ReturnsPolicy};
use crate::io::output::{OutputFormat, OutputTarget};
use crate::pipeline::models::ModelChoice;
use crate::pipeline::{Customers, Source};

/// Customer-retention analytics from transaction exports.
///
/// churn reads a sales export (CSV, TSV, gzip or Parquet: customer, date,
/// amount) and answers "which customers are we losing, and what are they
/// worth?". Results go to stdout as CSV, or to a file with -o.
#[derive(Parser, Debug)]
#[command(name = "churn", version, propagate_version = true, max_term_width = 100)]
#[command(
    after_help = "Examples:\n  churn rfm sales.csv\n  churn rfm sales.parquet -o rfm.parquet\n  churn cohorts sales.csv --chart retention.png\n  churn score sales.csv --top 500 --min-risk 0.6 -o at_risk.csv\n  churn backtest sales.csv --holdout 90d\n  churn report sales.csv -o weekly.html\n  churn inspect exports/*.csv.gz"
)]
pub struct Cli {
    /// Print nothing but errors on stderr (no progress, no summary).
    #[arg(short, long, global = true)]
    pub quiet: bool,

    /// Settings file with column mapping and report defaults (default: ./churn.toml
    /// if present). Flags override it.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    Rfm(cmd::rfm::Args),
    Cohorts(cmd::cohorts::Args),
    Fit(cmd::fit::Args),
    Score(cmd::score::Args),
    Backtest(cmd::backtest::Args),
    Report(cmd::report::Args),
    Inspect(cmd::inspect::Args),
    Sql(cmd::sql::Args),
}

impl Command {
    /// The input options, for the commands that read transactions.
    pub fn input_mut(&mut self) -> Option<&mut InputArgs> {
        match self {
            Command::Rfm(a) => Some(&mut a.input),
            Command::Cohorts(a) => Some(&mut a.input),
            Command::Fit(a) => Some(&mut a.input),
            Command::Score(a) => Some(&mut a.input),
            Command::Backtest(a) => Some(&mut a.input),
            Command::Report(a) => Some(&mut a.input),
            Command::Inspect(a) => Some(&mut a.input),
            Command::Sql(_) => None,
        }
    }
}

/// Where transactions come from and how to read them.
#[derive(Args, Debug, Clone)]
#[command(next_help_heading = "Input")]
pub struct InputArgs {
    /// Transaction files (.csv, .tsv, .csv.gz, .tsv.gz, .parquet), concatenated;
    /// none or '-' reads CSV from stdin.
    #[arg(value_name = "INPUT")]
    pub inputs: Vec<PathBuf>,

    /// Input format, overriding the file extension (needed for stdin that is not CSV).
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub input_format: Option<InputFormat>,

    /// Field separator for text input (default ',' or tab for .tsv).
    #[arg(long, value_name = "CHAR", value_parser = parse_delimiter)]
    pub delimiter: Option<u8>,

    /// Customer id column (default: detected, e.g. customer_id, CustomerID, email).
    #[arg(long, value_name = "COL")]
    pub customer: Option<String>,

    /// Transaction date column (default: detected, e.g. date, order_date, InvoiceDate, created_at).
    #[arg(long, value_name = "COL")]
    pub date: Option<String>,

    /// Amount column (default: detected, e.g. amount, total, revenue, sales).
    #[arg(long, value_name = "COL", conflicts_with_all = ["quantity", "price"])]
    pub amount: Option<String>,

    /// Quantity column of a line-item export; amount = quantity x price.
    #[arg(long, value_name = "COL", requires = "price")]
    pub quantity: Option<String>,

    /// Unit price column of a line-item export.
    #[arg(long, value_name = "COL", requires = "quantity")]
    pub price: Option<String>,

    /// Order or invoice id column: line items of one order count as one purchase
    /// (default: detected, e.g. order_id, InvoiceNo).
    #[arg(long, value_name = "COL")]
    pub order: Option<String>,

    /// strftime layout of the dates, e.g. '%m/%d/%Y %H:%M' (default: detected from the data).
    #[arg(long, value_name = "FORMAT")]
    pub date_format: Option<String>,

    /// Skip (and count) rows whose date or amount does not parse, instead of stopping.
    #[arg(long)]
    pub skip_invalid: bool,

    /// What negative amounts (returns, cancellations) do [default: net].
    #[arg(long, value_enum, value_name = "POLICY")]
    pub returns: Option<ReturnsPolicy>,

    /// Analysis date YYYY-MM-DD, inclusive; later transactions are ignored
    /// (default: the date of the latest transaction).
    #[arg(long, value_name = "DATE", value_parser = parse_as_of)]
    pub as_of: Option<i32>,
}

fn parse_delimiter(s: &str) -> Result<u8, String> {
    match s {
        "\\t" | "tab" => Ok(b'\t'),
        _ if s.len() == 1 && s.is_ascii() => Ok(s.as_bytes()[0]),
        _ => Err(format!("'{s}' is not a single ASCII character (use '\\t' for tab)")),
    }
}

fn parse_as_of(s: &str) -> Result<i32, String> {
    let day = crate::base::dates::parse_ymd(s)
        .ok_or_else(|| format!("'{s}' is not a date in YYYY-MM-DD form"))?;
    if !crate::base::dates::in_supported_range(day) {
        return Err(format!("'{s}' is outside the dates churn accepts (1900-01-01 to 2100-12-31)"));
    }
    Ok(day)
}

impl InputArgs {
    /// Fills the options not given as flags from the config file's [input].
    pub fn apply_config(&mut self, c: &crate::app::config::InputConfig) -> Result<()> {
        use crate::app::config::fill;
        // An amount column from the file does not apply when quantity and price are flags.
        if self.quantity.is_none() {
            fill(&mut self.amount, &c.amount);
        }
        if self.amount.is_none() {
            fill(&mut self.quantity, &c.quantity);
            fill(&mut self.price, &c.price);
        }
        fill(&mut self.customer, &c.customer);
        fill(&mut self.date, &c.date);
        fill(&mut self.order, &c.order);
        fill(&mut self.date_format, &c.date_format);
        fill(&mut self.input_format, &c.input_format);
        fill(&mut self.returns, &c.returns);
        if self.delimiter.is_none() {
            if let Some(d) = &c.delimiter {
                self.delimiter = Some(
                    parse_delimiter(d).map_err(|e| anyhow::anyhow!("[input] delimiter: {e}"))?,
                );
            }
        }
        self.skip_invalid |= c.skip_invalid.unwrap_or(false);
        if self.amount.is_some() && (self.quantity.is_some() || self.price.is_some()) {
            anyhow::bail!("[input] gives amount together with quantity and price: keep one");
        }
        if self.quantity.is_some() != self.price.is_some() {
            anyhow::bail!("[input] quantity and price go together: give both or neither");
        }
        Ok(())
    }

    pub fn load_options(&self) -> LoadOptions {
        LoadOptions {
            inputs: self.inputs.clone(),
            format: self.input_format,
            delimiter: self.delimiter,
            columns: ColumnFlags {
                customer: self.customer.clone(),
                date: self.date.clone(),
                amount: self.amount.clone(),
                quantity: self.quantity.clone(),
                price: self.price.clone(),
                order: self.order.clone(),
            },
            date_format: self.date_format.clone(),
            skip_invalid: self.skip_invalid,
            returns: self.returns.unwrap_or_default(),
            as_of: self.as_of,
            count_duplicates: false,
            keep: Vec::new(),
        }
    }
}

/// Where results go.
#[derive(Args, Debug, Clone)]
#[command(next_help_heading = "Output")]
pub struct OutputArgs {
    /// Write to FILE (format from its extension: .csv .tsv .parquet .json .ndjson/.jsonl)
    /// instead of CSV on stdout. The file is replaced only when the run succeeds.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Output format, overriding the extension.
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub output_format: Option<OutputFormat>,

    /// Choose, order and rename the output columns: COL or COL:NAME, separated by
    /// commas, e.g. --columns 'customer_id:ExternalId,Email,churn_risk:Churn Risk'.
    #[arg(long, value_name = "SPEC", value_parser = crate::io::output::ColumnSpec::parse)]
    pub columns: Option<crate::io::output::ColumnSpec>,

    /// CSV for spreadsheets: a UTF-8 byte-order mark and CRLF line ends.
    #[arg(long)]
    pub excel: bool,

    /// Field separator of CSV output: ',' (default), ';', '|' or '\t'.
    #[arg(long, value_name = "CHAR", value_parser = parse_output_delimiter)]
    pub output_delimiter: Option<u8>,
}

/// How the rows are held while they are analysed: in memory, or spilled to
/// disk by customer for inputs larger than memory.
#[derive(Args, Debug, Clone, Default)]
#[command(next_help_heading = "Engine")]
pub struct EngineArgs {
    /// memory: every row in memory (about 24 bytes a row, fastest);
    /// streaming: rows spilled to disk by customer and analysed a partition
    /// at a time, so that memory grows with the number of customers, not of
    /// rows; auto: streaming when the input would take more than half the
    /// available memory.
    #[arg(long, value_enum, default_value_t = crate::io::input::Engine::Auto, value_name = "ENGINE")]
    pub engine: crate::io::input::Engine,

    /// Where the streaming engine spills rows (default: $TMPDIR, else /tmp);
    /// it needs about as much space as the input takes as CSV.
    #[arg(long, value_name = "DIR")]
    pub temp_dir: Option<PathBuf>,
}

/// What a customer list (`churn rfm`, `churn score`) carries besides its
/// figures: columns of the export, and a recommended action.
#[derive(Args, Debug, Clone, Default)]
#[command(next_help_heading = "Customer list")]
pub struct ListArgs {
    /// Carry columns of the export into the output, one value per customer: the
    /// value on their latest transaction where it is not empty (a later line wins
    /// a tie), e.g. --keep Email,Country,'Customer Name'.
    #[arg(long, value_name = "COL,...", value_delimiter = ',')]
    pub keep: Vec<String>,

    /// Add an `action` column: a recommended retention action for the customer's
    /// segment (and, in `churn score`, risk band). Also added when --columns names it.
    #[arg(long)]
    pub action: bool,

    /// Take the actions from a TOML file instead of the built-in ones (implies
    /// --action): tables [segment], [high], [medium], [low] mapping segment names
    /// to actions.
    #[arg(long, value_name = "FILE")]
    pub actions: Option<PathBuf>,
}

impl ListArgs {
    /// --keep needs the transactions: refused with `--summary`.
    pub fn refuse_keep_with_summary(&self) -> Result<()> {
        if !self.keep.is_empty() {
            return Err(UsageError(
                "--keep needs the transactions; it does not go with --summary".into(),
            )
            .into());
        }
        Ok(())
    }

    /// Checks --columns before any input is read, against the command's own
    /// columns (`fixed`) and the --keep names (whose spelling in the file is
    /// known only later, so they match ignoring case).
    pub fn check_columns(&self, output: &OutputArgs, fixed: &[&str]) -> Result<()> {
        let Some(spec) = &output.columns else { return Ok(()) };
        for (col, _) in &spec.0 {
            let kept = self.keep.iter().any(|k| k.eq_ignore_ascii_case(col));
            if !kept && !fixed.contains(&col.as_str()) {
                let mut available: Vec<&str> = fixed.to_vec();
                available.extend(self.keep.iter().map(String::as_str));
                return Err(UsageError(format!(
                    "--columns: no column '{col}'; the available columns are: {}",
                    available.join(", ")
                ))
                .into());
            }
        }
        Ok(())
    }

    /// The actions to write, if the output has an action column.
    pub fn actions(
        &self,
        segments: &[String],
        output: &OutputArgs,
    ) -> Result<Option<crate::domain::actions::Actions>> {
        use anyhow::Context;
        let named =
            output.columns.as_ref().is_some_and(|c| c.0.iter().any(|(col, _)| col == "action"));
        if !(self.action || self.actions.is_some() || named) {
            return Ok(None);
        }
        let Some(path) = &self.actions else {
            return Ok(Some(crate::domain::actions::Actions::default()));
        };
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the actions file {}", path.display()))?;
        let actions = crate::domain::actions::Actions::from_toml(&text, segments)
            .map_err(|e| UsageError(format!("in actions file {}: {e}", path.display())))?;
        Ok(Some(actions))
    }
}

fn parse_output_delimiter(s: &str) -> Result<u8, String> {
    match parse_delimiter(s)? {
        d @ (b',' | b';' | b'|' | b'\t') => Ok(d),
        _ => Err(format!(
            "'{s}' cannot separate fields that hold numbers and dates; use ',', ';', '|' or '\\t'"
        )),
    }
}

impl OutputArgs {
    pub fn target(&self) -> OutputTarget {
        OutputTarget {
            path: self.output.clone(),
            format: self.output_format,
            columns: self.columns.clone(),
            excel: self.excel,
            delimiter: self.output_delimiter,
        }
    }

    /// The output target, checked before any input is read: a known format,
    /// and not one of the inputs.
    pub fn checked_target(&self, input: &InputArgs) -> Result<OutputTarget> {
        check_outputs(input, &[self.output.as_deref()])?;
        let target = self.target();
        crate::io::output::TextStyle::check(&target)?;
        Ok(target)
    }
}

impl InputArgs {
    /// Where the transactions come from, carrying the `keep` columns.
    pub fn source(&self, engine: &EngineArgs, keep: &[String]) -> Source {
        Source {
            load: LoadOptions { keep: keep.to_vec(), ..self.load_options() },
            engine: engine.engine,
            temp_dir: engine.temp_dir.clone(),
        }
    }

    /// The customers of a command that also reads a `--summary` file.
    pub fn customers(
        &self,
        engine: &EngineArgs,
        keep: &[String],
        summary: Option<&PathBuf>,
    ) -> Customers {
        match summary {
            Some(path) => Customers::Summary(path.clone()),
            None => Customers::Transactions(Box::new(self.source(engine, keep))),
        }
    }

    /// Reads the transactions into memory.
    pub fn load(&self, progress: &Progress) -> Result<(Transactions, LoadReport)> {
        self.source(&EngineArgs::default(), &[]).load(progress)
    }
}

/// Checks every file a command will write, before anything is read: none
/// is also an input (a usage error), and each can be created where it goes.
pub fn check_outputs(input: &InputArgs, outputs: &[Option<&std::path::Path>]) -> Result<()> {
    for out in outputs.iter().flatten() {
        let out_c = std::fs::canonicalize(out).ok();
        for i in &input.inputs {
            if *out == i || (out_c.is_some() && std::fs::canonicalize(i).ok() == out_c) {
                return Err(UsageError(format!(
                    "{} is also an input; write the result to another file",
                    out.display()
                ))
                .into());
            }
        }
    }
    for out in outputs.iter().flatten() {
        crate::io::output::check_destination(out)?;
    }
    Ok(())
}

/// The `--model` values of a command that fits purchase models only, with
/// `auto_help` for `auto`.
pub fn purchase_model(
    auto_help: &'static str,
) -> impl clap::builder::TypedValueParser<Value = ModelChoice> {
    use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};
    let values = ModelChoice::ALL.iter().filter(|c| c.is_purchase()).map(|&c| {
        PossibleValue::new(c.name()).help(if c == ModelChoice::Auto { auto_help } else { c.help() })
    });
    PossibleValuesParser::new(values).map(|name| name.parse().expect("a listed name"))
}

/// clap's possible values for the named types of the layers below, which
/// know nothing of clap: a flag of such a type lists and parses their names.
macro_rules! value_enum {
    ($($t:ty),+) => {$(
        impl clap::ValueEnum for $t {
            fn value_variants<'a>() -> &'a [Self] {
                <$t as Named>::ALL
            }

            fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
                let value = clap::builder::PossibleValue::new(self.name()).aliases(self.aliases());
                Some(if self.help().is_empty() { value } else { value.help(self.help()) })
            }
        }
    )+};
}

value_enum!(
    crate::domain::cohorts::Period,
    crate::domain::cohorts::Retention,
    crate::domain::models::Unit,
    crate::pipeline::cohorts::Layout,
    crate::pipeline::cohorts::Values,
    crate::pipeline::models::ModelChoice,
    crate::pipeline::score::SortBy,
    crate::domain::rfm::Monetary,
    crate::io::input::Engine,
    crate::io::input::InputFormat,
    crate::io::input::ReturnsPolicy,
    crate::io::output::OutputFormat,
    crate::render::report::ReportFormat,
    crate::render::report::ReportPeriod,
    crate::render::sql::Dialect
);
