//! Syslog transport as log shippers send it: a real rsyslog tails a CoreDNS log (`imfile`) and
//! forwards it with its standard forward template (`RSYSLOG_ForwardFormat`: `<PRI>`, RFC 3339
//! time, host and tag before every line) to the `tcp` source, newline-framed and
//! octet-counted, and to the `udp` source. Every external name of the log is found.

mod support;

use std::collections::BTreeSet;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::{expect, free_port, names, repo, scan, spawn_run, terminate};

#[test]
fn rsyslog_forwarding_a_coredns_log_gives_every_external_name() {
    let found = Command::new("rsyslogd").arg("-v").output().ok();
    if support::service(found, "no rsyslogd (Debian package rsyslog)").is_none() {
        return;
    }
    let expected = names(&scan(&[repo("examples/coredns.log").to_str().unwrap()]));
    assert!(expected.len() >= 5, "{expected:?}");
    for (transport, framing) in [
        ("tcp", "traditional"),
        ("tcp", "octet-counted"),
        ("udp", "datagrams"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("coredns.log");
        std::fs::copy(repo("examples/coredns.log"), &log).unwrap();
        let port = free_port();
        let config = dir.path().join("syslog.toml");
        std::fs::write(
            &config,
            match transport {
                "tcp" => format!(
                    "[[sources]]\ntype = \"tcp\"\naddress = \"127.0.0.1:{port}\"\nframing = \"syslog\"\n"
                ),
                _ => format!("[[sources]]\ntype = \"udp\"\naddress = \"127.0.0.1:{port}\"\n"),
            },
        )
        .unwrap();
        let (mut run, rx) = spawn_run(&config);
        let started = Instant::now();
        let listening = || match transport {
            "tcp" => std::net::TcpStream::connect(("127.0.0.1", port)).is_ok(),
            _ => std::net::UdpSocket::bind(("127.0.0.1", port)).is_err(),
        };
        while !listening() {
            assert!(started.elapsed() < Duration::from_secs(30), "no listener");
            std::thread::sleep(Duration::from_millis(50));
        }
        let framing_option = match transport {
            "tcp" => format!(r#"TCP_Framing="{framing}""#),
            _ => String::new(),
        };
        let conf = dir.path().join("rsyslog.conf");
        std::fs::write(
            &conf,
            format!(
                r#"global(workDirectory="{dir}")
module(load="imfile" mode="polling" PollingInterval="1")
input(type="imfile" File="{log}" Tag="coredns" Facility="local0" ruleset="forward")
ruleset(name="forward") {{
  action(type="omfwd" target="127.0.0.1" port="{port}" protocol="{transport}"
         template="RSYSLOG_ForwardFormat" {framing_option}
         action.resumeRetryCount="-1" action.resumeInterval="1")
}}
"#,
                dir = dir.path().display(),
                log = log.display(),
            ),
        )
        .unwrap();
        let mut rsyslog = Command::new("rsyslogd")
            .args(["-n", "-f"])
            .arg(&conf)
            .arg("-i")
            .arg(dir.path().join("rsyslogd.pid"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut seen = BTreeSet::new();
        while !expected.is_subset(&seen) {
            let v = expect(
                &rx,
                &format!("{framing}: {expected:?} (so far {seen:?})"),
                |v| v["update"] == "new",
            );
            seen.extend(
                v["names"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|n| n.as_str().map(String::from)),
            );
        }
        let _ = rsyslog.kill();
        rsyslog.wait().unwrap();
        terminate(&run);
        assert!(run.wait().unwrap().success());
        assert!(seen.is_subset(&expected), "{framing}: extra {seen:?}");
    }
}
