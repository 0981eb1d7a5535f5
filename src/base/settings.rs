//! Reading TOML settings files with errors that name the line.

use anyhow::Result;

/// Deserializes TOML, with errors that start with the line number.
pub fn from_toml<T: serde::de::DeserializeOwned>(text: &str) -> Result<T> {
    toml::from_str(text).map_err(|e| match e.span() {
        Some(s) => anyhow::anyhow!("line {}: {}", line_of(text, s.start), e.message()),
        None => anyhow::anyhow!("{}", e.message()),
    })
}

/// The 1-based line of a byte offset.
pub fn line_of(text: &str, byte: usize) -> usize {
    text[..byte.min(text.len())].bytes().filter(|&b| b == b'\n').count() + 1
}
