//! `run` following a file like `tail -F`: growth, rename rotation, copytruncate, then SIGTERM
//! drains and flushes.

mod support;

use std::fs::OpenOptions;

use serde_json::Value;
use support::{append, coredns_query, expect, spawn_run, terminate};

fn query(name: &str) -> String {
    coredns_query("10.244.0.9", name) + "\n"
}

fn is_new(name: &'static str) -> impl Fn(&Value) -> bool {
    move |v| v["update"] == "new" && v["names"][0] == name
}

#[test]
fn follows_growth_rotation_and_truncation_then_drains_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("coredns.log");
    let config = dir.path().join("follow.toml");
    std::fs::write(
        &config,
        "[inventory]\nupdate_interval_secs = 3600\n[[sources]]\ntype = \"file\"\npath = \"coredns.log\"\nfollow = true\npoll_interval_ms = 20\n[[sinks]]\ntype = \"stdout\"\n",
    )
    .unwrap();
    let (mut child, rx) = spawn_run(&config);

    // The file does not exist yet: the source waits for it.
    append(&log, &query("a.example.com"));
    expect(&rx, "growth", is_new("a.example.com"));

    std::fs::rename(&log, dir.path().join("coredns.log.1")).unwrap();
    append(&log, &query("b.example.com"));
    expect(&rx, "rotation", is_new("b.example.com"));

    // copytruncate: the same inode, now shorter than what was read.
    let f = OpenOptions::new().write(true).open(&log).unwrap();
    f.set_len(0).unwrap();
    drop(f);
    append(&log, &query("c.io"));
    expect(&rx, "truncation", is_new("c.io"));

    append(&log, &query("a.example.com"));
    append(&log, &query("d.example.com"));
    expect(&rx, "more growth", is_new("d.example.com"));

    terminate(&child);
    // Draining flushes the coalesced count of a.example.com before exit.
    let changed = expect(&rx, "flush on SIGTERM", |v| {
        v["update"] == "changed" && v["names"][0] == "a.example.com"
    });
    assert_eq!(changed["count"], 2);
    assert!(child.wait().unwrap().success());
}
