//! Parse + classify throughput (bytes/s) for CoreDNS and Envoy lines, and the whole stage;
//! packets/s of the capture reader and flow tracker.
//! The CoreDNS corpus comes from benches/gen_coredns.py, the one generator the comparison
//! script uses too; Envoy corpora repeat the bundled examples.

use std::hint::black_box;
use std::process::Command;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use egress_scout::capture::flows::Tracker;
use egress_scout::capture::reader;
use egress_scout::config::Settings;
use egress_scout::egress::{Judge, Judgement, Times};
use egress_scout::enrich::NameCache;
use egress_scout::inventory::Inventory;
use egress_scout::parse::{self, Format, Parsed};
use egress_scout::pipeline::stage::{SourceState, Stage, Wants};
use egress_scout::pipeline::{Batch, Outbox};
use egress_scout::telemetry::ComponentStats;
use time::OffsetDateTime;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn coredns_corpus() -> Vec<u8> {
    let out = Command::new("python3")
        .arg(format!("{ROOT}/benches/gen_coredns.py"))
        .args(["--mb", "8"])
        .output()
        .expect("python3 runs benches/gen_coredns.py");
    assert!(out.status.success());
    out.stdout
}

/// Repeats the lines of `file` (optionally keeping only those starting with `keep`) to ~8 MB.
fn repeated(file: &str, keep: Option<&str>) -> Vec<u8> {
    let text = std::fs::read_to_string(format!("{ROOT}/{file}")).unwrap();
    let lines: String = text
        .lines()
        .filter_map(|l| match keep {
            // CRI-wrapped: keep the content of complete JSON lines.
            Some(prefix) => l
                .splitn(4, ' ')
                .nth(3)
                .filter(|c| c.starts_with(prefix) && c.ends_with('}')),
            None => Some(l),
        })
        .map(|l| format!("{l}\n"))
        .collect();
    lines.repeat((8 << 20) / lines.len() + 1).into_bytes()
}

fn judge() -> Judge {
    let mut settings = Settings::load(None).unwrap();
    settings.classify.cluster_cidrs = vec!["10.244.0.0/16".into(), "10.96.0.0/12".into()];
    settings.classify.judge()
}

fn parse_classify(c: &mut Criterion, name: &str, format: Format, corpus: &[u8]) {
    let judge = judge();
    let times = Times {
        wrapper: None,
        read: OffsetDateTime::UNIX_EPOCH,
    };
    let mut group = c.benchmark_group("parse_classify");
    group.throughput(Throughput::Bytes(corpus.len() as u64));
    group.bench_function(name, |b| {
        b.iter(|| {
            let mut external = 0u64;
            let mut start = 0;
            for end in memchr::memchr_iter(b'\n', corpus) {
                let line = &corpus[start..end];
                start = end + 1;
                if let Ok(Parsed::Record(r)) = parse::parse(format, line)
                    && let Judgement::External(obs) = judge.judge(&r, &times)
                {
                    black_box(obs);
                    external += 1;
                }
            }
            external
        })
    });
    group.finish();
}

fn benches(c: &mut Criterion) {
    let dns = coredns_corpus();
    parse_classify(c, "coredns", Format::Coredns, &dns);
    parse_classify(
        c,
        "envoy_text",
        Format::Envoy,
        &repeated("examples/istio-proxy.log", None),
    );
    parse_classify(
        c,
        "envoy_json",
        Format::Envoy,
        &repeated("examples/istio-proxy-cri.log", Some("{")),
    );

    // The whole synchronous stage: framing split, wrapper detection, parse, judge, inventory.
    let mut group = c.benchmark_group("stage");
    group.throughput(Throughput::Bytes(dns.len() as u64));
    group.bench_function("coredns_auto", |b| {
        b.iter(|| {
            let stats = ComponentStats::new("bench", "source");
            let source = SourceState::new(Format::Auto, stats);
            let mut stage = Stage::new(
                judge(),
                None,
                NameCache::new(2),
                Inventory::new(1_000_000, 100_000, 2),
                vec![source],
                65536,
                Wants::default(),
            );
            let batch = Batch {
                source: 0,
                stream: Default::default(),
                lines: dns.clone(),
                findings: Vec::new(),
                read_at: OffsetDateTime::UNIX_EPOCH,
                end: true,
                ack: None,
            };
            stage.process(&batch, &mut Outbox::default());
            stage.into_inventory().len()
        })
    });
    group.finish();

    // Packet captures (benches/gen_pcap.py): the reader alone, then reader + flow tracker.
    let capture = pcap_corpus();
    let packets = reader::read_all(&capture[..], |_| true).unwrap();
    let mut group = c.benchmark_group("capture");
    group.throughput(Throughput::Elements(packets));
    group.bench_function("read", |b| {
        b.iter(|| reader::read_all(&capture[..], |p| black_box(p.data.len()) > 0).unwrap())
    });
    group.bench_function("read_track", |b| {
        b.iter(|| {
            let mut tracker = Tracker::new(100_000);
            let mut out = Vec::new();
            reader::read_all(&capture[..], |p| {
                tracker.frame(p.time_ns, p.linktype, p.data, &mut out);
                if out.len() > 1 << 20 {
                    out.clear();
                }
                true
            })
            .unwrap();
            tracker.finish(&mut out);
            out.len()
        })
    });
    group.finish();
}

fn pcap_corpus() -> Vec<u8> {
    let out = Command::new("python3")
        .arg(format!("{ROOT}/benches/gen_pcap.py"))
        .args(["--packets", "300000"])
        .output()
        .expect("python3 runs benches/gen_pcap.py");
    assert!(out.status.success());
    out.stdout
}

criterion_group! {
    name = parse;
    config = Criterion::default().sample_size(20);
    targets = benches
}
criterion_main!(parse);
