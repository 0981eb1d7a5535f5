//! The direction of dependency in src/, kept by a test rather than by memory:
//! base <- io, domain <- render <- pipeline <- app (README, "How the code is
//! laid out"). Reads every `crate::` path of every file under src/ (use trees
//! expanded, inline paths too) and names each edge that points up a layer,
//! from one command to another, or to clap or polars outside their homes.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Each layer and the layers it may import (itself included).
const LAYERS: &[(&str, &[&str])] = &[
    ("base", &["base"]),
    ("io", &["base", "io"]),
    ("domain", &["base", "domain"]),
    ("render", &["base", "domain", "render"]),
    ("pipeline", &["base", "io", "domain", "render", "pipeline"]),
    ("app", &["base", "io", "domain", "render", "pipeline", "app"]),
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The text without comments and without the contents of string literals, so
/// that a path in a doc comment or a message is not taken for an import.
fn code_only(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i..].starts_with(b"//") {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if b[i..].starts_with(b"r#\"") || b[i..].starts_with(b"r\"") {
            let hashes = if b[i + 1] == b'#' {
                b[i + 1..].iter().take_while(|&&c| c == b'#').count()
            } else {
                0
            };
            let close: Vec<u8> =
                std::iter::once(b'"').chain(std::iter::repeat_n(b'#', hashes)).collect();
            i += 2 + hashes;
            while i < b.len() && !b[i..].starts_with(&close) {
                i += 1;
            }
            i += close.len();
            out.push_str("\"\"");
        } else if b[i] == b'"' {
            i += 1;
            while i < b.len() && b[i] != b'"' {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
            i += 1;
            out.push_str("\"\"");
        } else if b[i] == b'\'' && i + 2 < b.len() && (b[i + 2] == b'\'' || b[i + 1] == b'\\') {
            // A char literal such as '"' or '\n' (not a lifetime).
            let end =
                b[i + 1..].iter().skip(1).position(|&c| c == b'\'').map_or(b.len(), |p| i + p + 3);
            i = end;
            out.push_str("' '");
        } else {
            out.push(b[i] as char);
            i += 1;
        }
    }
    out
}

/// Expands a use tree (`a::{b, c::{d, e}}`) into its paths.
fn expand(tree: &str, prefix: &str, out: &mut Vec<String>) {
    let tree = tree.trim();
    let Some(open) = tree.find('{') else {
        let path = tree.split(" as ").next().unwrap().trim();
        if !path.is_empty() {
            out.push(format!("{prefix}{path}"));
        }
        return;
    };
    let head = &tree[..open];
    let body = &tree[open + 1..tree.rfind('}').unwrap()];
    let (mut depth, mut start) = (0, 0);
    for (i, c) in body.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                expand(&body[start..i], &format!("{prefix}{head}"), out);
                start = i + 1;
            }
            _ => {}
        }
    }
    expand(&body[start..], &format!("{prefix}{head}"), out);
}

/// Every `crate::` path the code names, as segments after `crate`.
fn crate_paths(code: &str) -> Vec<Vec<String>> {
    let mut paths = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        let before = rest[..at].chars().next_back();
        rest = &rest[at + "crate::".len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue; // e.g. `$crate::`
        }
        // The path's head (`a::b::`), then a braced tree if one follows.
        let head = rest
            .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
            .unwrap_or(rest.len());
        let end = if rest[head..].starts_with('{') {
            let mut depth = 0;
            rest[head..]
                .char_indices()
                .find(|&(_, c)| {
                    depth += (c == '{') as i32 - (c == '}') as i32;
                    depth == 0
                })
                .map_or(rest.len(), |(i, _)| head + i + 1)
        } else {
            head
        };
        let mut expanded = Vec::new();
        expand(&rest[..end], "", &mut expanded);
        for p in expanded {
            paths.push(p.split("::").filter(|s| !s.is_empty()).map(str::to_owned).collect());
        }
    }
    paths
}

/// The rule each path of `file` breaks, if any.
fn violations(file: &str, code: &str) -> Vec<String> {
    let parts: Vec<&str> = file.trim_end_matches(".rs").split('/').collect();
    let Some(&(layer, allowed)) = LAYERS.iter().find(|(l, _)| *l == parts[0]) else {
        return Vec::new(); // lib.rs and main.rs sit above the layers
    };
    let mut found = BTreeSet::new();
    for path in crate_paths(code) {
        let target = path.first().map(String::as_str).unwrap_or("");
        if LAYERS.iter().any(|(l, _)| *l == target) && !allowed.contains(&target) {
            found.insert(format!(
                "{file}: {layer} imports crate::{} (a layer above)",
                path.join("::")
            ));
        }
        // A command is its own: what two commands share belongs in pipeline.
        let sibling = parts.len() >= 3
            && parts[..2] == ["app", "cmd"]
            && parts[2] != "mod"
            && path.len() >= 3
            && path[..2] == ["app", "cmd"]
            && path[2] != parts[2];
        if sibling {
            found.insert(format!(
                "{file}: command {} imports command crate::{}",
                parts[2],
                path.join("::")
            ));
        }
    }
    for (krate, home) in [("clap", "app"), ("polars", "io")] {
        let names = code.contains(&format!("{krate}::")) || code.contains(&format!("use {krate}"));
        if names && layer != home {
            found.insert(format!("{file}: {layer} uses {krate}, which only {home} may"));
        }
    }
    found.into_iter().collect()
}

#[test]
fn every_module_imports_only_its_own_layer_and_those_below() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let mut found = Vec::new();
    let mut layered = 0;
    for path in &files {
        let rel = path.strip_prefix(&src).unwrap().to_string_lossy().replace('\\', "/");
        layered += LAYERS.iter().any(|(l, _)| rel.starts_with(&format!("{l}/"))) as usize;
        found.extend(violations(&rel, &code_only(&std::fs::read_to_string(path).unwrap())));
    }
    assert!(
        layered > 30,
        "only {layered} files found under the layer directories of {}",
        src.display()
    );
    assert!(
        found.is_empty(),
        "{} imports against the direction of the layers:\n{}",
        found.len(),
        found.join("\n")
    );
}

#[test]
fn the_layer_check_catches_each_kind_of_back_edge() {
    let bad = [
        ("base/dates.rs", "use crate::io::input::load;"),
        ("io/input/mod.rs", "use crate::{base::dates::Day, domain::rfm::score};"),
        ("domain/rfm.rs", "fn f() { crate::render::report::build(); }"),
        ("domain/models/mod.rs", "use crate::{base::{dates, text::{thousands}}, app::cli::Cli};"),
        ("render/sql.rs", "use crate::pipeline::fit;"),
        ("pipeline/score.rs", "use crate::app::cmd::score::Args;"),
        ("app/cmd/report.rs", "use crate::app::cmd::score::parse_horizon;"),
        ("domain/cohorts.rs", "#[derive(clap::ValueEnum)] enum Period { Month }"),
        ("render/report/mod.rs", "use polars::prelude::DataFrame;"),
    ];
    for (file, code) in bad {
        assert_eq!(violations(file, &code_only(code)).len(), 1, "{file}: {code}");
    }
    let good = [
        ("io/input/mod.rs", "use crate::base::{dates::Day, text::thousands};"),
        ("render/chart.rs", "use crate::domain::cohorts::{Cohorts, Retention};"),
        ("app/cmd/score.rs", "use crate::{pipeline::score, app::cli::InputArgs};"),
        ("app/cmd/mod.rs", "pub mod score;"),
        ("domain/rfm.rs", "// see crate::app::cli for the flags\nlet s = \"crate::io::x\";"),
        ("app/cli.rs", "use clap::Parser;"),
        ("io/output.rs", "use polars::prelude::*;"),
    ];
    for (file, code) in good {
        assert_eq!(violations(file, &code_only(code)), Vec::<String>::new(), "{file}: {code}");
    }
}
