//! `/metrics` for Prometheus: connections per (namespace, workload, destination, port,
//! protocol) from the inventory's edge updates, the number of known destinations, the pipeline's
//! self-metrics and build info. Destination series are capped (the excess folds into
//! `destination="other"`, counted) and expire when not seen for a while. The same listener
//! serves the live report page (`/`, see [`crate::report::live`]).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use prometheus::{
    Encoder, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::config::PrometheusSinkConfig;
use crate::event::Protocol;
use crate::inventory::{DestKey, SourceKey, Update};
use crate::pipeline::Outbox;
use crate::telemetry::{ComponentStats, Outcome, Tally};

/// namespace, workload, destination, port, protocol.
type Labels = [String; 5];

struct Exporter {
    registry: Registry,
    connections: IntCounterVec,
    destinations: IntGauge,
    folded: IntCounter,
    received: IntCounterVec,
    sent: IntCounterVec,
    folded_records: IntCounterVec,
    discarded: IntCounterVec,
    /// Last count seen per edge and port: counters grow by the difference.
    last_count: HashMap<(DestKey, SourceKey, Use), u64>,
    /// Destinations heard of.
    known: HashSet<DestKey>,
    /// Destination series and when each last grew.
    series: HashMap<Labels, Instant>,
    /// Self-metric values already exported, by (metric, component, label).
    exported: HashMap<(&'static str, String, String), u64>,
    max_series: usize,
    expire_after: Duration,
}

fn counter_vec(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let vec = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
    registry
        .register(Box::new(vec.clone()))
        .expect("unique metric");
    vec
}

impl Exporter {
    fn new(cfg: &PrometheusSinkConfig) -> Exporter {
        let registry = Registry::new();
        let connections = counter_vec(
            &registry,
            "egress_scout_egress_connections_total",
            "Connections and lookups to external destinations, by source workload.",
            &["namespace", "workload", "destination", "port", "protocol"],
        );
        let destinations = IntGauge::new(
            "egress_scout_destinations",
            "External destinations known (names, else IPs).",
        )
        .expect("valid metric");
        registry
            .register(Box::new(destinations.clone()))
            .expect("unique metric");
        let folded = IntCounter::new(
            "egress_scout_destination_series_folded_total",
            "Counts folded into destination=\"other\" by the series cap.",
        )
        .expect("valid metric");
        registry
            .register(Box::new(folded.clone()))
            .expect("unique metric");
        let build = IntGaugeVec::new(
            Opts::new("egress_scout_build_info", "Build information; always 1."),
            &["version"],
        )
        .expect("valid metric");
        registry
            .register(Box::new(build.clone()))
            .expect("unique metric");
        build.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);
        Exporter {
            connections,
            destinations,
            folded,
            received: counter_vec(
                &registry,
                "egress_scout_component_received_events_total",
                "Events (lines, updates) a component received.",
                &["component", "kind"],
            ),
            folded_records: counter_vec(
                &registry,
                "egress_scout_component_folded_events_total",
                "Records counted on their destination's \"other sources\" edge: inventory.max_entries edges existed.",
                &["component"],
            ),
            sent: counter_vec(
                &registry,
                "egress_scout_component_sent_events_total",
                "Events a component passed on (records counted, updates written).",
                &["component"],
            ),
            discarded: counter_vec(
                &registry,
                "egress_scout_component_discarded_events_total",
                "Events a component did not pass on, by reason.",
                &["component", "reason"],
            ),
            registry,
            last_count: HashMap::new(),
            known: HashSet::new(),
            series: HashMap::new(),
            exported: HashMap::new(),
            max_series: cfg.max_series,
            expire_after: Duration::from_secs(cfg.expire_after_secs),
        }
    }

    /// Counts the growth of each updated edge, per port (lookups have none).
    fn apply(&mut self, updates: &[Update], now: Instant) -> u64 {
        for u in updates {
            let (e, usage) = (&u.edge, &u.edge.usage);
            let uses = [
                (Use::Lookups, usage.lookups),
                (Use::OtherPorts, usage.other_ports),
            ]
            .into_iter()
            .chain(
                usage
                    .ports
                    .iter()
                    .map(|p| (Use::Port(p.port, p.protocol), p.count)),
            )
            .filter(|&(_, count)| count > 0);
            let source = e.source.key();
            for (what, count) in uses {
                let key = (u.destination.clone(), source.clone(), what);
                let previous = self.last_count.insert(key, count).unwrap_or(0);
                let delta = count.saturating_sub(previous);
                let mut labels = labels_of(u, &source, what);
                if !self.series.contains_key(&labels) && self.series.len() >= self.max_series {
                    labels[2] = "other".into();
                    self.folded.inc_by(delta);
                }
                self.series.insert(labels.clone(), now);
                let refs: Vec<&str> = labels.iter().map(String::as_str).collect();
                self.connections.with_label_values(&refs).inc_by(delta);
            }
            self.known.insert(u.destination.clone());
        }
        self.destinations.set(self.known.len() as i64);
        self.expire(now)
    }

    /// Drops series not grown for `expire_after`; returns how many.
    fn expire(&mut self, now: Instant) -> u64 {
        let stale: Vec<Labels> = self
            .series
            .iter()
            .filter(|(_, seen)| now.duration_since(**seen) >= self.expire_after)
            .map(|(l, _)| l.clone())
            .collect();
        for labels in &stale {
            let refs: Vec<&str> = labels.iter().map(String::as_str).collect();
            let _ = self.connections.remove_label_values(&refs);
            self.series.remove(labels);
        }
        stale.len() as u64
    }

    /// Brings the self-metrics up to the components' counters.
    fn sync(&mut self, components: &[Arc<ComponentStats>]) {
        for c in components {
            let t = c.totals();
            self.advance("received", &c.name, c.kind, t.lines);
            self.advance("sent", &c.name, "", t.records - t.internal - t.dropped);
            self.advance("folded", &c.name, "", t.folded);
            self.advance("discarded", &c.name, "internal", t.internal);
            for (reason, n) in c.reasons() {
                self.advance("discarded", &c.name, reason, n);
            }
        }
    }

    fn advance(&mut self, metric: &'static str, component: &str, label: &str, value: u64) {
        let key = (metric, component.to_string(), label.to_string());
        let before = self.exported.insert(key, value).unwrap_or(0);
        let delta = value.saturating_sub(before);
        match metric {
            "received" => self
                .received
                .with_label_values(&[component, label])
                .inc_by(delta),
            "sent" => self.sent.with_label_values(&[component]).inc_by(delta),
            "folded" => self
                .folded_records
                .with_label_values(&[component])
                .inc_by(delta),
            _ => self
                .discarded
                .with_label_values(&[component, label])
                .inc_by(delta),
        }
    }

    fn render(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        out
    }
}

/// What an edge's count is of: its lookups, one port's connections, or those past the
/// listed ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Use {
    Lookups,
    Port(Option<u16>, Protocol),
    OtherPorts,
}

fn labels_of(u: &Update, source: &SourceKey, what: Use) -> Labels {
    let (port, protocol) = match what {
        Use::Lookups => (String::new(), ""),
        Use::Port(port, protocol) => (
            port.map(|p| p.to_string()).unwrap_or_default(),
            protocol.as_str(),
        ),
        Use::OtherPorts => ("other".into(), ""),
    };
    [
        u.edge
            .source
            .namespace
            .as_deref()
            .unwrap_or_default()
            .to_string(),
        source.name(),
        u.destination.to_string(),
        port,
        protocol.to_string(),
    ]
}

pub async fn run(
    cfg: PrometheusSinkConfig,
    listener: TcpListener,
    mut rx: mpsc::Receiver<Arc<Outbox>>,
    stats: Arc<ComponentStats>,
    components: Arc<[Arc<ComponentStats>]>,
) {
    let exporter = Arc::new(Mutex::new(Exporter::new(&cfg)));
    let scrape = {
        let exporter = exporter.clone();
        move || async move {
            let mut e = exporter.lock().unwrap_or_else(|p| p.into_inner());
            e.sync(&components);
            let body = e.render();
            (
                [(
                    axum::http::header::CONTENT_TYPE,
                    "text/plain; version=0.0.4",
                )],
                body,
            )
        }
    };
    let live = crate::report::live::Live::new();
    let app = Router::new()
        .route("/metrics", get(scrape))
        .route("/healthz", get(|| async { "ok\n" }))
        .merge(live.router());
    let stop = CancellationToken::new();
    let server = tokio::spawn(
        axum::serve(listener, app)
            .with_graceful_shutdown(stop.clone().cancelled_owned())
            .into_future(),
    );
    while let Some(outbox) = rx.recv().await {
        let batch = &outbox.updates;
        let mut tally = Tally::received(batch.len() as u64);
        let expired = {
            let mut e = exporter.lock().unwrap_or_else(|p| p.into_inner());
            e.apply(batch, Instant::now())
        };
        live.apply(batch);
        tally.count_n(Outcome::Emitted, None, batch.len() as u64);
        if expired > 0 {
            tracing::debug!(expired, "prometheus: stale destination series removed");
        }
        stats.add(&mut tally);
    }
    stop.cancel();
    if let Ok(Err(e)) = server.await {
        tracing::error!("prometheus sink: {e}");
    }
}
