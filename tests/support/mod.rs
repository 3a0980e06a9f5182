//! Shared helpers: run the real binary and read its JSON.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

pub fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_egress-scout"));
    c.current_dir(env!("CARGO_MANIFEST_DIR"));
    c.env_remove("RUST_LOG");
    c
}

pub fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// `scan --output json` over `args`; panics unless it exits 0.
pub fn scan(args: &[&str]) -> Value {
    let out = bin()
        .arg("scan")
        .args(["--output", "json"])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_ok(&out);
    serde_json::from_slice(&out.stdout).expect("scan prints one JSON document")
}

pub fn assert_ok(out: &Output) {
    assert!(
        out.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Every name of every destination.
pub fn names(doc: &Value) -> BTreeSet<String> {
    strings(doc, "names")
}

pub fn ips(doc: &Value) -> BTreeSet<String> {
    strings(doc, "ips")
}

fn strings(doc: &Value, field: &str) -> BTreeSet<String> {
    doc["destinations"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|d| d[field].as_array().cloned().unwrap_or_default())
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

pub fn stat(doc: &Value, key: &str) -> u64 {
    doc["stats"][key].as_u64().unwrap()
}

pub fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}
