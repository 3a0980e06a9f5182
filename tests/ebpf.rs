//! The `ebpf` source on the real kernel (as root; skipped otherwise, failed under
//! tests/run.sh): processes in cgroups shaped like the kubelet's pod cgroups connect over TCP
//! and send UDP to servers in network namespaces; the source reports each call with the pod
//! of its cgroup (a hostNetwork pod too), a capture of the same node names the address and
//! its observations merge with the capture's. After shutdown, and after a crash, no program
//! is left on the cgroup.
#![cfg(feature = "ebpf")]

mod support;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::Running;
use support::netns::{Namespaces, dns_response, hex, serve};

const WEB_UID: &str = "5f3d7c1e-2b4a-4e8f-9a6b-0c1d2e3f4a5b";
const AGENT_UID: &str = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";
const CONTAINER: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// The cgroup v2 mount: the whole of /sys/fs/cgroup, or its `unified` part on hybrid hosts.
fn cgroup_root() -> Option<PathBuf> {
    ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"]
        .map(PathBuf::from)
        .into_iter()
        .find(|p| p.join("cgroup.controllers").exists())
}

/// Kubelet-shaped cgroups for the test's pods, removed when dropped (their processes gone).
struct PodCgroups(Vec<PathBuf>);

impl PodCgroups {
    fn make(root: &Path) -> PodCgroups {
        let systemd = WEB_UID.replace('-', "_");
        let dirs = vec![
            // The systemd driver's naming, with containerd.
            root.join(format!("kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{systemd}.slice/cri-containerd-{CONTAINER}.scope")),
            // The cgroupfs driver's.
            root.join(format!("kubepods/pod{AGENT_UID}/{CONTAINER}")),
        ];
        for d in &dirs {
            std::fs::create_dir_all(d).unwrap();
        }
        PodCgroups(dirs)
    }

    fn web(&self) -> &Path {
        &self.0[0]
    }

    fn agent(&self) -> &Path {
        &self.0[1]
    }
}

impl Drop for PodCgroups {
    fn drop(&mut self) {
        for d in &self.0 {
            // Innermost first, up to the kubepods folder the test made.
            for dir in d
                .ancestors()
                .take_while(|a| a.to_string_lossy().contains("kubepods"))
            {
                let _ = std::fs::remove_dir(dir);
            }
        }
    }
}

/// Runs `script` with python3 in network namespace `ns`, inside cgroup `cgroup`.
fn in_pod(cgroup: &Path, ns: &str, script: &str) {
    let status = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "echo $$ > '{}/cgroup.procs' && exec ip netns exec {ns} python3 -c \"$0\"",
            cgroup.display()
        ))
        .arg(script)
        .status()
        .unwrap();
    assert!(status.success(), "{script}");
}

fn pods_file(dir: &Path) -> PathBuf {
    let owner = |kind: &str, name: &str| json!([{"apiVersion": "apps/v1", "kind": kind, "name": name, "uid": "o", "controller": true}]);
    let status = |ip: &str| {
        json!({"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}], "hostIP": "198.51.100.1",
               "startTime": "2024-05-14T08:00:00Z"})
    };
    let list = json!({"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "apps/v1", "kind": "ReplicaSet",
         "metadata": {"namespace": "shop", "name": "web-7d9f", "uid": "rs",
                      "ownerReferences": owner("Deployment", "web")}},
        {"apiVersion": "v1", "kind": "Pod",
         "metadata": {"namespace": "shop", "name": "web-7d9f-abcde", "uid": WEB_UID,
                      "ownerReferences": owner("ReplicaSet", "web-7d9f")},
         "spec": {"containers": [{"name": "web"}]}, "status": status("198.51.100.1")},
        {"apiVersion": "v1", "kind": "Pod",
         "metadata": {"namespace": "kube-system", "name": "node-agent-x2k9p", "uid": AGENT_UID,
                      "ownerReferences": owner("DaemonSet", "node-agent")},
         "spec": {"hostNetwork": true, "containers": [{"name": "agent"}]},
         "status": status("198.51.100.1")}
    ]});
    let path = dir.join("pods.json");
    std::fs::write(&path, list.to_string()).unwrap();
    path
}

/// Names of egress-scout's programs attached to `root`.
fn attached(root: &Path) -> Vec<String> {
    let out = Command::new("bpftool")
        .args(["-j", "cgroup", "show"])
        .arg(root)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let programs: Value = serde_json::from_slice(&out.stdout).unwrap_or(json!([]));
    programs
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p["name"].as_str())
        .filter(|n| n.starts_with("es_"))
        .map(String::from)
        .collect()
}

/// One test at a time attaches to the cgroup root, so each counts only its own programs.
static ROOT: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// The cgroup v2 mount, once this test has the cgroup root to itself and what it needs is
/// here: root, a cgroup v2 mount, bpftool.
fn ready() -> Option<(std::sync::MutexGuard<'static, ()>, PathBuf)> {
    let one = ROOT.lock().unwrap_or_else(|e| e.into_inner());
    let root = Command::new("id").arg("-u").output().unwrap().stdout == b"0\n";
    if !root {
        support::skipped("the ebpf source needs root");
        return None;
    }
    let bpftool = Command::new("bpftool").arg("version").output().ok();
    support::service(bpftool, "no bpftool (Debian package bpftool)")?;
    Some((one, support::service(cgroup_root(), "no cgroup v2 mount")?))
}

/// A pipeline of the ebpf source alone in `dir`, and where its log goes.
fn ebpf_only(dir: &Path, root: &Path) -> (PathBuf, PathBuf) {
    let config = dir.join("node.toml");
    std::fs::write(
        &config,
        format!("[[sources]]\ntype = \"ebpf\"\ncgroup_root = {root:?}\n"),
    )
    .unwrap();
    (config, dir.join("run.log"))
}

/// Waits until the log at `log` says `what`.
fn wait_log(log: &Path, what: &[&str]) {
    let started = Instant::now();
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if what.iter().all(|w| text.contains(w)) {
            return;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "{text}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn socket_calls_of_pods_by_cgroup_merged_with_a_capture() {
    let Some((_one, root)) = ready() else {
        return;
    };
    let Some((ns, va, vb)) = Namespaces::joined("eb") else {
        return;
    };
    // The resolver at .3, the service at .2, both in namespace B.
    support::netns::ip(&["-n", &ns.b, "addr", "add", "198.51.100.3/24", "dev", &vb]);
    let cgroups = PodCgroups::make(&root);
    let dir = tempfile::tempdir().unwrap();
    let pods = pods_file(dir.path());
    let snapshot = dir.path().join("inventory.json");
    let config = dir.path().join("node.toml");
    // The pairing of pipelines/daemonset-ebpf.toml: a capture of DNS names the addresses;
    // here it also sees the TCP connection, so that both kinds of evidence meet.
    std::fs::write(
        &config,
        format!(
            "[enrich]\npods_file = {pods:?}\n\n[[sources]]\ntype = \"ebpf\"\ncgroup_root = {root:?}\nhold_ms = 1000\n\n[[sources]]\ntype = \"pcap\"\ninterface = \"{va}\"\nfilter = \"port 53 or tcp port 443\"\n\n[[sinks]]\ntype = \"stdout\"\n\n[[sinks]]\ntype = \"file\"\npath = {snapshot:?}\n"
        ),
    )
    .unwrap();
    let log = dir.path().join("run.log");
    // nsenter, not `ip netns exec`: that remounts /sys, hiding the cgroup mount.
    let mut run = Running(
        Command::new("nsenter")
            .arg(format!("--net=/run/netns/{}", ns.a))
            .args([env!("CARGO_BIN_EXE_egress-scout"), "run", "--config"])
            .arg(&config)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    wait_log(&log, &["ebpf programs attached", "capturing"]);
    assert_eq!(
        attached(&root).len(),
        4,
        "{}",
        std::fs::read_to_string(&log).unwrap()
    );

    let answer = dns_response("api.example.com.", std::net::Ipv4Addr::new(198, 51, 100, 2));
    let mut server = serve(
        &ns.b,
        &format!(
            "import socket\ns=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\ns.bind(('198.51.100.2', 443)); s.listen()\nd=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); d.bind(('198.51.100.3', 53))\nu=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(('198.51.100.2', 5353))\nprint('ready', flush=True)\n_,client=d.recvfrom(512); d.sendto(bytes.fromhex('{}'), client)\nc,_=s.accept(); c.recv(100); c.close()\nu.recvfrom(100)",
            hex(&answer)
        ),
    );
    // The web pod resolves the name and connects; the hostNetwork agent sends UDP.
    in_pod(
        cgroups.web(),
        &ns.a,
        "import socket\nq=bytes.fromhex('00070100000100000000000003617069076578616d706c6503636f6d0000010001')\nd=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); d.settimeout(10)\nd.sendto(q, ('198.51.100.3', 53)); d.recv(512)\ns=socket.create_connection(('198.51.100.2', 443), timeout=10); s.sendall(b'hello'); s.close()",
    );
    in_pod(
        cgroups.agent(),
        &ns.a,
        "import socket\nu=socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\nu.sendto(b'report', ('198.51.100.2', 5353))",
    );
    assert!(server.wait().unwrap().success(), "the servers were called");

    let stdout = run.0.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(serde_json::from_str::<Value>(&line).unwrap());
        }
    });
    let from = |v: &Value, workload: &str| {
        v["destination"] == "api.example.com" && v["source"]["workload"] == workload
    };
    // In any order: the web pod's connection (the kernel's evidence), the agent's send.
    let (mut web, mut agent) = (false, false);
    while !(web && agent) {
        let v = support::expect(&rx, "the web pod's and the agent's calls", |v| {
            from(v, "web") || from(v, "node-agent")
        });
        web |= from(&v, "web") && v["evidence"].as_array().unwrap().contains(&json!("ebpf"));
        agent |= from(&v, "node-agent");
    }
    support::terminate(&run.0);
    assert!(run.0.wait().unwrap().success());
    assert!(attached(&root).is_empty(), "programs left after shutdown");

    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&snapshot).unwrap()).unwrap();
    let api = doc["destinations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["destination"] == "api.example.com")
        .unwrap_or_else(|| panic!("{doc:#}"));
    let edge = |workload: &str| {
        api["edges"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["source"]["workload"] == workload)
            .unwrap_or_else(|| panic!("{api:#}"))
            .clone()
    };
    let web = edge("web");
    assert_eq!(web["source"]["namespace"], "shop");
    assert_eq!(web["source"]["workload_kind"], "Deployment");
    // One connection, seen by both: the capture's and the kernel's evidence on one edge.
    let evidence: Vec<&str> = web["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        evidence.contains(&"ebpf") && evidence.contains(&"capture"),
        "{web:#}"
    );
    assert!(web.to_string().contains("443"), "{web:#}");
    let agent = edge("node-agent");
    assert_eq!(agent["source"]["workload_kind"], "DaemonSet");
    assert_eq!(agent["source"]["namespace"], "kube-system");
    assert!(agent.to_string().contains("5353"), "{agent:#}");
    assert!(agent.to_string().contains("udp"), "{agent:#}");
    let log = std::fs::read_to_string(&log).unwrap();
    assert!(log.contains("ebpf programs detached"), "{log}");
}

/// A killed process leaves nothing attached: its BPF links go with it.
#[test]
fn a_crash_leaves_no_program_attached() {
    let Some((_one, root)) = ready() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (config, log) = ebpf_only(dir.path(), &root);
    let mut run = support::bin()
        .args(["run", "--config"])
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    wait_log(&log, &["ebpf programs attached"]);
    assert_eq!(attached(&root).len(), 4);
    run.kill().unwrap();
    run.wait().unwrap();
    let started = Instant::now();
    // The kernel releases the links as the process's descriptors close.
    while !attached(&root).is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{:?}",
            attached(&root)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The capabilities the daemonset-ebpf overlay grants, and no more, are enough, for a user
/// that is not root.
#[test]
fn the_overlays_capabilities_suffice() {
    let Some((_one, root)) = ready() else {
        return;
    };
    let overlay = std::fs::read_to_string(support::repo(
        "deploy/kubernetes/overlays/daemonset-ebpf/ebpf.yaml",
    ))
    .unwrap();
    let added = overlay
        .lines()
        .find_map(|l| l.trim().strip_prefix("add: ["))
        .unwrap()
        .trim_end_matches(']');
    let caps: Vec<String> = added
        .split(',')
        .map(|c| format!("+{}", c.trim().to_lowercase()))
        // NET_RAW is the DNS capture's, not the programs'.
        .filter(|c| c != "+net_raw")
        .collect();
    let caps = format!("-all,{}", caps.join(","));
    let dir = tempfile::tempdir().unwrap();
    let (config, log) = ebpf_only(dir.path(), &root);
    let setpriv = Command::new("setpriv").arg("--version").output().ok();
    if support::service(setpriv, "no setpriv (util-linux)").is_none() {
        return;
    }
    let _run = Running(
        Command::new("setpriv")
            .args(["--reuid=65532", "--regid=65532", "--clear-groups"])
            .arg(format!("--inh-caps={caps}"))
            .arg(format!("--ambient-caps={caps}"))
            .arg(format!("--bounding-set={caps}"))
            .args([env!("CARGO_BIN_EXE_egress-scout"), "run", "--config"])
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    wait_log(&log, &["ebpf programs attached"]);
}

/// A configuration naming no cgroup v2 mount fails `check` with its key.
#[test]
fn check_names_a_cgroup_root_that_is_not_cgroup_v2() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bad.toml");
    std::fs::write(
        &config,
        format!(
            "[[sources]]\ntype = \"ebpf\"\ncgroup_root = {:?}\nring_bytes = 1000\n",
            dir.path()
        ),
    )
    .unwrap();
    let out = support::bin().arg("check").arg(&config).output().unwrap();
    assert!(!out.status.success());
    let err = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(err.contains("sources[0].cgroup_root"), "{err}");
    assert!(err.contains("/sys/fs/cgroup/unified"), "{err}");
    assert!(err.contains("sources[0].ring_bytes"), "{err}");
}
