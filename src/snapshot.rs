//! The inventory on disk: written atomically by the `file` sink, read back by `run` at start
//! so counts and first-seen times survive restarts.
//!
//! Version 2 is the `scan` document without `stats`:
//! `{"schema_version": 2, "destinations": [{"destination": ..., "edges": [...]}]}`.
//! Version 1 (`{"schema_version": 1, "entries": [{"key": ..., "entry": ...}]}`, one entry per
//! source, destination, port and protocol) is still read, its entries merged into edges.

use std::collections::BTreeSet;
use std::io;
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::atomic_write::write_atomically;
use crate::event::{Endpoint, Protocol, SourceKind, Verdict};
use crate::inventory::{DestKey, Destination, Edge, Inventory, Place, PortUse, Source, Usage};
use crate::output::{SCHEMA_VERSION, Streamed};

#[derive(Serialize)]
#[serde(bound(serialize = "I: Iterator, I::Item: Serialize"))]
struct Snapshot<I> {
    schema_version: u32,
    destinations: Streamed<I>,
}

/// The version alone (the rest skipped without building it), to read the rest as that.
#[derive(Deserialize)]
struct Version {
    schema_version: u32,
}

#[derive(Deserialize)]
struct V2 {
    destinations: Vec<Destination>,
}

#[derive(Deserialize)]
struct V1 {
    entries: Vec<V1Entry>,
}

#[derive(Deserialize)]
struct V1Entry {
    key: V1Key,
    entry: V1Counts,
}

#[derive(Deserialize)]
struct V1Key {
    dst: V1Dest,
    port: Option<u16>,
    proto: Option<Protocol>,
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum V1Dest {
    Name(String),
    Ip(IpAddr),
}

#[derive(Deserialize)]
struct V1Counts {
    src: Endpoint,
    names: BTreeSet<String>,
    ips: BTreeSet<IpAddr>,
    count: u64,
    #[serde(with = "time::serde::rfc3339")]
    first_seen: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    last_seen: OffsetDateTime,
    evidence: Vec<SourceKind>,
    #[serde(default)]
    verdicts: Vec<Verdict>,
}

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("cannot read {path}: {source}")]
    Read { path: String, source: io::Error },
    #[error("{path} is not an inventory snapshot: {source}")]
    Json {
        path: String,
        source: serde_json::Error,
    },
    #[error("{path} is a snapshot of schema_version {version}; this build reads 1 and 2")]
    Version { path: String, version: u32 },
}

/// The destinations of the snapshot at `path`; none when there is no file yet.
pub fn load(path: &Path) -> Result<Vec<Destination>, SnapshotError> {
    let name = || path.display().to_string();
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(SnapshotError::Read {
                path: name(),
                source,
            });
        }
    };
    let json = |source| SnapshotError::Json {
        path: name(),
        source,
    };
    match serde_json::from_slice::<Version>(&bytes).map_err(json)? {
        Version { schema_version: 1 } => {
            let v1: V1 = serde_json::from_slice(&bytes).map_err(json)?;
            Ok(upgrade(v1.entries))
        }
        Version {
            schema_version: SCHEMA_VERSION,
        } => Ok(serde_json::from_slice::<V2>(&bytes)
            .map_err(json)?
            .destinations),
        Version { schema_version } => Err(SnapshotError::Version {
            path: name(),
            version: schema_version,
        }),
    }
}

/// Version 1 entries as destinations and edges: each entry an edge of its own, merged by an
/// unbounded inventory into one edge per (source, destination).
fn upgrade(entries: Vec<V1Entry>) -> Vec<Destination> {
    let arc = |s: Option<String>| s.map(Arc::<str>::from);
    let mut merged = Inventory::new(usize::MAX, usize::MAX, 2);
    let all = entries
        .into_iter()
        .map(|V1Entry { key, entry: e }| {
            let destination = match key.dst {
                V1Dest::Name(name) => DestKey::Name(name.into()),
                V1Dest::Ip(ip) => DestKey::Ip(ip),
            };
            let (lookups, ports) = match key.proto {
                Some(protocol) => (
                    0,
                    vec![PortUse {
                        port: key.port,
                        protocol,
                        count: e.count,
                    }],
                ),
                None => (e.count, Vec::new()),
            };
            let source = Source {
                namespace: arc(e.src.namespace),
                workload: arc(e.src.workload),
                workload_kind: arc(e.src.workload_kind),
                pods: arc(e.src.pod).into_iter().collect(),
                ip: e.src.ip,
                ..Source::default()
            };
            let place = Place {
                names: e.names.into_iter().map(Arc::from).collect(),
                ips: e.ips.into_iter().collect(),
                other_ips: 0,
            };
            let usage = Usage {
                lookups,
                ports,
                other_ports: 0,
                count: e.count,
                first_seen: e.first_seen,
                last_seen: e.last_seen,
                evidence: e.evidence,
                verdicts: e.verdicts,
            };
            let edge = Edge { source, usage };
            Destination::new(destination, place, vec![edge])
        })
        .collect();
    merged.restore(all);
    merged.destinations().collect()
}

/// Writes `destinations` to `path` atomically.
pub async fn write(path: &Path, destinations: impl Iterator<Item = Destination>) -> io::Result<()> {
    let snapshot = Snapshot {
        schema_version: SCHEMA_VERSION,
        destinations: Streamed::new(destinations),
    };
    let bytes = serde_json::to_vec(&snapshot).map_err(io::Error::other)?;
    write_atomically(path, &bytes).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_version_1_snapshot_restores_as_edges() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("inventory.json");
        let entry = |port: &str, proto: &str, count: u64, first: &str| {
            format!(
                r#"{{"key":{{"dst":{{"name":"api.stripe.com"}},"port":{port},"proto":{proto},
                "src":{{"pod":{{"namespace":"shop","pod":"cart-1"}}}}}},
                "entry":{{"src":{{"namespace":"shop","pod":"cart-1","workload":"cart",
                "workload_kind":"Deployment","ip":"10.244.0.5"}},"names":["api.stripe.com"],
                "ips":["203.0.113.40"],"count":{count},"first_seen":"{first}",
                "last_seen":"2026-11-26T12:00:09Z","evidence":["envoy"]}}}}"#
            )
        };
        let v1 = format!(
            r#"{{"schema_version":1,"entries":[{},{},{}]}}"#,
            entry("443", r#""tcp""#, 3, "2026-11-26T12:00:01Z"),
            entry("8443", r#""tcp""#, 1, "2026-11-26T12:00:02Z"),
            entry("null", "null", 5, "2026-11-26T11:59:00Z"),
        );
        std::fs::write(&path, v1).unwrap();
        let all = load(&path).unwrap();
        assert_eq!(all.len(), 1);
        let d = &all[0];
        assert_eq!(d.destination.to_string(), "api.stripe.com");
        assert_eq!((d.usage.count, d.usage.lookups, d.edges.len()), (9, 5, 1));
        let e = &d.edges[0];
        assert_eq!(e.source.workload.as_deref(), Some("cart"));
        assert_eq!(e.source.pods, vec![Arc::<str>::from("cart-1")]);
        let ports: Vec<_> = e.usage.ports.iter().map(|p| (p.port, p.count)).collect();
        assert_eq!(ports, vec![(Some(443), 3), (Some(8443), 1)]);
        assert_eq!(
            crate::parse::time::format(e.usage.first_seen),
            "2026-11-26T11:59:00Z"
        );
        // Written back, it is version 2 and reads as it was.
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(write(&path, all.clone().into_iter()))
            .unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with(r#"{"schema_version":2,"#), "{text}");
        assert_eq!(load(&path).unwrap(), all);
    }
}
