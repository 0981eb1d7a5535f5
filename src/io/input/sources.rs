//! The inputs named on the command line, and the format of each.

use std::path::PathBuf;

use anyhow::{bail, Result};

use crate::base::UsageError;

use super::{InputFormat, LoadOptions};

/// One input, as named on the command line.
#[derive(Clone, Debug)]
pub struct Source {
    pub path: Option<PathBuf>,
    pub format: InputFormat,
    pub gzip: bool,
}

impl Source {
    pub fn display(&self) -> String {
        match &self.path {
            Some(p) => p.display().to_string(),
            None => "<stdin>".to_string(),
        }
    }
}

/// Decides each input's format from `--input-format` or its extension.
pub fn sources(opts: &LoadOptions) -> Result<Vec<Source>> {
    let inputs: Vec<PathBuf> =
        if opts.inputs.is_empty() { vec![PathBuf::from("-")] } else { opts.inputs.clone() };
    if inputs.iter().filter(|p| p.as_os_str() == "-").count() > 1 {
        bail!(UsageError("standard input ('-') can be given only once".into()));
    }
    inputs
        .into_iter()
        .map(|p| {
            if p.as_os_str() == "-" {
                return Ok(Source {
                    path: None,
                    format: opts.format.unwrap_or(InputFormat::Csv),
                    gzip: false,
                });
            }
            let name = p.file_name().map(|n| n.to_string_lossy().to_lowercase()).unwrap_or_default();
            let gzip = name.ends_with(".gz");
            let stem = name.trim_end_matches(".gz");
            let by_ext = if stem.ends_with(".parquet") || stem.ends_with(".pq") {
                Some(InputFormat::Parquet)
            } else if stem.ends_with(".tsv") || stem.ends_with(".tab") {
                Some(InputFormat::Tsv)
            } else if stem.ends_with(".csv") || stem.ends_with(".txt") {
                Some(InputFormat::Csv)
            } else {
                None
            };
            let format = match (opts.format, by_ext) {
                (Some(f), _) => f,
                (None, Some(f)) => f,
                (None, None) => bail!(UsageError(format!(
                    "cannot tell the format of {} from its extension; use --input-format csv|tsv|parquet",
                    p.display()
                ))),
            };
            if format == InputFormat::Parquet && gzip {
                bail!(UsageError(format!("{}: gzip-compressed Parquet is not supported", p.display())));
            }
            Ok(Source { path: Some(p), format, gzip })
        })
        .collect()
}
