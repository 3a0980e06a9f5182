//! egress-scout: discovers the destinations outside a Kubernetes cluster that its workloads
//! connect to, from CoreDNS and Envoy/Istio logs (raw, CRI or docker json-file wrapped).
//!
//! Data flow: sources frame bytes into batches of lines -> the stage parses (zero-copy),
//! classifies and counts survivors in the inventory -> sinks publish updates.

pub mod atomic_write;
pub mod audit;
pub mod capture;
pub mod classify;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod egress;
pub mod enrich;
pub mod event;
pub mod grpc;
pub mod inventory;
pub mod kubernetes;
pub mod listen;
pub mod output;
pub mod parse;
pub mod pipeline;
pub mod policy;
pub mod proto;
pub mod report;
pub mod sinks;
pub mod snapshot;
pub mod sources;
pub mod telemetry;
pub mod wire;
