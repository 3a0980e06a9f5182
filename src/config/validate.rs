//! Checks a loaded configuration once, at start, collecting every problem with its key path
//! and the fix, and builds the classification rules from it.

use std::fmt;
use std::path::Path;

use ipnet::IpNet;

use super::{ClassifyConfig, ConfigError, Settings, SinkConfig, SourceConfig};
use crate::classify::Classifier;
use crate::egress::Judge;

/// One configuration problem: the key path and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub key: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

impl Settings {
    /// Every problem of this configuration; empty when it can run.
    pub fn problems(&self) -> Vec<Problem> {
        let mut problems = self.classify.problems();
        let mut problem = |key: String, message: String| problems.push(Problem { key, message });
        let l = &self.limits;
        for (value, key, min) in [
            (l.max_line_bytes, "limits.max_line_bytes", 256),
            (l.read_chunk_bytes, "limits.read_chunk_bytes", 4096),
            (l.channel_capacity, "limits.channel_capacity", 1),
            (
                self.inventory.max_destinations,
                "inventory.max_destinations",
                1,
            ),
            (self.inventory.max_entries, "inventory.max_entries", 1),
            (self.inventory.dedupe_window, "inventory.dedupe_window", 2),
        ] {
            if value < min {
                problem(key.into(), format!("is {value}; it must be at least {min}"));
            }
        }
        if self.inventory.update_interval_secs == 0 {
            problem(
                "inventory.update_interval_secs".into(),
                "must be at least 1 (seconds)".into(),
            );
        }
        if let Some(path) = &self.enrich.pods_file
            && let Err(why) = readable(path)
        {
            problem(
                "enrich.pods_file".into(),
                format!(
                    "cannot read {}: {why}; write it with `kubectl get pods,replicasets,jobs -A -o json`",
                    path.display()
                ),
            );
        }
        if self.enrich.kubernetes && self.enrich.pods_file.is_some() {
            problem(
                "enrich".into(),
                "pods_file and kubernetes = true both name the pod table; keep one".into(),
            );
        }
        if let Some(path) = &self.enrich.kubeconfig
            && let Err(why) = readable(path)
        {
            problem(
                "enrich.kubeconfig".into(),
                format!("cannot read {}: {why}", path.display()),
            );
        }
        if self.sources.is_empty() {
            problem(
                "sources".into(),
                "no source configured; add a [[sources]] table, e.g. type = \"file\" with a path"
                    .into(),
            );
        }
        for (i, source) in self.sources.iter().enumerate() {
            match source {
                SourceConfig::File(f)
                    if !f.follow
                        && let Err(why) = readable(&f.path) =>
                {
                    problem(
                        format!("sources[{i}].path"),
                        format!(
                            "cannot read {}: {why}; fix the path (relative paths start at the pipeline file's folder) or set follow = true to wait for it",
                            f.path.display()
                        ),
                    )
                }
                SourceConfig::Exec(e) if e.command.first().is_none_or(String::is_empty) => problem(
                    format!("sources[{i}].command"),
                    "must name a program, e.g. [\"kubectl\", \"logs\", \"-f\", \"-l\", \"k8s-app=kube-dns\", \"-n\", \"kube-system\"]".into(),
                ),
                SourceConfig::Exec(e) if e.restart_backoff_ms == 0 => problem(
                    format!("sources[{i}].restart_backoff_ms"),
                    "must be at least 1".into(),
                ),
                SourceConfig::Tcp(crate::config::TcpSourceConfig { address, .. })
                | SourceConfig::Udp(crate::config::UdpSourceConfig { address, .. })
                | SourceConfig::Http(crate::config::HttpSourceConfig { address, .. })
                    if address.parse::<std::net::SocketAddr>().is_err() =>
                {
                    problem(
                        format!("sources[{i}].address"),
                        format!("{address:?} is not IP:port; write it like \"127.0.0.1:9880\""),
                    )
                }
                SourceConfig::Tcp(t) if t.max_connections == 0 => problem(
                    format!("sources[{i}].max_connections"),
                    "must be at least 1".into(),
                ),
                SourceConfig::Http(h) if h.max_body_bytes < 1024 || h.line_fields.is_empty() => problem(
                    format!("sources[{i}]"),
                    "max_body_bytes must be at least 1024 and line_fields must name a field".into(),
                ),
                SourceConfig::KubernetesFiles(k) => {
                    for (key, list) in [("include", &k.include), ("exclude", &k.exclude)] {
                        for (j, pattern) in list.iter().enumerate() {
                            if let Err(e) = glob::Pattern::new(pattern) {
                                problem(
                                    format!("sources[{i}].{key}[{j}]"),
                                    format!("{pattern:?} is not a glob ({e}); write it like \"/var/log/containers/*.log\""),
                                );
                            }
                        }
                    }
                    if k.include.is_empty() {
                        problem(format!("sources[{i}].include"), "must name at least one glob".into());
                    }
                    if k.poll_interval_ms == 0 || k.glob_interval_ms == 0 || k.max_open_files == 0 {
                        problem(
                            format!("sources[{i}]"),
                            "poll_interval_ms, glob_interval_ms and max_open_files must be at least 1".into(),
                        );
                    }
                }
                SourceConfig::Hubble(h) => {
                    if h.address.trim().is_empty() || h.reconnect_backoff_ms == 0 {
                        problem(
                            format!("sources[{i}]"),
                            "address must be set (\"hubble-relay:4245\" or \"unix:///var/run/cilium/hubble.sock\") and reconnect_backoff_ms at least 1".into(),
                        );
                    }
                    for (list, filters) in [("whitelist", &h.whitelist), ("blacklist", &h.blacklist)] {
                        for (j, f) in filters.iter().enumerate() {
                            for v in &f.verdict {
                                if crate::proto::flow::Verdict::from_str_name(v).is_none() {
                                    problem(format!("sources[{i}].{list}[{j}].verdict"), format!("{v:?} is not a verdict; use FORWARDED, DROPPED, ERROR, AUDIT, REDIRECTED, TRACED or TRANSLATED"));
                                }
                            }
                            for d in &f.traffic_direction {
                                if crate::proto::flow::TrafficDirection::from_str_name(d).is_none() {
                                    problem(format!("sources[{i}].{list}[{j}].traffic_direction"), format!("{d:?} is not a direction; use INGRESS or EGRESS"));
                                }
                            }
                        }
                    }
                    tls_problems(i, h.tls.as_ref(), &mut problem);
                }
                SourceConfig::Pcap(p) => {
                    match (&p.path, &p.interface) {
                        (Some(_), Some(_)) | (None, None) => problem(
                            format!("sources[{i}]"),
                            "set path (a capture file) or interface (live capture, e.g. \"any\"), not both".into(),
                        ),
                        (Some(path), None) => {
                            if let Err(why) = readable(path) {
                                problem(format!("sources[{i}].path"), format!("cannot read {}: {why}", path.display()));
                            }
                        }
                        (None, Some(_)) if !cfg!(feature = "live") => problem(
                            format!("sources[{i}].interface"),
                            "this build has no live capture; build with `cargo build --release --features live` (needs libpcap-dev)".into(),
                        ),
                        (None, Some(_)) => {}
                    }
                    if p.max_flows == 0 || p.snaplen < 64 || p.buffer_bytes < 65536 {
                        problem(format!("sources[{i}]"), "max_flows must be at least 1, snaplen at least 64 and buffer_bytes at least 65536".into());
                    }
                }
                SourceConfig::Http(crate::config::HttpSourceConfig { auth: Some(a), .. }) => {
                    token_problems(i, a, &mut problem);
                }
                SourceConfig::Ebpf(e) => {
                    if !cfg!(feature = "ebpf") {
                        problem(
                            format!("sources[{i}]"),
                            "this build has no ebpf source; build with `cargo build --release --features ebpf` (needs clang and libbpf-dev)".into(),
                        );
                    }
                    // Only a cgroup v2 mount has cgroup.controllers at its top. A path absent
                    // here (a host mount of the pod that runs it) fails at start instead.
                    if e.cgroup_root.exists() && !e.cgroup_root.join("cgroup.controllers").exists() {
                        problem(
                            format!("sources[{i}].cgroup_root"),
                            format!("{} is not a cgroup v2 mount; on hosts with both cgroup versions it is /sys/fs/cgroup/unified (`mount -t cgroup2` lists it)", e.cgroup_root.display()),
                        );
                    }
                    if !e.ring_bytes.is_power_of_two() || e.ring_bytes < 4096 {
                        problem(
                            format!("sources[{i}].ring_bytes"),
                            format!("is {}; it must be a power of two of at least 4096, e.g. 4194304", e.ring_bytes),
                        );
                    }
                }
                SourceConfig::PrometheusQuery(p) => {
                    match url::Url::parse(&p.url) {
                        Ok(u) if matches!(u.scheme(), "http" | "https") => {}
                        _ => problem(
                            format!("sources[{i}].url"),
                            format!("{:?} is not an http(s) URL; write it like \"http://prometheus.istio-system:9090\"", p.url),
                        ),
                    }
                    if p.queries.is_empty() || p.queries.iter().any(|q| q.trim().is_empty()) {
                        problem(format!("sources[{i}].queries"), "must list at least one query, none empty (leave it out for Istio's and Envoy's)".into());
                    }
                    if p.interval_secs == 0 || p.timeout_secs == 0 {
                        problem(format!("sources[{i}]"), "interval_secs and timeout_secs must be at least 1".into());
                    }
                    if let Some(path) = &p.bearer_token_file
                        && let Err(why) = readable(path)
                    {
                        problem(format!("sources[{i}].bearer_token_file"), format!("cannot read {}: {why}", path.display()));
                    }
                    if p.tls.as_ref().is_some_and(|t| t.server_name.is_some()) {
                        problem(format!("sources[{i}].tls.server_name"), "is not used here: the server's name is the url's host".into());
                    }
                    tls_problems(i, p.tls.as_ref(), &mut problem);
                }
                SourceConfig::Falco(f) => {
                    if f.auth.is_some() && f.input != crate::config::FalcoInput::Http {
                        problem(
                            format!("sources[{i}].auth"),
                            "is for input = \"http\" (Falco's http_output); the grpc input connects to Falco".into(),
                        );
                    }
                    if let Some(a) = &f.auth {
                        token_problems(i, a, &mut problem);
                    }
                    if f.input == crate::config::FalcoInput::Http
                        && f.address().parse::<std::net::SocketAddr>().is_err()
                    {
                        problem(
                            format!("sources[{i}].address"),
                            format!("{:?} is not IP:port; write it like \"127.0.0.1:2801\"", f.address()),
                        );
                    }
                    if f.max_body_bytes < 1024 || f.reconnect_backoff_ms == 0 {
                        problem(
                            format!("sources[{i}]"),
                            "max_body_bytes must be at least 1024 and reconnect_backoff_ms at least 1".into(),
                        );
                    }
                    tls_problems(i, f.tls.as_ref(), &mut problem);
                }
                SourceConfig::Kafka(k)
                    if k.brokers.trim().is_empty()
                        || k.topic.trim().is_empty()
                        || k.group_id.trim().is_empty()
                        || k.max_batch == 0 =>
                {
                    problem(
                        format!("sources[{i}]"),
                        "brokers, topic and group_id must be set and max_batch at least 1, e.g. brokers = \"kafka:9092\", topic = \"egress-observations\"".into(),
                    )
                }
                SourceConfig::KubernetesLogs(k) if k.reconnect_backoff_ms == 0 => problem(
                    format!("sources[{i}].reconnect_backoff_ms"),
                    "must be at least 1".into(),
                ),
                SourceConfig::KubernetesLogs(k)
                    if k.kubeconfig.as_deref().is_some_and(|p| readable(p).is_err()) =>
                {
                    problem(
                        format!("sources[{i}].kubeconfig"),
                        "cannot be read; give a kubeconfig file, or leave it out to use KUBECONFIG or the in-cluster service account".into(),
                    )
                }
                SourceConfig::File(f) if f.poll_interval_ms == 0 => problem(
                    format!("sources[{i}].poll_interval_ms"),
                    "must be at least 1".into(),
                ),
                _ => {}
            }
        }
        for (i, sink) in self.sinks.iter().enumerate() {
            if let SinkConfig::File(f) = sink
                && (f.interval_secs == 0
                    || f.path
                        .parent()
                        .is_some_and(|d| !d.as_os_str().is_empty() && !d.is_dir()))
            {
                problem(
                    format!("sinks[{i}]"),
                    format!(
                        "the folder of path {} must exist and interval_secs must be at least 1",
                        f.path.display()
                    ),
                );
            }
            if let SinkConfig::Kafka(k) = sink {
                let blank = |t: &Option<String>| t.as_deref().is_some_and(|t| t.trim().is_empty());
                if k.brokers.trim().is_empty()
                    || (k.topic.is_none() && k.observations_topic.is_none())
                    || blank(&k.topic)
                    || blank(&k.observations_topic)
                {
                    problem(
                        format!("sinks[{i}]"),
                        "brokers and a topic must be set, e.g. brokers = \"kafka:9092\", topic = \"egress-inventory\" (inventory updates) and/or observations_topic = \"egress-observations\" (every observation)".into(),
                    );
                }
            }
            if let SinkConfig::Prometheus(p) = sink {
                if p.address.parse::<std::net::SocketAddr>().is_err() {
                    problem(
                        format!("sinks[{i}].address"),
                        format!(
                            "{:?} is not IP:port; write it like \"127.0.0.1:9464\"",
                            p.address
                        ),
                    );
                }
                if p.max_series == 0 || p.expire_after_secs == 0 {
                    problem(
                        format!("sinks[{i}]"),
                        "max_series and expire_after_secs must be at least 1".into(),
                    );
                }
            }
        }
        problems
    }

    /// The configuration's classification rules, or every problem found.
    pub fn judge(&self) -> Result<Judge, ConfigError> {
        none_of(self.problems())?;
        Ok(self.classify.judge())
    }
}

/// Ok when there is no problem, else all of them.
fn none_of(problems: Vec<Problem>) -> Result<(), ConfigError> {
    if problems.is_empty() {
        Ok(())
    } else {
        Err(ConfigError::Invalid(problems))
    }
}

/// Whether `path` can be opened for reading as a stream (a file, a pipe, not a directory).
pub fn readable(path: &Path) -> Result<(), String> {
    match std::fs::File::open(path).and_then(|f| f.metadata()) {
        Ok(m) if m.is_dir() => Err("it is a directory".into()),
        Ok(_) => Ok(()),
        Err(e) => Err(e.to_string()),
    }
}

impl ClassifyConfig {
    /// Problems of the classification settings alone (commands without sources check these).
    pub fn problems(&self) -> Vec<Problem> {
        let mut problems = Vec::new();
        let mut problem = |key: String, message: String| problems.push(Problem { key, message });
        let c = self;
        for (list, key) in [
            (&c.cluster_cidrs, "cluster_cidrs"),
            (&c.internal_cidrs, "internal_cidrs"),
        ] {
            for (i, cidr) in list.iter().enumerate() {
                if cidr.parse::<IpNet>().is_err() {
                    problem(
                        format!("classify.{key}[{i}]"),
                        format!(
                            "{cidr:?} is not a CIDR; write it like \"10.244.0.0/16\" or \"fd00::/8\""
                        ),
                    );
                }
            }
        }
        if c.cluster_domain.trim_matches('.').is_empty() {
            problem(
                "classify.cluster_domain".into(),
                "must not be empty; the usual value is \"cluster.local\"".into(),
            );
        }
        problems
    }

    /// The classification rules, or the problems of the settings.
    pub fn checked_judge(&self) -> Result<Judge, ConfigError> {
        none_of(self.problems())?;
        Ok(self.judge())
    }

    /// The classification rules; CIDRs that do not parse are left out (see [`Settings::problems`]).
    pub fn judge(&self) -> Judge {
        let nets = self
            .internal_cidrs
            .iter()
            .chain(&self.cluster_cidrs)
            .filter_map(|s| s.parse::<IpNet>().ok());
        Judge {
            classifier: Classifier::new(
                nets,
                &self.cluster_domain,
                &self.search_domains,
                &self.internal_suffixes,
            ),
            report_nxdomain: self.report_nxdomain,
        }
    }
}

/// A receiver's token file: readable and not empty. One absent here (a Secret mounted into
/// the pod that runs it) is checked when the receiver starts.
fn token_problems(
    i: usize,
    a: &crate::config::AuthConfig,
    problem: &mut impl FnMut(String, String),
) {
    if !a.token_file.exists() {
        return;
    }
    let Err(why) = a.token() else {
        return;
    };
    problem(
        format!("sources[{i}].auth.token_file"),
        format!(
            "{} {why}; put the token in it (a Secret's key, mounted)",
            a.token_file.display()
        ),
    );
}

/// Problems of a gRPC source's TLS settings: unreadable files, a certificate without its key.
fn tls_problems(
    i: usize,
    tls: Option<&crate::config::TlsConfig>,
    problem: &mut impl FnMut(String, String),
) {
    let Some(t) = tls else {
        return;
    };
    for (key, path) in [("ca", &t.ca), ("cert", &t.cert), ("key", &t.key)] {
        if let Some(p) = path
            && let Err(why) = readable(p)
        {
            problem(
                format!("sources[{i}].tls.{key}"),
                format!("cannot read {}: {why}", p.display()),
            );
        }
    }
    if t.cert.is_some() != t.key.is_some() {
        problem(
            format!("sources[{i}].tls"),
            "cert and key go together (mutual TLS); set both or neither".into(),
        );
    }
}
