//! The `exec` source: a command's stdout lines, restarted with backoff when it exits.

mod support;

use std::time::Duration;

use support::{expect, spawn_run, terminate};

const LINE: &str = r#"[INFO] 10.244.0.9:41000 - 7 \"A IN api.github.com. udp 41 false 512\" NOERROR qr,rd,ra 68 0.001s"#;

fn config(dir: &std::path::Path, script: &str, restart: bool) -> std::path::PathBuf {
    let path = dir.join("exec.toml");
    let script = script.replace('\\', "\\\\").replace('"', "\\\"");
    std::fs::write(
        &path,
        format!(
            "[inventory]\nupdate_interval_secs = 3600\n[[sources]]\ntype = \"exec\"\ncommand = [\"sh\", \"-c\", \"{script}\"]\nrestart = {restart}\nrestart_backoff_ms = 10\nmax_restart_backoff_ms = 50\n"
        ),
    )
    .unwrap();
    path
}

#[test]
fn finite_command_is_read_to_its_end_including_an_unterminated_last_line() {
    let dir = tempfile::tempdir().unwrap();
    let script = format!(
        "echo noise >&2; printf '%s\\n%s' \"{LINE}\" \"{}\"",
        LINE.replace("api.github.com", "uploads.github.com")
    );
    let (mut child, rx) = spawn_run(&config(dir.path(), &script, false));
    expect(&rx, "first line", |v| v["names"][0] == "api.github.com");
    expect(&rx, "unterminated last line", |v| {
        v["names"][0] == "uploads.github.com"
    });
    assert!(child.wait().unwrap().success());
}

#[test]
fn exiting_command_is_restarted_until_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let runs = dir.path().join("runs");
    let script = format!("echo run >> '{}'; echo \"{LINE}\"", runs.display());
    let (mut child, rx) = spawn_run(&config(dir.path(), &script, true));
    expect(&rx, "first run", |v| v["update"] == "new");
    let started = std::time::Instant::now();
    while std::fs::read_to_string(&runs)
        .unwrap_or_default()
        .lines()
        .count()
        < 3
    {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the command was not restarted"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    terminate(&child);
    let changed = expect(&rx, "flush", |v| v["update"] == "changed");
    assert!(changed["count"].as_u64().unwrap() >= 2, "{changed}");
    assert!(child.wait().unwrap().success());
}
