//! `audit --logs N`: the last lines of every container's log, read through the API, for
//! endpoints the configuration does not show.

use futures_util::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::Client;
use kube::api::{Api, LogParams};

use crate::cluster::live::refusal;
use crate::cluster::{Cluster, Unavailable};

/// Log fetches in flight at once.
const LOG_FETCHES_AT_ONCE: usize = 8;

/// A container's recent log lines.
#[derive(Debug, Clone)]
pub struct ContainerLog {
    pub namespace: String,
    pub object: String,
    pub container: String,
    pub text: String,
}

/// The last `lines` of every container of every scheduled pod, a few fetches at a time;
/// what could not be read is added to the cluster's unavailable list.
pub async fn fetch(client: &Client, cluster: &mut Cluster, lines: i64) -> Vec<ContainerLog> {
    let mut wanted = Vec::new();
    let scheduled = cluster
        .pods
        .iter()
        .filter(|p| !p.template && p.node.is_some());
    for pod in scheduled {
        for c in &pod.spec.containers {
            wanted.push((
                pod.namespace.clone(),
                pod.name.clone(),
                pod.workload.to_string(),
                c.name.clone(),
            ));
        }
    }
    let fetched: Vec<_> = futures_util::stream::iter(wanted)
        .map(|(ns, pod, object, container)| {
            let api: Api<Pod> = Api::namespaced(client.clone(), &ns);
            async move {
                let params = LogParams {
                    container: Some(container.clone()),
                    tail_lines: Some(lines),
                    ..LogParams::default()
                };
                let text = api.logs(&pod, &params).await;
                (ns, pod, object, container, text)
            }
        })
        .buffer_unordered(LOG_FETCHES_AT_ONCE)
        .collect()
        .await;
    let mut logs = Vec::new();
    for (namespace, pod, object, container, text) in fetched {
        match text {
            Ok(text) => logs.push(ContainerLog {
                namespace,
                object,
                container,
                text,
            }),
            Err(e) => cluster.unavailable.push(Unavailable {
                resource: format!("{namespace}/pods/{pod}/log ({container})"),
                reason: match e {
                    kube::Error::Api(status) => refusal(status.code, &status.message),
                    other => other.to_string(),
                },
            }),
        }
    }
    cluster.unavailable.sort();
    logs
}
