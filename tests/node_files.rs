//! The `kubernetes_files` source: kubelet log files found by glob, pods named from file names,
//! rename and copytruncate rotation, and a restart that resumes from checkpoints with no loss
//! and no repeats.

mod support;

use std::collections::BTreeSet;
use std::fs::OpenOptions;
use std::sync::mpsc;

use serde_json::Value;
use support::{append, expect, set, spawn_run, terminate};

const FILE: &str = "cart-7d9f-x2x_shop_istio-proxy-0123456789abcdef.log";

/// A CRI-wrapped Istio access log line of a connection to `name`.
fn line(name: &str) -> String {
    format!(
        "2024-05-14T08:02:11.993000000Z stdout F [2024-05-14T08:02:11.993Z] \"- - -\" 0 - - - \"-\" 1204 6120 1733 - \"-\" \"-\" \"-\" \"-\" \"198.51.100.23:443\" PassthroughCluster 10.244.1.17:33712 198.51.100.23:443 10.244.1.17:33710 {name} -\n"
    )
}

fn new_name(rx: &mpsc::Receiver<Value>, what: &str) -> (String, Value) {
    let v = expect(rx, what, |v| v["update"] == "new");
    (v["names"][0].as_str().unwrap().to_string(), v)
}

#[test]
fn follows_rotations_and_resumes_from_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir(&logs).unwrap();
    let log = logs.join(FILE);
    let config = dir.path().join("node.toml");
    std::fs::write(
        &config,
        "[inventory]\nupdate_interval_secs = 3600\n[[sources]]\ntype = \"kubernetes_files\"\ninclude = [\"logs/*.log\"]\ncheckpoint_file = \"checkpoints.json\"\npoll_interval_ms = 20\nglob_interval_ms = 50\n",
    )
    .unwrap();

    append(&log, &line("one.example.com"));
    let (mut child, rx) = spawn_run(&config);
    let (name, v) = new_name(&rx, "existing file");
    assert_eq!(name, "one.example.com");
    assert_eq!(v["source"]["namespace"], "shop");
    assert_eq!(v["source"]["pods"][0], "cart-7d9f-x2x");

    append(&log, &line("two.example.com"));
    assert_eq!(new_name(&rx, "growth").0, "two.example.com");

    // Rename + create, as the kubelet rotates.
    std::fs::rename(&log, logs.join(format!("{FILE}.20240514-080300"))).unwrap();
    append(&log, &line("three-after-rename.example.com"));
    assert_eq!(
        new_name(&rx, "rename rotation").0,
        "three-after-rename.example.com"
    );

    // copytruncate: same inode, shorter than what was read.
    OpenOptions::new()
        .write(true)
        .open(&log)
        .unwrap()
        .set_len(0)
        .unwrap();
    append(&log, &line("four.io"));
    assert_eq!(new_name(&rx, "copytruncate").0, "four.io");

    terminate(&child);
    assert!(child.wait().unwrap().success());
    assert!(dir.path().join("checkpoints.json").is_file());

    // Written while egress-scout was down: read after the restart, and nothing before it again.
    append(&log, &line("five-while-down.example.com"));
    let (mut child, rx) = spawn_run(&config);
    assert_eq!(
        new_name(&rx, "after restart").0,
        "five-while-down.example.com"
    );
    append(&log, &line("six.example.com"));
    let mut seen = BTreeSet::new();
    while !seen.contains("six.example.com") {
        seen.insert(new_name(&rx, "growth after restart").0);
    }
    assert_eq!(
        seen,
        set(&["six.example.com"]),
        "no line of the first run came again"
    );
    terminate(&child);
    assert!(child.wait().unwrap().success());
}
