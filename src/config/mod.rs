//! Pipeline configuration: typed serde structs loaded with the `config` crate from the
//! embedded `config/default.toml`, a TOML or YAML pipeline file, then `EGRESS_SCOUT__...`
//! environment variables; validated once, every problem named by its key path.

mod ebpf;
mod prometheus_query;
mod validate;

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use std::sync::Arc;

use arc_swap::ArcSwap;
use tokio_util::sync::CancellationToken;

use crate::enrich::{self, PodTable, SharedPods};
use crate::parse::Format;

pub use ebpf::EbpfSourceConfig;
pub use prometheus_query::PrometheusQuerySourceConfig;
pub use validate::{Problem, readable};

/// The defaults every pipeline inherits, compiled in so the binary runs from anywhere.
pub const DEFAULTS: &str = include_str!("../../config/default.toml");

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub classify: ClassifyConfig,
    pub limits: Limits,
    pub inventory: InventoryConfig,
    #[serde(default)]
    pub enrich: EnrichConfig,
    #[serde(default)]
    pub sources: Vec<SourceConfig>,
    /// Empty means one stdout sink with JSON encoding.
    #[serde(default)]
    pub sinks: Vec<SinkConfig>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassifyConfig {
    pub cluster_cidrs: Vec<String>,
    pub internal_cidrs: Vec<String>,
    pub cluster_domain: String,
    pub search_domains: Vec<String>,
    pub internal_suffixes: Vec<String>,
    pub report_nxdomain: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    pub max_line_bytes: usize,
    pub read_chunk_bytes: usize,
    pub channel_capacity: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InventoryConfig {
    /// Distinct destinations kept; past it (and only past it) new ones are dropped.
    pub max_destinations: usize,
    /// Edges (source -> destination) kept; past it observations fold onto their
    /// destination's "other sources" edge.
    pub max_entries: usize,
    pub update_interval_secs: u64,
    pub dedupe_window: usize,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrichConfig {
    /// `kubectl get pods,replicasets,jobs -A -o json` output: attributes client IPs to pods
    /// and workloads without a cluster. Relative to the pipeline file's folder.
    pub pods_file: Option<PathBuf>,
    /// Watch pods, ReplicaSets and Jobs through the API instead (list/watch, cluster-wide).
    #[serde(default)]
    pub kubernetes: bool,
    /// A kubeconfig file; none: KUBECONFIG, ~/.kube/config, or the in-cluster service account.
    pub kubeconfig: Option<PathBuf>,
    pub context: Option<String>,
    /// Addresses the IP->name cache (names from DNS answers) remembers at most.
    #[serde(default = "default_max_names")]
    pub max_names: usize,
}

fn default_max_names() -> usize {
    100_000
}

#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SourceConfig {
    File(FileSourceConfig),
    Stdin(StdinSourceConfig),
    Exec(ExecSourceConfig),
    Tcp(TcpSourceConfig),
    Udp(UdpSourceConfig),
    Http(HttpSourceConfig),
    KubernetesFiles(KubernetesFilesConfig),
    KubernetesLogs(KubernetesLogsConfig),
    Kafka(KafkaSourceConfig),
    Hubble(HubbleSourceConfig),
    Falco(FalcoSourceConfig),
    Pcap(PcapSourceConfig),
    Ebpf(EbpfSourceConfig),
    PrometheusQuery(PrometheusQuerySourceConfig),
}

/// Where a followed file starts reading when the pipeline starts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StartAt {
    #[default]
    Beginning,
    End,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSourceConfig {
    /// Relative paths are resolved against the pipeline file's folder.
    pub path: PathBuf,
    #[serde(default)]
    pub format: Format,
    /// Keep reading as the file grows, across rotation and truncation, like `tail -F`.
    #[serde(default)]
    pub follow: bool,
    #[serde(default)]
    pub start_at: StartAt,
    #[serde(default = "default_poll_ms")]
    pub poll_interval_ms: u64,
    pub name: Option<String>,
}

fn default_poll_ms() -> u64 {
    250
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecSourceConfig {
    /// Program and arguments, run without a shell: `["kubectl", "logs", "-f", ...]`.
    pub command: Vec<String>,
    #[serde(default)]
    pub format: Format,
    /// Start the command again when it exits (until shutdown); off, its end ends the source.
    #[serde(default = "yes")]
    pub restart: bool,
    #[serde(default = "default_backoff_ms")]
    pub restart_backoff_ms: u64,
    #[serde(default = "default_max_backoff_ms")]
    pub max_restart_backoff_ms: u64,
    pub name: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KubernetesFilesConfig {
    /// Globs of container log files.
    #[serde(default = "default_include")]
    pub include: Vec<String>,
    /// Globs of files to leave out (e.g. egress-scout's own log).
    #[serde(default)]
    pub exclude: Vec<String>,
    #[serde(default)]
    pub format: Format,
    /// For files already there at start without a checkpoint; files that appear later are
    /// always read from their start.
    #[serde(default)]
    pub start_at: StartAt,
    /// Where offsets are kept across restarts; none: every start follows `start_at`.
    pub checkpoint_file: Option<PathBuf>,
    #[serde(default = "default_poll_ms")]
    pub poll_interval_ms: u64,
    /// How often the globs are matched again for new files.
    #[serde(default = "default_glob_ms")]
    pub glob_interval_ms: u64,
    #[serde(default = "default_max_open_files")]
    pub max_open_files: usize,
    pub name: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KubernetesLogsConfig {
    /// Namespaces to watch; empty: all.
    #[serde(default)]
    pub namespaces: Vec<String>,
    /// Like `kubectl logs -l`: `k8s-app=kube-dns`.
    pub label_selector: Option<String>,
    /// Only this container of each pod (`istio-proxy`); none: every container.
    pub container: Option<String>,
    #[serde(default)]
    pub format: Format,
    /// A kubeconfig file; none: KUBECONFIG, ~/.kube/config, or the in-cluster service account.
    pub kubeconfig: Option<PathBuf>,
    /// A context of the kubeconfig; none: its current context.
    pub context: Option<String>,
    /// First wait before a cut log stream is resumed; doubles up to 30 s.
    #[serde(default = "default_reconnect_ms")]
    pub reconnect_backoff_ms: u64,
    pub name: Option<String>,
}

fn default_reconnect_ms() -> u64 {
    500
}

fn default_include() -> Vec<String> {
    vec!["/var/log/containers/*.log".into()]
}

fn default_glob_ms() -> u64 {
    1000
}

fn default_max_open_files() -> usize {
    256
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TcpSourceConfig {
    /// `IP:port` to listen on; loopback unless it must be reachable from elsewhere.
    #[serde(default = "default_tcp_address")]
    pub address: String,
    #[serde(default)]
    pub format: Format,
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    #[serde(default)]
    pub framing: TcpFraming,
    pub name: Option<String>,
}

/// How a `tcp` source cuts its connections into messages.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TcpFraming {
    /// One message per line.
    #[default]
    Newline,
    /// Syslog senders' framing (RFC 6587): octet-counted, else newline-terminated.
    Syslog,
}

/// One message per datagram: syslog over UDP (RFC 5426).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UdpSourceConfig {
    /// `IP:port` to listen on; loopback unless it must be reachable from elsewhere.
    #[serde(default = "default_udp_address")]
    pub address: String,
    #[serde(default)]
    pub format: Format,
    pub name: Option<String>,
}

fn default_udp_address() -> String {
    "127.0.0.1:5514".into()
}

fn default_tcp_address() -> String {
    "127.0.0.1:5170".into()
}

fn default_max_connections() -> usize {
    64
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSourceConfig {
    /// `IP:port` to listen on; loopback unless it must be reachable from elsewhere.
    #[serde(default = "default_http_address")]
    pub address: String,
    #[serde(default)]
    pub format: Format,
    /// Fields of JSON objects that hold the log line, the first present wins: `log` for
    /// Fluent Bit, `message` for Vector.
    #[serde(default = "default_line_fields")]
    pub line_fields: Vec<String>,
    /// Larger bodies are refused with 413.
    #[serde(default = "default_max_body")]
    pub max_body_bytes: usize,
    pub auth: Option<AuthConfig>,
    pub name: Option<String>,
}

/// A receiver's authentication: requests must carry `Authorization: Bearer <token>`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// A file holding the token (a Secret's key, mounted); read at every request.
    pub token_file: PathBuf,
}

impl AuthConfig {
    /// The token now in the file, trimmed; why there is none (unreadable, empty) otherwise.
    pub fn token(&self) -> Result<String, String> {
        match std::fs::read_to_string(&self.token_file) {
            Ok(t) if t.trim().is_empty() => Err("holds no token".into()),
            Ok(t) => Ok(t.trim().to_string()),
            Err(e) => Err(format!("cannot be read: {e}")),
        }
    }
}

fn default_http_address() -> String {
    "127.0.0.1:9880".into()
}

fn default_line_fields() -> Vec<String> {
    vec!["log".into(), "message".into()]
}

fn default_max_body() -> usize {
    10 << 20
}

fn yes() -> bool {
    true
}

fn default_backoff_ms() -> u64 {
    1000
}

fn default_max_backoff_ms() -> u64 {
    30_000
}

/// A packet capture file (pcap or pcapng), read to its end: connection starts named by TLS
/// server name, HTTP `Host` or DNS answers in the capture.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PcapSourceConfig {
    /// A capture file, read to its end. Relative to the pipeline file's folder.
    pub path: Option<PathBuf>,
    /// Or an interface to capture from live (`any`: all of them), until shutdown. Needs a
    /// build with `--features live` (libpcap) and CAP_NET_RAW.
    pub interface: Option<String>,
    /// Live: a BPF filter, as tcpdump takes it, e.g. `"not port 22"`.
    pub filter: Option<String>,
    /// Live: bytes kept of each packet (enough for the ClientHellos of most clients).
    #[serde(default = "default_snaplen")]
    pub snaplen: i32,
    /// Live: the kernel's capture ring; packets that do not fit are dropped and counted.
    #[serde(default = "default_ring")]
    pub buffer_bytes: i32,
    /// Flows tracked at once at most (TCP awaiting their first bytes, UDP until idle).
    #[serde(default = "default_max_flows")]
    pub max_flows: usize,
    pub name: Option<String>,
}

fn default_snaplen() -> i32 {
    2048
}

fn default_ring() -> i32 {
    32 << 20
}

fn default_max_flows() -> usize {
    100_000
}

/// Hubble's `GetFlows` stream, followed, from Hubble Relay or an agent's socket.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HubbleSourceConfig {
    /// `host:port` (plain gRPC, or TLS when `tls` is set), or `unix:///path/to/hubble.sock`.
    #[serde(default = "default_hubble_address")]
    pub address: String,
    pub tls: Option<TlsConfig>,
    /// Flows the server sends (any filter matches); by default egress flows only.
    #[serde(default = "default_hubble_whitelist")]
    pub whitelist: Vec<FlowFilterConfig>,
    /// Flows the server leaves out (any filter matches).
    #[serde(default)]
    pub blacklist: Vec<FlowFilterConfig>,
    /// First wait before reconnecting; doubles up to 30 s.
    #[serde(default = "default_reconnect_ms")]
    pub reconnect_backoff_ms: u64,
    pub name: Option<String>,
}

fn default_hubble_address() -> String {
    "localhost:4245".into()
}

fn default_hubble_whitelist() -> Vec<FlowFilterConfig> {
    vec![FlowFilterConfig {
        traffic_direction: vec!["EGRESS".into()],
        ..FlowFilterConfig::default()
    }]
}

/// Falco alerts as they happen. JSON lines (`json_output`) need no source of their own: use
/// any line source with `format = "falco"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FalcoSourceConfig {
    #[serde(default)]
    pub input: FalcoInput,
    /// `http`: the address to listen on (default `127.0.0.1:2801`, falcosidekick's port);
    /// `grpc`: Falco's gRPC server (default `unix:///run/falco/falco.sock`, or `host:port`).
    pub address: Option<String>,
    /// `grpc` over TCP: TLS or mutual TLS, as Falco's gRPC server requires.
    pub tls: Option<TlsConfig>,
    /// `http`: larger bodies are refused with 413.
    #[serde(default = "default_max_alert")]
    pub max_body_bytes: usize,
    /// `grpc`: first wait before reconnecting; doubles up to 30 s.
    #[serde(default = "default_reconnect_ms")]
    pub reconnect_backoff_ms: u64,
    /// `http`: a bearer token requests must carry (Falco's `http_output.custom_headers`).
    pub auth: Option<AuthConfig>,
    pub name: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FalcoInput {
    /// Falco's `http_output` (one JSON alert per POST), as falcosidekick receives it.
    #[default]
    Http,
    /// Falco's legacy gRPC outputs (`falco.outputs.service/sub`), for Falco before 0.44.
    Grpc,
}

impl FalcoSourceConfig {
    pub fn address(&self) -> &str {
        match (&self.address, self.input) {
            (Some(a), _) => a,
            (None, FalcoInput::Http) => "127.0.0.1:2801",
            (None, FalcoInput::Grpc) => "unix:///run/falco/falco.sock",
        }
    }
}

fn default_max_alert() -> usize {
    1 << 20
}

/// TLS to a gRPC server: the CA that signed it, a client certificate and key for mutual TLS,
/// and the name to verify when it differs from the address.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    pub ca: Option<PathBuf>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    pub server_name: Option<String>,
}

/// A Hubble flow filter (`flow.FlowFilter`); within one filter every set field must match.
/// Values as `hubble observe` takes them: `traffic_direction = ["EGRESS"]`,
/// `destination_label = ["reserved:world"]`, `verdict = ["DROPPED"]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlowFilterConfig {
    #[serde(default)]
    pub source_ip: Vec<String>,
    #[serde(default)]
    pub source_pod: Vec<String>,
    #[serde(default)]
    pub destination_ip: Vec<String>,
    #[serde(default)]
    pub destination_pod: Vec<String>,
    #[serde(default)]
    pub verdict: Vec<String>,
    #[serde(default)]
    pub source_fqdn: Vec<String>,
    #[serde(default)]
    pub destination_fqdn: Vec<String>,
    #[serde(default)]
    pub source_label: Vec<String>,
    #[serde(default)]
    pub destination_label: Vec<String>,
    #[serde(default)]
    pub protocol: Vec<String>,
    #[serde(default)]
    pub destination_port: Vec<String>,
    #[serde(default)]
    pub node_name: Vec<String>,
    #[serde(default)]
    pub traffic_direction: Vec<String>,
}

/// Observation records published by node agents (a kafka sink's `observations_topic`),
/// consumed in a consumer group: replicas with the same `group_id` split the partitions.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaSourceConfig {
    /// `host:port[,host:port]`.
    pub brokers: String,
    pub topic: String,
    #[serde(default = "default_group_id")]
    pub group_id: String,
    /// Records handed to the stage at once at most.
    #[serde(default = "default_kafka_batch")]
    pub max_batch: usize,
    /// librdkafka consumer settings passed through (TLS, SASL, `session.timeout.ms`, ...);
    /// they win over the ones egress-scout sets.
    #[serde(default)]
    pub librdkafka: std::collections::BTreeMap<String, String>,
    pub name: Option<String>,
}

fn default_group_id() -> String {
    "egress-scout-aggregator".into()
}

fn default_kafka_batch() -> usize {
    4096
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StdinSourceConfig {
    #[serde(default)]
    pub format: Format,
    pub name: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SinkConfig {
    Stdout(StdoutSinkConfig),
    Prometheus(PrometheusSinkConfig),
    File(FileSinkConfig),
    Kafka(KafkaSinkConfig),
}

/// What a sink does when its broker cannot keep up.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WhenFull {
    /// Wait: backpressure reaches the sources; nothing is lost.
    #[default]
    Block,
    /// Drop the newest records and count them.
    DropNewest,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaSinkConfig {
    /// `host:port[,host:port]`.
    pub brokers: String,
    /// Inventory updates: a new destination at once, changed counts every interval.
    pub topic: Option<String>,
    /// Every observation as an observation record, for aggregators' kafka sources.
    pub observations_topic: Option<String>,
    /// `none`, `gzip`, `snappy`, `lz4` or `zstd`.
    #[serde(default = "default_compression")]
    pub compression: String,
    #[serde(default)]
    pub when_full: WhenFull,
    /// Records the producer queues at most (librdkafka `queue.buffering.max.messages`).
    #[serde(default = "default_kafka_queue")]
    pub queue_capacity: usize,
    /// How long shutdown waits for delivery before reporting what was not delivered.
    #[serde(default = "default_flush_secs")]
    pub flush_timeout_secs: u64,
    /// librdkafka settings passed through, e.g. `"security.protocol" = "SASL_SSL"`,
    /// `"sasl.mechanisms"`, `"ssl.ca.location"`; they win over the ones above.
    #[serde(default)]
    pub librdkafka: std::collections::BTreeMap<String, String>,
}

fn default_compression() -> String {
    "zstd".into()
}

fn default_kafka_queue() -> usize {
    100_000
}

fn default_flush_secs() -> u64 {
    30
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSinkConfig {
    /// The snapshot file; relative to the pipeline file's folder.
    pub path: PathBuf,
    /// How often a changed inventory is written (and always at shutdown).
    #[serde(default = "default_snapshot_secs")]
    pub interval_secs: u64,
    /// Read the snapshot back into the inventory at start.
    #[serde(default = "yes")]
    pub restore: bool,
}

fn default_snapshot_secs() -> u64 {
    10
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrometheusSinkConfig {
    /// `IP:port` serving `/metrics`; loopback unless scraped from elsewhere.
    #[serde(default = "default_metrics_address")]
    pub address: String,
    /// Destination series at most; the excess folds into `destination="other"`.
    #[serde(default = "default_max_series")]
    pub max_series: usize,
    /// A destination series not grown for this long is dropped.
    #[serde(default = "default_expire_secs")]
    pub expire_after_secs: u64,
}

fn default_metrics_address() -> String {
    "127.0.0.1:9464".into()
}

fn default_max_series() -> usize {
    10_000
}

fn default_expire_secs() -> u64 {
    3600
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Encoding {
    /// One JSON object per line.
    #[default]
    Json,
    /// An aligned table for people.
    Table,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StdoutSinkConfig {
    #[serde(default)]
    pub encoding: Encoding,
}

impl SourceConfig {
    /// The component name in logs and metrics.
    pub fn name(&self) -> String {
        match self {
            SourceConfig::File(f) => f
                .name
                .clone()
                .unwrap_or_else(|| format!("file:{}", f.path.display())),
            SourceConfig::Stdin(s) => s.name.clone().unwrap_or_else(|| "stdin".into()),
            SourceConfig::Exec(e) => e
                .name
                .clone()
                .unwrap_or_else(|| format!("exec:{}", e.command.join(" "))),
            SourceConfig::Tcp(t) => t
                .name
                .clone()
                .unwrap_or_else(|| format!("tcp:{}", t.address)),
            SourceConfig::Udp(u) => u
                .name
                .clone()
                .unwrap_or_else(|| format!("udp:{}", u.address)),
            SourceConfig::Http(h) => h
                .name
                .clone()
                .unwrap_or_else(|| format!("http:{}", h.address)),
            SourceConfig::KubernetesFiles(k) => k
                .name
                .clone()
                .unwrap_or_else(|| format!("kubernetes_files:{}", k.include.join(","))),
            SourceConfig::KubernetesLogs(k) => k.name.clone().unwrap_or_else(|| {
                format!(
                    "kubernetes_logs:{}:{}",
                    k.namespaces.join(","),
                    k.label_selector.as_deref().unwrap_or("")
                )
            }),
            SourceConfig::Kafka(k) => k
                .name
                .clone()
                .unwrap_or_else(|| format!("kafka:{}", k.topic)),
            SourceConfig::Hubble(h) => h
                .name
                .clone()
                .unwrap_or_else(|| format!("hubble:{}", h.address)),
            SourceConfig::Falco(f) => f
                .name
                .clone()
                .unwrap_or_else(|| format!("falco:{}", f.address())),
            SourceConfig::Pcap(p) => {
                p.name
                    .clone()
                    .unwrap_or_else(|| match (&p.path, &p.interface) {
                        (Some(path), _) => format!("pcap:{}", path.display()),
                        (None, interface) => {
                            format!("pcap:live:{}", interface.as_deref().unwrap_or(""))
                        }
                    })
            }
            SourceConfig::Ebpf(e) => e
                .name
                .clone()
                .unwrap_or_else(|| format!("ebpf:{}", e.cgroup_root.display())),
            SourceConfig::PrometheusQuery(p) => p
                .name
                .clone()
                .unwrap_or_else(|| format!("prometheus_query:{}", p.url)),
        }
    }

    pub fn format(&self) -> Format {
        match self {
            SourceConfig::File(f) => f.format,
            SourceConfig::Stdin(s) => s.format,
            SourceConfig::Exec(e) => e.format,
            SourceConfig::Tcp(t) => t.format,
            SourceConfig::Udp(u) => u.format,
            SourceConfig::Http(h) => h.format,
            SourceConfig::KubernetesFiles(k) => k.format,
            SourceConfig::KubernetesLogs(k) => k.format,
            SourceConfig::Kafka(_) => Format::Observation,
            SourceConfig::Hubble(_) => Format::Hubble,
            SourceConfig::Falco(_) => Format::Falco,
            // These hand the stage typed findings, no lines.
            SourceConfig::Pcap(_) | SourceConfig::Ebpf(_) | SourceConfig::PrometheusQuery(_) => {
                Format::Auto
            }
        }
    }
}

impl SinkConfig {
    /// Whether the sink publishes every observation, not only inventory updates.
    pub fn wants_observations(&self) -> bool {
        matches!(self, SinkConfig::Kafka(k) if k.observations_topic.is_some())
    }
}

/// Why configuration could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: {source}")]
    Load {
        path: String,
        #[source]
        source: config::ConfigError,
    },
    #[error("{}", ProblemList(.0))]
    Invalid(Vec<Problem>),
}

struct ProblemList<'a>(&'a [Problem]);

impl fmt::Display for ProblemList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

/// The keys whose environment values are comma-separated lists.
const LIST_KEYS: [&str; 4] = [
    "classify.cluster_cidrs",
    "classify.internal_cidrs",
    "classify.search_domains",
    "classify.internal_suffixes",
];

impl Settings {
    /// Defaults, then `file` (TOML or YAML by extension) if given, then the environment.
    /// Relative source paths are resolved against the file's folder.
    pub fn load(file: Option<&Path>) -> Result<Settings, ConfigError> {
        let name = file.map_or_else(|| "defaults".to_string(), |p| p.display().to_string());
        let load_err = |source| ConfigError::Load {
            path: name.clone(),
            source,
        };
        let mut builder = config::Config::builder()
            .add_source(config::File::from_str(DEFAULTS, config::FileFormat::Toml));
        if let Some(path) = file {
            builder = builder.add_source(config::File::from(path.to_path_buf()).required(true));
        }
        let mut env = config::Environment::with_prefix("EGRESS_SCOUT")
            .prefix_separator("__")
            .separator("__")
            .try_parsing(true)
            .list_separator(",");
        for key in LIST_KEYS {
            env = env.with_list_parse_key(key);
        }
        let mut settings: Settings = builder
            .add_source(env)
            .build()
            .and_then(|c| c.try_deserialize())
            .map_err(load_err)?;
        if let Some(dir) = file.and_then(Path::parent) {
            settings.resolve_paths(dir);
        }
        Ok(settings)
    }

    fn resolve_paths(&mut self, base: &Path) {
        for p in [&mut self.enrich.pods_file, &mut self.enrich.kubeconfig]
            .into_iter()
            .flatten()
        {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
        for sink in &mut self.sinks {
            if let SinkConfig::File(f) = sink
                && f.path.is_relative()
            {
                f.path = base.join(&f.path);
            }
        }
        for source in &mut self.sources {
            match source {
                SourceConfig::File(f) if f.path.is_relative() => f.path = base.join(&f.path),
                SourceConfig::Pcap(PcapSourceConfig {
                    path: Some(path), ..
                }) if path.is_relative() => *path = base.join(&*path),
                SourceConfig::KubernetesFiles(k) => {
                    for pattern in k.include.iter_mut().chain(&mut k.exclude) {
                        if Path::new(pattern.as_str()).is_relative() {
                            *pattern = base.join(&*pattern).display().to_string();
                        }
                    }
                    if let Some(c) = &mut k.checkpoint_file
                        && c.is_relative()
                    {
                        *c = base.join(&*c);
                    }
                }
                SourceConfig::KubernetesLogs(k) => {
                    if let Some(c) = &mut k.kubeconfig
                        && c.is_relative()
                    {
                        *c = base.join(&*c);
                    }
                }
                SourceConfig::Hubble(HubbleSourceConfig { tls: Some(t), .. })
                | SourceConfig::Falco(FalcoSourceConfig { tls: Some(t), .. })
                | SourceConfig::PrometheusQuery(PrometheusQuerySourceConfig {
                    tls: Some(t), ..
                }) => {
                    for p in [&mut t.ca, &mut t.cert, &mut t.key].into_iter().flatten() {
                        if p.is_relative() {
                            *p = base.join(&*p);
                        }
                    }
                }
                _ => {}
            }
            let secret = match source {
                SourceConfig::Http(HttpSourceConfig { auth: Some(a), .. })
                | SourceConfig::Falco(FalcoSourceConfig { auth: Some(a), .. }) => {
                    Some(&mut a.token_file)
                }
                SourceConfig::PrometheusQuery(p) => p.bearer_token_file.as_mut(),
                _ => None,
            };
            if let Some(p) = secret.filter(|p| p.is_relative()) {
                *p = base.join(&*p);
            }
        }
    }

    /// The pod table: loaded from `enrich.pods_file`, or watched from the API with
    /// `enrich.kubernetes` until `shutdown`; none when neither is configured.
    pub async fn pod_table(
        &self,
        shutdown: &CancellationToken,
    ) -> anyhow::Result<Option<SharedPods>> {
        let e = &self.enrich;
        if e.kubernetes {
            let client =
                crate::kubernetes::client(e.kubeconfig.as_deref(), e.context.as_deref()).await?;
            let shared = enrich::watch(client, shutdown.clone()).await?;
            return Ok(Some(shared));
        }
        let Some(path) = e.pods_file.as_deref() else {
            return Ok(None);
        };
        let table = PodTable::load(path)?;
        Ok(Some(Arc::new(ArcSwap::from_pointee(table))))
    }

    /// Sinks as configured, or the default stdout JSON sink.
    pub fn effective_sinks(&self) -> Vec<SinkConfig> {
        if self.sinks.is_empty() {
            vec![SinkConfig::Stdout(StdoutSinkConfig::default())]
        } else {
            self.sinks.clone()
        }
    }
}
